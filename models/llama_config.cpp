#include "models/llama_config.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_file.h"

namespace opine::models {

const char* head_kind_name(HeadKind kind) {
  switch (kind) {
    case HeadKind::kCausalLm: return "causal-lm";
    case HeadKind::kClassification: return "classification";
    case HeadKind::kRegression: return "regression";
  }
  return "?";
}

void LlamaConfig::validate(const std::string& source) const {
  auto positive = [&](int64_t v, const char* key) {
    OPINE_CHECK_FORMAT(v > 0, source, ": ", key, " must be positive, got ", v);
  };
  positive(vocab_size, "vocab_size");
  positive(hidden_size, "hidden_size");
  positive(intermediate_size, "intermediate_size");
  positive(num_layers, "num_hidden_layers");
  positive(num_heads, "num_attention_heads");
  positive(num_kv_heads, "num_key_value_heads");
  positive(head_dim, "head_dim");
  OPINE_CHECK_FORMAT(num_heads % num_kv_heads == 0, source, ": num_attention_heads (", num_heads,
                     ") is not a multiple of num_key_value_heads (", num_kv_heads, ")");
  OPINE_CHECK_FORMAT(head_dim % 2 == 0, source, ": head_dim must be even for RoPE, got ", head_dim);
  OPINE_CHECK_FORMAT(rms_norm_eps > 0, source, ": rms_norm_eps must be positive");
  OPINE_CHECK_FORMAT(rope_theta > 0, source, ": rope_theta must be positive");
  OPINE_CHECK_FORMAT(rope_scaling.type == "default" || rope_scaling.type == "linear" ||
                         rope_scaling.type == "llama3",
                     source, ": unsupported rope scaling type '", rope_scaling.type,
                     "' (supported: default, linear, llama3)");
  if (head != HeadKind::kCausalLm)
    OPINE_CHECK_FORMAT(num_labels > 0, source, ": a ", head_kind_name(head),
                       " head needs num_labels > 0");
}

int64_t LlamaConfig::parameter_count() const {
  const int64_t q = num_heads * head_dim, kv = num_kv_heads * head_dim;
  int64_t attn = hidden_size * q + 2 * hidden_size * kv + q * hidden_size;
  if (attention_bias) attn += q + 2 * kv + hidden_size;
  else if (qkv_bias) attn += q + 2 * kv;
  int64_t mlp = 3 * hidden_size * intermediate_size;
  if (mlp_bias) mlp += 2 * intermediate_size + hidden_size;
  const int64_t layer = attn + mlp + 2 * hidden_size;
  int64_t total = vocab_size * hidden_size + num_layers * layer + hidden_size;
  if (head == HeadKind::kCausalLm && !tie_word_embeddings) total += vocab_size * hidden_size;
  if (head != HeadKind::kCausalLm) total += num_labels * hidden_size;
  return total;
}

namespace {

using nlohmann::json;

template <typename T>
T required(const json& j, const char* key, const std::string& path) {
  OPINE_CHECK_FORMAT(j.contains(key) && !j.at(key).is_null(), path, ": missing key '", key, "'");
  try {
    return j.at(key).get<T>();
  } catch (const json::exception& e) {
    throw Error(ErrorKind::kFormat, detail::concat(path, ": key '", key, "' has the wrong type: ",
                                                   j.at(key).dump()));
  }
}

template <typename T>
T optional_or(const json& j, const char* key, T fallback, const std::string& path) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  return required<T>(j, key, path);
}

// eos_token_id may be a list (Llama-3 instruct); the first one is the primary.
std::optional<int64_t> token_id(const json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  const json& v = j.at(key);
  if (v.is_array()) return v.empty() ? std::nullopt : std::optional<int64_t>(v.at(0).get<int64_t>());
  return v.get<int64_t>();
}

}  // namespace

LlamaConfig llama_config_from_hf_json(const std::string& path) {
  const json j = read_json_file(path);
  OPINE_CHECK_FORMAT(j.is_object(), path, ": expected a JSON object");

  LlamaConfig c;
  c.model_type = required<std::string>(j, "model_type", path);
  OPINE_CHECK_FORMAT(c.model_type == "llama" || c.model_type == "qwen2" || c.model_type == "mistral",
                     path, ": model_type '", c.model_type,
                     "' is not a Llama-family decoder or an encoder opine reads (decoders: llama, qwen2, mistral; "
                     "encoders: bert, roberta, xlm-roberta)");
  c.vocab_size = required<int64_t>(j, "vocab_size", path);
  c.hidden_size = required<int64_t>(j, "hidden_size", path);
  c.intermediate_size = required<int64_t>(j, "intermediate_size", path);
  c.num_layers = required<int64_t>(j, "num_hidden_layers", path);
  c.num_heads = required<int64_t>(j, "num_attention_heads", path);
  c.num_kv_heads = optional_or<int64_t>(j, "num_key_value_heads", c.num_heads, path);
  OPINE_CHECK_FORMAT(c.num_heads > 0, path, ": num_attention_heads must be positive");
  c.head_dim = optional_or<int64_t>(j, "head_dim", c.hidden_size / c.num_heads, path);
  c.max_position_embeddings = optional_or<int64_t>(j, "max_position_embeddings", 2048, path);
  c.rms_norm_eps = optional_or<double>(j, "rms_norm_eps", 1e-6, path);
  c.tie_word_embeddings = optional_or<bool>(j, "tie_word_embeddings", false, path);
  c.attention_bias = optional_or<bool>(j, "attention_bias", false, path);
  c.qkv_bias = c.model_type == "qwen2";
  c.mlp_bias = optional_or<bool>(j, "mlp_bias", false, path);
  if (c.model_type == "mistral" || optional_or<bool>(j, "use_sliding_window", false, path)) {
    if (j.contains("sliding_window") && !j.at("sliding_window").is_null())
      c.sliding_window = required<int64_t>(j, "sliding_window", path);
  }
  c.bos_token_id = token_id(j, "bos_token_id");
  c.eos_token_id = token_id(j, "eos_token_id");
  c.pad_token_id = token_id(j, "pad_token_id");

  // transformers 5 keeps theta and scaling together in rope_parameters; 4.x used rope_theta and
  // rope_scaling ("type" or "rope_type").
  json rope = j.contains("rope_parameters") && j.at("rope_parameters").is_object()
                  ? j.at("rope_parameters")
                  : (j.contains("rope_scaling") && j.at("rope_scaling").is_object() ? j.at("rope_scaling")
                                                                                   : json::object());
  c.rope_theta = optional_or<double>(rope, "rope_theta", optional_or<double>(j, "rope_theta", 10000.0, path), path);
  std::string type = optional_or<std::string>(rope, "rope_type", optional_or<std::string>(rope, "type", "default", path), path);
  c.rope_scaling.type = type;
  c.rope_scaling.factor = optional_or<double>(rope, "factor", 1.0, path);
  c.rope_scaling.low_freq_factor = optional_or<double>(rope, "low_freq_factor", 1.0, path);
  c.rope_scaling.high_freq_factor = optional_or<double>(rope, "high_freq_factor", 4.0, path);
  c.rope_scaling.original_max_position_embeddings =
      optional_or<int64_t>(rope, "original_max_position_embeddings", 8192, path);

  // The head follows the architecture name, as transformers' Auto classes do.
  std::string arch;
  if (j.contains("architectures") && j.at("architectures").is_array() && !j.at("architectures").empty())
    arch = j.at("architectures").at(0).get<std::string>();
  if (arch.size() > 26 && arch.ends_with("ForSequenceClassification")) {
    const std::string problem = optional_or<std::string>(j, "problem_type", "", path);
    int64_t labels = j.contains("id2label") && j.at("id2label").is_object()
                         ? static_cast<int64_t>(j.at("id2label").size())
                         : optional_or<int64_t>(j, "num_labels", 2, path);
    c.num_labels = labels;
    c.head = (problem == "regression" || labels == 1) ? HeadKind::kRegression : HeadKind::kClassification;
  }
  c.validate(path);
  return c;
}

}  // namespace opine::models
