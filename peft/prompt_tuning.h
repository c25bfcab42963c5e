// Prompt tuning (Lester et al.), as PEFT's PromptEmbedding: n learned "virtual token" embeddings
// put in front of the input's token embeddings; the model stays frozen. Works with the
// causal-LM, classification and regression heads.
#pragma once

#include <ATen/ATen.h>

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/config.h"
#include "models/llama.h"
#include "models/tokenizer.h"
#include "peft/lora_model.h"
#include "peft/modules_to_save.h"

namespace opine::peft {

struct PromptTuningConfig {
  int num_virtual_tokens = 8;
  std::string prompt_tuning_init = "RANDOM";  // RANDOM (N(0, 1)) | TEXT | SAMPLE_VOCAB
  std::string prompt_tuning_init_text;       // for TEXT
  std::string tokenizer_name_or_path;        // recorded for PEFT, which tokenizes the text with it
  std::string task_type = "CAUSAL_LM";       // CAUSAL_LM | SEQ_CLS
  std::string base_model_name_or_path;
  std::vector<std::string> modules_to_save;  // SEQ_CLS adds classifier and score, as in PEFT

  template <class V>
  void visit(V& v) {
    v("num_virtual_tokens", num_virtual_tokens, "soft-prompt length", config::at_least(1));
    v("prompt_tuning_init", prompt_tuning_init, "initialisation",
      config::one_of({"RANDOM", "TEXT", "SAMPLE_VOCAB"}));
    v("prompt_tuning_init_text", prompt_tuning_init_text, "text whose token embeddings start the prompt (TEXT)");
    v("tokenizer_name_or_path", tokenizer_name_or_path, "tokenizer of the init text, recorded for PEFT");
    v("task_type", task_type, "PEFT task type", config::one_of({"CAUSAL_LM", "SEQ_CLS"}));
    v("base_model_name_or_path", base_model_name_or_path, "recorded in adapter_config.json");
    v("modules_to_save", modules_to_save, "modules trained in full (the head is added for SEQ_CLS)");
  }
};

// PEFT's adapter_config.json for PROMPT_TUNING; another peft_type, or a config made for a model of
// another width, is an opine::Error naming the file and key.
PromptTuningConfig prompt_tuning_config_from_json(const nlohmann::json& j, const std::string& source,
                                                  const models::LlamaConfig& model);
nlohmann::json prompt_tuning_config_to_json(const PromptTuningConfig& config, const models::LlamaConfig& model);

class PromptTuning {
 public:
  // The soft prompt [n, hidden], float32 as PEFT keeps it. RANDOM draws N(0, 1) (nn.Embedding's
  // init) and SAMPLE_VOCAB picks random token rows, from a CPU generator seeded with `seed`; TEXT
  // needs init_from_tokens / init_from_text.
  PromptTuning(models::LlamaModel& model, PromptTuningConfig config, uint64_t seed = 0);

  // PEFT's TEXT init: the text's token ids (as the tokenizer gives them, BOS included) cut to n,
  // or repeated until there are n; the prompt starts as their embeddings.
  void init_from_tokens(const models::LlamaModel& model, const std::vector<int64_t>& ids);
  void init_from_text(const models::LlamaModel& model, const models::Tokenizer& tokenizer, const std::string& text);

  const PromptTuningConfig& config() const { return config_; }
  int64_t num_virtual_tokens() const { return config_.num_virtual_tokens; }
  at::Tensor& embeddings() { return embeddings_; }  // a leaf that requires grad
  // "prompt_embeddings" and the head's copy ("base_model.score.weight"), as PEFT saves them.
  std::vector<std::pair<std::string, at::Tensor>> named_trainable() const;
  ParameterCount count_parameters(models::LlamaModel& model) const;

  // The model's input with the soft prompt in front: embeddings [batch, n + seq, hidden] in the
  // model's dtype, and the mask with ones for the virtual tokens (undefined if `mask` is).
  std::pair<at::Tensor, at::Tensor> prepend(const models::LlamaModel& model, const at::Tensor& input_ids,
                                            const at::Tensor& attention_mask = {}) const;
  // Hidden states over all n + seq positions.
  models::LlamaOutput forward(const models::LlamaModel& model, const at::Tensor& input_ids,
                              const at::Tensor& attention_mask = {}) const;
  // Causal LM: logits over all n + seq positions, as PeftModelForCausalLM returns them ...
  at::Tensor lm_logits_full(const models::LlamaModel& model, const at::Tensor& input_ids,
                            const at::Tensor& attention_mask = {}) const;
  // ... or without the virtual positions: [batch, seq, vocab], position t after token t.
  at::Tensor lm_logits(const models::LlamaModel& model, const at::Tensor& input_ids,
                       const at::Tensor& attention_mask = {}) const;
  // PEFT's loss: labels get -100 for the virtual tokens, so the first real token is predicted
  // from the soft prompt.
  at::Tensor causal_lm_loss(const models::LlamaModel& model, const at::Tensor& input_ids,
                            const at::Tensor& attention_mask, const at::Tensor& labels) const;
  // Classification / regression: the score at each row's last real token.
  at::Tensor sequence_logits(const models::LlamaModel& model, const at::Tensor& input_ids,
                             const at::Tensor& attention_mask = {}) const;

 private:
  PromptTuningConfig config_;
  at::Tensor embeddings_;
  ModulesToSave saved_;
};

}  // namespace opine::peft
