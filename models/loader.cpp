#include "models/loader.h"

#include <ATen/core/Generator.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "models/llama2c.h"
#include "models/safetensors.h"

namespace opine::models {

const char* model_format_name(ModelFormat format) {
  switch (format) {
    case ModelFormat::kHuggingFace: return "huggingface";
    case ModelFormat::kGguf: return "gguf";
    case ModelFormat::kLlama2c: return "llama2.c";
  }
  return "?";
}

ModelFormat detect_model_format(const std::string& path) {
  namespace fs = std::filesystem;
  OPINE_CHECK_KIND(fs::exists(path), ErrorKind::kIo, "model not found: ", path);
  if (fs::is_directory(path)) {
    OPINE_CHECK_KIND(fs::exists(fs::path(path) / "config.json"), ErrorKind::kIo, path,
                     ": a model folder needs config.json (Hugging Face layout)");
    return ModelFormat::kHuggingFace;
  }
  char magic[4] = {};
  std::ifstream in(path, std::ios::binary);
  OPINE_CHECK_KIND(in.good(), ErrorKind::kIo, "cannot open ", path);
  in.read(magic, 4);
  if (in.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0) return ModelFormat::kGguf;
  OPINE_CHECK_FORMAT(fs::path(path).extension() == ".bin", path,
                     ": not a model folder, a GGUF file or a llama2.c .bin checkpoint");
  return ModelFormat::kLlama2c;
}

ModelFile open_model_file(const std::string& path) {
  const ModelFormat format = detect_model_format(path);
  if (format == ModelFormat::kGguf) return open_gguf_model(path);
  ModelFile file;
  file.path = path;
  file.format = format;
  if (format == ModelFormat::kHuggingFace) {
    file.config = llama_config_from_hf_json((std::filesystem::path(path) / "config.json").string());
    auto source = std::make_unique<SafetensorsSource>(path);
    file.stored_types = source->dtype_counts();
    file.tensors = std::move(source);
  } else {
    auto source = std::make_unique<Llama2cSource>(path);
    file.config = source->config();
    file.stored_types["F32"] = static_cast<int64_t>(source->names().size());
    file.tensors = std::move(source);
  }
  return file;
}

LlamaModel load_model(ModelFile& file, const LoadOptions& options) {
  LlamaConfig config = file.config;
  std::vector<std::string> ignored = file.ignored_tensors;
  const bool new_head = options.head && *options.head != config.head;
  if (new_head) {
    OPINE_CHECK(config.head == HeadKind::kCausalLm && *options.head != HeadKind::kCausalLm, file.path,
                ": cannot turn a ", head_kind_name(config.head), " head into a ",
                head_kind_name(*options.head), " head");
    config.head = *options.head;
    config.num_labels = *options.head == HeadKind::kRegression ? 1 : options.num_labels;
    OPINE_CHECK(config.num_labels > 0, "a classification head needs num_labels > 0");
    if (!file.config.tie_word_embeddings) ignored.push_back("lm_head.weight");
  }
  LlamaModel model(config, at::kFloat, at::kCPU);
  std::vector<WeightSlotRef> table = model.weight_table();
  if (new_head) {
    model.score.normal_(0.0, 0.02, at::make_generator<at::CPUGeneratorImpl>(options.seed));
    std::erase_if(table, [](const WeightSlotRef& s) { return s.name == "score.weight"; });
  }
  load_weight_table(table, *file.tensors, ignored);
  model.to(options.dtype, options.device);
  return model;
}

LlamaModel load_model(const std::string& path, const LoadOptions& options) {
  ModelFile file = open_model_file(path);
  return load_model(file, options);
}

at::ScalarType parse_dtype(const std::string& name) {
  if (name == "f32" || name == "float32") return at::kFloat;
  if (name == "bf16" || name == "bfloat16") return at::kBFloat16;
  if (name == "f16" || name == "float16") return at::kHalf;
  throw Error(ErrorKind::kUser, "unknown dtype '" + name + "' (use f32, bf16 or f16)");
}

const char* dtype_name(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat: return "f32";
    case at::kBFloat16: return "bf16";
    case at::kHalf: return "f16";
    default: return "?";
  }
}

}  // namespace opine::models
