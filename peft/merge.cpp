#include "peft/merge.h"

#include <ATen/core/grad_mode.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "core/error.h"
#include "core/json_file.h"
#include "models/loader.h"
#include "models/safetensors.h"

namespace opine::peft {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* torch_dtype_name(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat: return "float32";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    default: OPINE_CHECK(false, "cannot save weights as ", dtype, " (f32, bf16 or f16)");
  }
  return "";
}

std::string architecture(const models::LlamaConfig& c) {
  const std::string family = c.model_type == "qwen2" ? "Qwen2" : c.model_type == "mistral" ? "Mistral" : "Llama";
  return family + (c.head == models::HeadKind::kCausalLm ? "ForCausalLM" : "ForSequenceClassification");
}

// The head's keys of a config.json: id2label / label2id (the class names when given, the
// source's when they fit, else LABEL_i), problem_type.
void set_head_keys(json& j, models::HeadKind head, int64_t num_labels, const std::vector<std::string>& labels) {
  if (head == models::HeadKind::kCausalLm) {
    for (const char* k : {"id2label", "label2id", "num_labels", "problem_type"}) j.erase(k);
    return;
  }
  json id2label = json::object(), label2id = json::object();
  const bool named = int64_t(labels.size()) == num_labels;
  const bool same = j.contains("id2label") && j["id2label"].is_object() && int64_t(j["id2label"].size()) == num_labels;
  for (int64_t i = 0; i < num_labels && (named || !same); ++i) {
    const std::string name = named ? labels[size_t(i)] : "LABEL_" + std::to_string(i);
    id2label[std::to_string(i)] = name;
    label2id[name] = i;
  }
  if (named || !same) {
    j["id2label"] = id2label;
    j["label2id"] = label2id;
  }
  if (head == models::HeadKind::kRegression) j["problem_type"] = "regression";
  else if (j.value("problem_type", std::string()) == "regression") j.erase("problem_type");
}

json encoder_config(const models::EncoderModel& model, const std::string& source, at::ScalarType dtype,
                    const std::vector<std::string>& labels) {
  const fs::path src_config = fs::path(source) / "config.json";
  OPINE_CHECK_KIND(fs::exists(src_config), ErrorKind::kIo, src_config.string(), " not found");
  json j = read_json_file(src_config);
  const models::EncoderConfig& c = model.config();
  const std::string family = c.model_type == "xlm-roberta" ? "XLMRoberta" : c.model_type == "roberta" ? "Roberta" : "Bert";
  if (c.head) {
    j["architectures"] = {family + "ForSequenceClassification"};
    set_head_keys(j, *c.head, c.num_labels, labels);
  } else {
    j["architectures"] = {family + "Model"};
  }
  j.erase("torch_dtype");
  j["dtype"] = torch_dtype_name(dtype);
  return j;
}

json hf_config(const models::LlamaModel& model, const std::string& source, at::ScalarType dtype,
               const std::vector<std::string>& labels) {
  const models::LlamaConfig& c = model.config();
  json j = json::object();
  const fs::path src_config = fs::path(source) / "config.json";
  const bool from_hf = fs::is_directory(source) && fs::exists(src_config);
  if (from_hf) {
    j = read_json_file(src_config);
  } else {
    // Built from the hyperparameters (GGUF and llama2.c sources have no config.json).
    j["model_type"] = c.model_type;
    j["rope_parameters"] = {{"rope_type", c.rope_scaling.type}, {"rope_theta", c.rope_theta}};
    if (c.rope_scaling.type != "default") j["rope_parameters"]["factor"] = c.rope_scaling.factor;
    if (c.rope_scaling.type == "llama3") {
      j["rope_parameters"]["low_freq_factor"] = c.rope_scaling.low_freq_factor;
      j["rope_parameters"]["high_freq_factor"] = c.rope_scaling.high_freq_factor;
      j["rope_parameters"]["original_max_position_embeddings"] = c.rope_scaling.original_max_position_embeddings;
    }
    if (c.model_type != "qwen2") j["attention_bias"] = c.attention_bias;
    if (c.model_type == "llama") j["mlp_bias"] = c.mlp_bias;
    if (c.sliding_window) {
      j["sliding_window"] = *c.sliding_window;
      if (c.model_type == "qwen2") j["use_sliding_window"] = true;
    }
    j["hidden_act"] = "silu";
    if (c.bos_token_id) j["bos_token_id"] = *c.bos_token_id;
    if (c.eos_token_id) j["eos_token_id"] = *c.eos_token_id;
    if (c.pad_token_id) j["pad_token_id"] = *c.pad_token_id;
  }
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_layers;
  j["num_attention_heads"] = c.num_heads;
  j["num_key_value_heads"] = c.num_kv_heads;
  j["head_dim"] = c.head_dim;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  // The head may differ from the source's (a classification head put on a causal checkpoint).
  j["architectures"] = {architecture(c)};
  set_head_keys(j, c.head, c.num_labels, labels);
  j.erase("torch_dtype");
  j["dtype"] = torch_dtype_name(dtype);
  return j;
}

}  // namespace

std::vector<std::pair<std::string, at::Tensor>> hf_state_dict(models::Backbone& model, at::ScalarType dtype) {
  at::NoGradGuard no_grad;
  std::vector<std::pair<std::string, at::Tensor>> out;
  auto add = [&](const std::string& name, const at::Tensor& t) {
    if (t.defined()) out.emplace_back(name, t.detach().to(at::kCPU, dtype).contiguous());
  };
  for (const models::WeightSlotRef& w : model.weight_table()) add(w.name, *w.tensor);
  for (const LinearSlotRef& s : model.linear_table()) {
    if (!s.linear->op) continue;  // plain weights came with weight_table
    add(s.name + ".weight", s.linear->op->dense_weight(at::kFloat));
    add(s.name + ".bias", s.linear->op->bias());
  }
  return out;
}

void save_hf_model(const std::string& out, models::Backbone& model, const std::string& source, at::ScalarType dtype,
                   const std::vector<std::string>& labels) {
  std::error_code ec;
  fs::create_directories(out, ec);
  OPINE_CHECK_KIND(!ec && fs::is_directory(out), ErrorKind::kIo, "cannot create folder ", out, ": ", ec.message());
  const auto* encoder = dynamic_cast<const models::EncoderModel*>(&model);
  const json config = encoder ? encoder_config(*encoder, source, dtype, labels)
                              : hf_config(dynamic_cast<const models::LlamaModel&>(model), source, dtype, labels);
  models::save_safetensors((fs::path(out) / "model.safetensors").string(), hf_state_dict(model, dtype),
                           {{"format", "pt"}});
  const std::string path = (fs::path(out) / "config.json").string();
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << config.dump(2) << "\n";
    OPINE_CHECK_KIND(f.good(), ErrorKind::kIo, "cannot write ", tmp);
  }
  fs::rename(tmp, path, ec);
  OPINE_CHECK_KIND(!ec, ErrorKind::kIo, "cannot rename ", tmp, " to ", path, ": ", ec.message());
  if (fs::is_directory(source) && fs::weakly_canonical(source) != fs::weakly_canonical(out)) {
    for (const char* name : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                             "generation_config.json", "chat_template.jinja", "vocab.txt", "sentencepiece.bpe.model"}) {
      const fs::path from = fs::path(source) / name;
      if (fs::exists(from)) fs::copy_file(from, fs::path(out) / name, fs::copy_options::overwrite_existing, ec);
      OPINE_CHECK_KIND(!ec, ErrorKind::kIo, "cannot copy ", from.string(), " to ", out, ": ", ec.message());
    }
  }
}

}  // namespace opine::peft
