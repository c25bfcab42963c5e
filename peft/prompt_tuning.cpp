#include "peft/prompt_tuning.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "models/heads.h"

namespace opine::peft {

using nlohmann::json;

PromptTuningConfig prompt_tuning_config_from_json(const json& j, const std::string& source,
                                                  const models::LlamaConfig& model) {
  OPINE_CHECK_FORMAT(j.is_object(), source, ": not a JSON object");
  const std::string peft_type = j.value("peft_type", std::string());
  OPINE_CHECK_FORMAT(peft_type == "PROMPT_TUNING", source, ": peft_type is '", peft_type,
                     "', expected 'PROMPT_TUNING'");
  PromptTuningConfig c;
  static const std::set<std::string> kMetadata = {"auto_mapping", "base_model_name_or_path", "inference_mode",
                                                  "peft_type", "peft_version", "revision", "tokenizer_kwargs",
                                                  "num_attention_heads", "num_layers"};
  for (const auto& [key, v] : j.items()) {
    auto bad = [&](const std::string& what) {
      throw Error(ErrorKind::kFormat, source + ": '" + key + "' " + what + ", got " + v.dump());
    };
    if (kMetadata.count(key)) {
      if (key == "base_model_name_or_path" && v.is_string()) c.base_model_name_or_path = v.get<std::string>();
    } else if (key == "num_virtual_tokens") {
      if (!v.is_number_integer() || v.get<int>() < 1) bad("must be a positive integer");
      c.num_virtual_tokens = v.get<int>();
    } else if (key == "token_dim") {
      if (!v.is_null() && !(v.is_number_integer() && v.get<int64_t>() == model.hidden_size))
        bad("does not match the model's hidden size " + std::to_string(model.hidden_size));
    } else if (key == "num_transformer_submodules") {
      if (!v.is_null() && v != 1) bad("must be 1 (decoder-only models)");
    } else if (key == "prompt_tuning_init") {
      if (!v.is_string()) bad("must be RANDOM, TEXT or SAMPLE_VOCAB");
      c.prompt_tuning_init = v.get<std::string>();
      if (c.prompt_tuning_init != "RANDOM" && c.prompt_tuning_init != "TEXT" && c.prompt_tuning_init != "SAMPLE_VOCAB")
        bad("must be RANDOM, TEXT or SAMPLE_VOCAB");
    } else if (key == "prompt_tuning_init_text" || key == "tokenizer_name_or_path") {
      if (!v.is_null() && !v.is_string()) bad("must be a string or null");
      (key == "prompt_tuning_init_text" ? c.prompt_tuning_init_text : c.tokenizer_name_or_path) =
          v.is_null() ? "" : v.get<std::string>();
    } else if (key == "task_type") {
      if (!v.is_null() && !v.is_string()) bad("must be a string or null");
      c.task_type = v.is_null() ? "" : v.get<std::string>();
      if (!c.task_type.empty() && c.task_type != "CAUSAL_LM" && c.task_type != "SEQ_CLS")
        bad("is not supported (CAUSAL_LM or SEQ_CLS)");
    } else if (key == "modules_to_save") {
      if (v.is_array()) {
        for (const json& m : v) {
          if (!m.is_string()) bad("must be a list of module names");
          c.modules_to_save.push_back(m.get<std::string>());
        }
      } else if (!v.is_null()) {
        bad("must be a list of module names or null");
      }
    } else if (!(v.is_null() || (v.is_boolean() && !v.get<bool>()) || (v.is_object() && v.empty()))) {
      bad("is not a prompt-tuning setting opine knows (from a newer PEFT?)");
    }
  }
  return c;
}

json prompt_tuning_config_to_json(const PromptTuningConfig& c, const models::LlamaConfig& model) {
  auto text = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  json j = json::object();
  j["auto_mapping"] = nullptr;
  j["base_model_name_or_path"] = text(c.base_model_name_or_path);
  j["inference_mode"] = true;
  j["modules_to_save"] = c.modules_to_save.empty() ? json(nullptr) : json(c.modules_to_save);
  j["num_attention_heads"] = model.num_heads;
  j["num_layers"] = model.num_layers;
  j["num_transformer_submodules"] = 1;
  j["num_virtual_tokens"] = c.num_virtual_tokens;
  j["peft_type"] = "PROMPT_TUNING";
  j["peft_version"] = "0.21.2";
  j["prompt_tuning_init"] = c.prompt_tuning_init;
  j["prompt_tuning_init_text"] = text(c.prompt_tuning_init_text);
  j["revision"] = nullptr;
  j["task_type"] = text(c.task_type);
  j["token_dim"] = model.hidden_size;
  j["tokenizer_kwargs"] = nullptr;
  j["tokenizer_name_or_path"] = text(c.tokenizer_name_or_path);
  return j;
}

PromptTuning::PromptTuning(models::LlamaModel& model, PromptTuningConfig config, uint64_t seed)
    : config_(std::move(config)) {
  OPINE_CHECK(config_.num_virtual_tokens >= 1, "num_virtual_tokens must be positive");
  saved_.attach(model, config_.modules_to_save, config_.task_type);
  config_.modules_to_save = saved_.names();
  at::NoGradGuard no_grad;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const int64_t n = config_.num_virtual_tokens, h = model.config().hidden_size;
  at::Tensor e = at::empty({n, h}, at::kFloat).normal_(0.0, 1.0, gen);  // nn.Embedding's own init
  if (config_.prompt_tuning_init == "SAMPLE_VOCAB") {
    at::Tensor ids = at::randint(0, model.config().vocab_size, {n}, gen, at::TensorOptions().dtype(at::kLong));
    e = at::embedding(model.embed_tokens, ids.to(model.device())).to(at::kCPU, at::kFloat);
  }
  embeddings_ = e.to(model.device()).set_requires_grad(true);
}

void PromptTuning::init_from_tokens(const models::LlamaModel& model, const std::vector<int64_t>& ids) {
  OPINE_CHECK(!ids.empty(), "prompt tuning: the init text has no tokens");
  const int64_t n = config_.num_virtual_tokens;
  std::vector<int64_t> picked;
  while (int64_t(picked.size()) < n) picked.insert(picked.end(), ids.begin(), ids.end());
  picked.resize(n);
  for (int64_t id : picked)
    OPINE_CHECK(id >= 0 && id < model.config().vocab_size, "prompt tuning: init token id ", id,
                " is outside the vocabulary [0, ", model.config().vocab_size, ")");
  at::NoGradGuard no_grad;
  at::Tensor t = at::tensor(picked, at::kLong).to(model.device());
  embeddings_.copy_(at::embedding(model.embed_tokens, t).to(at::kFloat));
}

void PromptTuning::init_from_text(const models::LlamaModel& model, const models::Tokenizer& tokenizer,
                                  const std::string& text) {
  init_from_tokens(model, tokenizer.encode(text));
}

std::vector<std::pair<std::string, at::Tensor>> PromptTuning::named_trainable() const {
  std::vector<std::pair<std::string, at::Tensor>> out = {{"prompt_embeddings", embeddings_}};
  for (auto& named : saved_.named("base_model.")) out.push_back(named);  // not base_model.model.: no tuner wraps it
  return out;
}

ParameterCount PromptTuning::count_parameters(models::LlamaModel& model) const {
  ParameterCount c{0, base_parameter_count(model) + embeddings_.numel() + saved_.original_elements()};
  for (const auto& [name, t] : named_trainable()) c.trainable += t.numel();
  return c;
}

std::pair<at::Tensor, at::Tensor> PromptTuning::prepend(const models::LlamaModel& model, const at::Tensor& input_ids,
                                                        const at::Tensor& attention_mask) const {
  at::Tensor tokens = model.embed(input_ids);
  const int64_t batch = tokens.size(0), n = num_virtual_tokens();
  at::Tensor prompt = embeddings_.to(tokens.scalar_type()).unsqueeze(0).expand({batch, n, tokens.size(2)});
  at::Tensor embeds = at::cat({prompt, tokens}, 1);
  at::Tensor mask;
  if (attention_mask.defined()) {
    at::Tensor m = attention_mask.to(model.device());
    mask = at::cat({at::ones({batch, n}, m.options()), m}, 1);
  }
  return {embeds, mask};
}

models::LlamaOutput PromptTuning::forward(const models::LlamaModel& model, const at::Tensor& input_ids,
                                          const at::Tensor& attention_mask) const {
  auto [embeds, mask] = prepend(model, input_ids, attention_mask);
  return model.forward_embeds(embeds, mask);
}

at::Tensor PromptTuning::lm_logits_full(const models::LlamaModel& model, const at::Tensor& input_ids,
                                        const at::Tensor& attention_mask) const {
  return model.lm_logits(forward(model, input_ids, attention_mask).hidden);
}

at::Tensor PromptTuning::lm_logits(const models::LlamaModel& model, const at::Tensor& input_ids,
                                   const at::Tensor& attention_mask) const {
  at::Tensor full = lm_logits_full(model, input_ids, attention_mask);
  return full.narrow(1, num_virtual_tokens(), full.size(1) - num_virtual_tokens());
}

at::Tensor PromptTuning::causal_lm_loss(const models::LlamaModel& model, const at::Tensor& input_ids,
                                        const at::Tensor& attention_mask, const at::Tensor& labels) const {
  at::Tensor full = lm_logits_full(model, input_ids, attention_mask);
  at::Tensor l = labels.to(full.device(), at::kLong);
  at::Tensor prefix = at::full({l.size(0), num_virtual_tokens()}, models::kIgnoreIndex, l.options());
  return models::causal_lm_loss(full, at::cat({prefix, l}, 1));
}

at::Tensor PromptTuning::sequence_logits(const models::LlamaModel& model, const at::Tensor& input_ids,
                                         const at::Tensor& attention_mask) const {
  auto [embeds, mask] = prepend(model, input_ids, attention_mask);
  return model.sequence_logits(model.forward_embeds(embeds, mask).hidden, mask);
}

}  // namespace opine::peft
