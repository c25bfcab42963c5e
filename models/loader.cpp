#include "models/loader.h"

#include <ATen/core/Generator.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <algorithm>

#include "core/error.h"
#include "core/json_file.h"
#include "core/log.h"
#include "models/encoder_config.h"
#include "models/llama2c.h"
#include "models/safetensors.h"

namespace opine::models {

namespace {

std::string model_type_of(const std::string& config_path) {
  const nlohmann::json j = read_json_file(config_path);
  return j.is_object() && j.contains("model_type") && j.at("model_type").is_string()
             ? j.at("model_type").get<std::string>()
             : "";
}

// A checkpoint's tensors under other names (each name the model asks for -> the file's).
class RenamedSource final : public TensorSource {
 public:
  RenamedSource(std::unique_ptr<TensorSource> inner, std::map<std::string, std::string> to_file)
      : inner_(std::move(inner)), to_file_(std::move(to_file)) {}
  std::vector<std::string> names() const override {
    std::vector<std::string> out;
    for (const auto& [name, stored] : to_file_) out.push_back(name);
    return out;
  }
  std::vector<int64_t> shape(const std::string& name) const override { return inner_->shape(stored(name)); }
  at::Tensor get(const std::string& name) const override { return inner_->get(stored(name)); }
  std::string describe() const override { return inner_->describe(); }

 private:
  const std::string& stored(const std::string& name) const {
    auto it = to_file_.find(name);
    OPINE_ASSERT(it != to_file_.end(), name, " is not in ", describe());
    return it->second;
  }
  std::unique_ptr<TensorSource> inner_;
  std::map<std::string, std::string> to_file_;
};

// An encoder checkpoint under the names of the *ForSequenceClassification model, as transformers
// maps them: a bare BertModel / RobertaModel (sentence-transformers) gets the "bert." / "roberta."
// prefix, and TensorFlow-era LayerNorm.gamma / .beta become .weight / .bias. Lists the tensors
// transformers' sequence classifier skips: the masked-LM and next-sentence heads, RoBERTa's
// pooler, old position_ids buffers.
std::unique_ptr<TensorSource> encoder_source(std::unique_ptr<TensorSource> source, const EncoderConfig& c,
                                             std::vector<std::string>& ignored) {
  const std::string prefix = c.base_prefix();
  const std::vector<std::string> stored = source->names();
  bool prefixed = false;
  for (const std::string& n : stored) prefixed = prefixed || n.starts_with(prefix);
  std::map<std::string, std::string> to_file;
  for (const std::string& n : stored) {
    std::string name = prefixed ? n : prefix + n;
    for (const auto& [old_suffix, new_suffix] : {std::pair<std::string, std::string>{".LayerNorm.gamma", ".LayerNorm.weight"},
                                                 {".LayerNorm.beta", ".LayerNorm.bias"}})
      if (name.ends_with(old_suffix)) name = name.substr(0, name.size() - old_suffix.size()) + new_suffix;
    to_file.emplace(name, n);
  }
  for (const auto& [n, file_name] : to_file) {
    const bool unused = n.starts_with("cls.") || n.starts_with("lm_head.") || n.ends_with("embeddings.position_ids") ||
                        (c.roberta_style() && n.starts_with(prefix + "pooler.")) ||
                        (!prefixed && (n.starts_with(prefix + "cls.") || n.starts_with(prefix + "lm_head.")));
    if (unused) ignored.push_back(n);
  }
  return std::make_unique<RenamedSource>(std::move(source), std::move(to_file));
}

}  // namespace

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
    const std::string config = (std::filesystem::path(path) / "config.json").string();
    if (is_encoder_model_type(model_type_of(config))) file.encoder = encoder_config_from_hf_json(config);
    else file.config = llama_config_from_hf_json(config);
    std::unique_ptr<TensorSource> source = std::make_unique<SafetensorsSource>(path);
    file.stored_types = static_cast<SafetensorsSource&>(*source).dtype_counts();
    if (file.encoder) source = encoder_source(std::move(source), *file.encoder, file.ignored_tensors);
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
  OPINE_CHECK(!file.encoder, file.path, " is a ", file.encoder ? file.encoder->model_type : "", " encoder, not a decoder");
  LlamaConfig config = file.config;
  std::vector<std::string> ignored = file.ignored_tensors;
  // model.head=classification without model.num_labels keeps a classification checkpoint's head.
  const int64_t labels = options.head == HeadKind::kRegression                         ? 1
                         : options.num_labels > 0 || options.head != config.head ? options.num_labels
                                                                                  : config.num_labels;
  const bool new_head = options.head && (*options.head != config.head ||
                                         (config.head != HeadKind::kCausalLm && labels != config.num_labels));
  if (new_head) {
    OPINE_CHECK(*options.head != HeadKind::kCausalLm, file.path, ": cannot turn a ", head_kind_name(config.head),
                " head into a ", head_kind_name(*options.head), " head");
    if (config.head == HeadKind::kCausalLm) {
      if (!file.config.tie_word_embeddings) ignored.push_back("lm_head.weight");
    } else {
      log::info(file.path, ": its ", config.num_labels, "-label ", head_kind_name(config.head),
                " head is replaced by a new ", labels, "-label ", head_kind_name(*options.head), " head");
      ignored.push_back("score.weight");
    }
    config.head = *options.head;
    config.num_labels = labels;
    OPINE_CHECK(config.num_labels > 0, "a classification head needs num_labels > 0 (model.num_labels)");
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

static EncoderConfig encoder_config_for(const ModelFile& file, const LoadOptions& options, bool* new_head) {
  OPINE_ASSERT(file.encoder.has_value(), file.path, " is not an encoder");
  EncoderConfig config = *file.encoder;
  *new_head = false;
  if (!options.head) return config;
  OPINE_CHECK(*options.head != HeadKind::kCausalLm, file.path, " is a ", config.model_type,
              " encoder: it has no language-model head (use a classification or regression head)");
  const int64_t labels = *options.head == HeadKind::kRegression                         ? 1
                         : options.num_labels > 0 || options.head != config.head ? options.num_labels
                                                                                  : config.num_labels;
  OPINE_CHECK(labels > 0, "a classification head needs num_labels > 0 (model.num_labels)");
  *new_head = config.head != options.head || config.num_labels != labels;
  if (*new_head && config.head)
    log::info(file.path, ": its ", config.num_labels, "-label ", head_kind_name(*config.head),
              " head is replaced by a new ", labels, "-label ", head_kind_name(*options.head), " head");
  config.head = *options.head;
  config.num_labels = labels;
  if (*new_head) config.labels.clear();
  return config;
}

EncoderModel load_encoder(ModelFile& file, const LoadOptions& options) {
  bool new_head = false;
  const EncoderConfig config = encoder_config_for(file, options, &new_head);
  EncoderModel model(config, at::kFloat, at::kCPU);
  std::vector<WeightSlotRef> table = model.weight_table();
  std::vector<std::string> ignored = file.ignored_tensors;
  const std::vector<std::string> present = file.tensors->names();
  auto in_file = [&](const std::string& name) { return std::find(present.begin(), present.end(), name) != present.end(); };
  // A new head is drawn, not read; the file's head (if any) is skipped. A BERT checkpoint saved
  // without its pooler gets a new one too, as transformers initialises missing weights.
  const std::string pooler = config.base_prefix() + "pooler.dense.weight";
  const bool new_pooler = model.has_pooler() && !in_file(pooler);
  if (new_pooler) log::warn(file.path, ": has no pooler weights; the pooler is initialised at random");
  for (const std::string& name : present)
    if (name.starts_with("classifier.") && new_head) ignored.push_back(name);
  std::erase_if(table, [&](const WeightSlotRef& s) {
    return (new_head && s.name.starts_with("classifier.")) || (new_pooler && s.name.find(".pooler.") != std::string::npos);
  });
  if (new_head || new_pooler) model.initialize_head(options.seed, new_pooler);
  load_weight_table(table, *file.tensors, ignored);
  model.to(options.dtype, options.device);
  return model;
}

std::unique_ptr<Backbone> load_backbone(ModelFile& file, const LoadOptions& options) {
  if (file.encoder) return std::make_unique<EncoderModel>(load_encoder(file, options));
  return std::make_unique<LlamaModel>(load_model(file, options));
}

std::unique_ptr<Backbone> backbone_skeleton(const ModelFile& file, const LoadOptions& options) {
  if (file.encoder) {
    bool new_head = false;
    return std::make_unique<EncoderModel>(encoder_config_for(file, options, &new_head), options.dtype,
                                          options.device, /*meta_layers=*/true);
  }
  LlamaConfig c = file.config;
  if (options.head && *options.head != c.head) c.head = *options.head;
  if (c.head != HeadKind::kCausalLm)
    c.num_labels = c.head == HeadKind::kRegression ? 1 : (options.head ? options.num_labels : c.num_labels);
  return std::make_unique<LlamaModel>(c, options.dtype, options.device, /*meta_layers=*/true);
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
