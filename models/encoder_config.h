// Hyperparameters of the encoder family (BERT, RoBERTa, XLM-RoBERTa), read from a Hugging Face
// config.json as transformers reads it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "models/llama_config.h"

namespace opine::models {

struct EncoderConfig {
  std::string model_type = "bert";  // bert | roberta | xlm-roberta
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  std::string hidden_act = "gelu";  // gelu | gelu_new | gelu_pytorch_tanh | relu
  int64_t pad_token_id = 0;
  double hidden_dropout = 0.1;
  double attention_dropout = 0.1;
  std::optional<double> classifier_dropout;  // the head's; hidden_dropout when unset
  double initializer_range = 0.02;
  // The sequence head (BertForSequenceClassification, XLMRobertaForSequenceClassification, ...);
  // nullopt for a bare encoder (BertModel, sentence-transformers) or a masked-LM checkpoint.
  std::optional<HeadKind> head;
  int64_t num_labels = 0;
  std::vector<std::string> labels;  // id2label in id order, when the file names them

  // RoBERTa and XLM-R number positions from pad_token_id + 1 and pool through their own head.
  bool roberta_style() const { return model_type != "bert"; }
  // Where transformers keeps the encoder inside the *ForSequenceClassification model.
  std::string base_prefix() const { return roberta_style() ? "roberta." : "bert."; }
  int64_t head_dim() const { return hidden_size / num_heads; }
  // The longest sequence the position table holds (RoBERTa's starts after the padding index).
  int64_t max_tokens() const { return roberta_style() ? max_position_embeddings - pad_token_id - 1 : max_position_embeddings; }
  void validate(const std::string& source) const;
};

// True when a config.json's model_type is one of the encoders.
bool is_encoder_model_type(const std::string& model_type);
// Reads a Hugging Face config.json; `path` names it in errors.
EncoderConfig encoder_config_from_hf_json(const std::string& path);

}  // namespace opine::models
