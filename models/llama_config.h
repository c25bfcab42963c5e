// Hyperparameters of the Llama family (Llama-2/3, Qwen2/2.5, Mistral, SmolLM2): one struct that
// every loader fills, whatever the file format.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace opine::models {

// RoPE frequency scaling; "default" leaves the frequencies alone.
struct RopeScaling {
  std::string type = "default";  // default | linear | llama3
  double factor = 1.0;
  double low_freq_factor = 1.0;   // llama3
  double high_freq_factor = 4.0;  // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3
};

enum class HeadKind { kCausalLm, kClassification, kRegression };
const char* head_kind_name(HeadKind kind);

struct LlamaConfig {
  std::string model_type = "llama";  // llama | qwen2 | mistral (as config.json names it)
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v/o biases (Llama's attention_bias)
  bool qkv_bias = false;        // q/k/v biases only (Qwen2)
  bool mlp_bias = false;
  std::optional<int64_t> sliding_window;  // Mistral; applied when a sequence is longer
  std::optional<int64_t> bos_token_id;
  std::optional<int64_t> eos_token_id;
  std::optional<int64_t> pad_token_id;
  // Head on top of the decoder.
  HeadKind head = HeadKind::kCausalLm;
  int64_t num_labels = 0;  // classification classes; 1 for regression

  // Throws opine::Error naming `source` when a value is missing or inconsistent.
  void validate(const std::string& source) const;
  int64_t parameter_count() const;
};

// Reads a Hugging Face config.json (transformers 4.x and 5.x field names).
LlamaConfig llama_config_from_hf_json(const std::string& path);

}  // namespace opine::models
