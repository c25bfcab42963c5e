// Opening a model in any of the formats people have: a Hugging Face folder (config.json +
// safetensors), a GGUF file, or a llama2.c checkpoint.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "models/backbone.h"
#include "models/encoder.h"
#include "models/llama.h"
#include "models/weights.h"

namespace opine::models {

enum class ModelFormat { kHuggingFace, kGguf, kLlama2c };
const char* model_format_name(ModelFormat format);

// Decided by what the path holds (a folder with config.json, the GGUF magic), not by its name.
ModelFormat detect_model_format(const std::string& path);

// A model file opened but not yet loaded: its hyperparameters and tensors, cheap to inspect.
struct ModelFile {
  std::string path;
  ModelFormat format;
  LlamaConfig config;                   // a decoder's (unused when `encoder` is set)
  std::optional<EncoderConfig> encoder;  // set for a BERT / RoBERTa / XLM-R folder
  std::unique_ptr<TensorSource> tensors;
  std::map<std::string, int64_t> stored_types;  // storage type name -> tensor count
  std::map<std::string, std::string> metadata;  // a few notable format-specific facts
  std::vector<std::string> ignored_tensors;     // present in the file, intentionally unused
};
ModelFile open_model_file(const std::string& path);

struct LoadOptions {
  at::ScalarType dtype = at::kFloat;
  at::Device device = at::kCPU;
  // Put a classification or regression head on a checkpoint that has none (its language-model
  // head is dropped), or a new one on a checkpoint whose head has another number of labels (a
  // 7-emotion classifier becoming a 2-class one, as transformers' ignore_mismatched_sizes does).
  // The new head is initialised N(0, initializer_range) from `seed`, as transformers does.
  std::optional<HeadKind> head;
  int64_t num_labels = 0;
  uint64_t seed = 0;
};

// A decoder; an encoder file is an error here.
LlamaModel load_model(const std::string& path, const LoadOptions& options = {});
LlamaModel load_model(ModelFile& file, const LoadOptions& options = {});
// An encoder (BERT / RoBERTa / XLM-R); a bare or masked-LM checkpoint's names are mapped onto
// the *ForSequenceClassification names, and the heads it carries that opine does not use (MLM,
// next-sentence, RoBERTa's unused pooler) are skipped as transformers skips them.
EncoderModel load_encoder(ModelFile& file, const LoadOptions& options = {});
// Whichever family the file holds.
std::unique_ptr<Backbone> load_backbone(ModelFile& file, const LoadOptions& options = {});
// The model a skeleton rank of a sharded run builds: load_backbone()'s config and shapes, the
// layers shape-only (meta), nothing read.
std::unique_ptr<Backbone> backbone_skeleton(const ModelFile& file, const LoadOptions& options);

at::ScalarType parse_dtype(const std::string& name);  // f32 | bf16 | f16
const char* dtype_name(at::ScalarType dtype);

// Opens a GGUF file as a model (models/gguf_model.cpp).
ModelFile open_gguf_model(const std::string& path);

}  // namespace opine::models
