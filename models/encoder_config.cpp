#include "models/encoder_config.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_file.h"

namespace opine::models {

namespace {

using nlohmann::json;

template <typename T>
T get_or(const json& j, const char* key, T fallback, const std::string& path) {
  if (!j.contains(key) || j.at(key).is_null()) return fallback;
  try {
    return j.at(key).get<T>();
  } catch (const json::exception&) {
    throw Error(ErrorKind::kFormat, detail::concat(path, ": key '", key, "' has the wrong type: ", j.at(key).dump()));
  }
}

template <typename T>
T required(const json& j, const char* key, const std::string& path) {
  OPINE_CHECK_FORMAT(j.contains(key) && !j.at(key).is_null(), path, ": missing key '", key, "'");
  return get_or<T>(j, key, T{}, path);
}

}  // namespace

bool is_encoder_model_type(const std::string& t) { return t == "bert" || t == "roberta" || t == "xlm-roberta"; }

void EncoderConfig::validate(const std::string& source) const {
  auto positive = [&](int64_t v, const char* key) {
    OPINE_CHECK_FORMAT(v > 0, source, ": ", key, " must be positive, got ", v);
  };
  positive(vocab_size, "vocab_size");
  positive(hidden_size, "hidden_size");
  positive(num_layers, "num_hidden_layers");
  positive(num_heads, "num_attention_heads");
  positive(intermediate_size, "intermediate_size");
  positive(max_position_embeddings, "max_position_embeddings");
  positive(type_vocab_size, "type_vocab_size");
  OPINE_CHECK_FORMAT(hidden_size % num_heads == 0, source, ": hidden_size (", hidden_size,
                     ") is not a multiple of num_attention_heads (", num_heads, ")");
  OPINE_CHECK_FORMAT(hidden_act == "gelu" || hidden_act == "gelu_new" || hidden_act == "gelu_pytorch_tanh" ||
                         hidden_act == "relu",
                     source, ": unsupported hidden_act '", hidden_act, "' (gelu, gelu_new, gelu_pytorch_tanh, relu)");
  OPINE_CHECK_FORMAT(layer_norm_eps > 0, source, ": layer_norm_eps must be positive");
  OPINE_CHECK_FORMAT(pad_token_id >= 0 && pad_token_id < vocab_size, source, ": pad_token_id ", pad_token_id,
                     " is outside the vocabulary");
  if (roberta_style())
    OPINE_CHECK_FORMAT(max_position_embeddings > pad_token_id + 1, source,
                       ": max_position_embeddings leaves no positions after the padding offset");
  if (head) OPINE_CHECK_FORMAT(num_labels > 0, source, ": a ", head_kind_name(*head), " head needs num_labels > 0");
}

EncoderConfig encoder_config_from_hf_json(const std::string& path) {
  const json j = read_json_file(path);
  OPINE_CHECK_FORMAT(j.is_object(), path, ": expected a JSON object");
  EncoderConfig c;
  c.model_type = required<std::string>(j, "model_type", path);
  OPINE_CHECK_FORMAT(is_encoder_model_type(c.model_type), path, ": model_type '", c.model_type,
                     "' is not an encoder opine reads (bert, roberta, xlm-roberta)");
  c.vocab_size = required<int64_t>(j, "vocab_size", path);
  c.hidden_size = required<int64_t>(j, "hidden_size", path);
  c.num_layers = required<int64_t>(j, "num_hidden_layers", path);
  c.num_heads = required<int64_t>(j, "num_attention_heads", path);
  c.intermediate_size = required<int64_t>(j, "intermediate_size", path);
  c.max_position_embeddings = get_or<int64_t>(j, "max_position_embeddings", 512, path);
  c.type_vocab_size = get_or<int64_t>(j, "type_vocab_size", 2, path);
  c.layer_norm_eps = get_or<double>(j, "layer_norm_eps", 1e-12, path);
  c.hidden_act = get_or<std::string>(j, "hidden_act", "gelu", path);
  c.pad_token_id = get_or<int64_t>(j, "pad_token_id", c.roberta_style() ? 1 : 0, path);
  c.hidden_dropout = get_or<double>(j, "hidden_dropout_prob", 0.1, path);
  c.attention_dropout = get_or<double>(j, "attention_probs_dropout_prob", 0.1, path);
  if (j.contains("classifier_dropout") && !j.at("classifier_dropout").is_null())
    c.classifier_dropout = get_or<double>(j, "classifier_dropout", 0.1, path);
  c.initializer_range = get_or<double>(j, "initializer_range", 0.02, path);
  const std::string position = get_or<std::string>(j, "position_embedding_type", "absolute", path);
  OPINE_CHECK_FORMAT(position == "absolute", path, ": position_embedding_type '", position,
                     "' is not supported (only absolute)");

  // The head follows the architecture name, as transformers' Auto classes do.
  std::string arch;
  if (j.contains("architectures") && j.at("architectures").is_array() && !j.at("architectures").empty()) {
    OPINE_CHECK_FORMAT(j.at("architectures").at(0).is_string(), path, ": architectures[0] is not a string");
    arch = j.at("architectures").at(0).get<std::string>();
  }
  if (arch.ends_with("ForSequenceClassification")) {
    const std::string problem = get_or<std::string>(j, "problem_type", "", path);
    if (j.contains("id2label") && j.at("id2label").is_object()) {
      const json& m = j.at("id2label");
      c.num_labels = static_cast<int64_t>(m.size());
      for (int64_t i = 0; i < c.num_labels; ++i) {
        const std::string key = std::to_string(i);
        OPINE_CHECK_FORMAT(m.contains(key) && m.at(key).is_string(), path, ": id2label has no label for id ", i);
        c.labels.push_back(m.at(key).get<std::string>());
      }
    } else {
      c.num_labels = get_or<int64_t>(j, "num_labels", 2, path);
    }
    c.head = (problem == "regression" || c.num_labels == 1) ? HeadKind::kRegression : HeadKind::kClassification;
  }
  c.validate(path);
  return c;
}

}  // namespace opine::models
