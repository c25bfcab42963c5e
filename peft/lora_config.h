// LoRA's settings, named and defaulted as PEFT's LoraConfig (0.21.2), read from and written to the
// adapter_config.json that PEFT writes, and from opine's YAML configuration.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>
#include <vector>

#include "core/config.h"

namespace opine::peft {

struct LoraConfig {
  int r = 8;
  double lora_alpha = 8;
  double lora_dropout = 0.0;
  // Module names: a name matches a module whose full name is it or ends with ".name"; the single
  // name "all-linear" means every decoder projection (not the heads), as in PEFT.
  std::vector<std::string> target_modules;
  // PEFT's target_modules given as one string: a regular expression the full name must match.
  std::string target_modules_regex;
  std::vector<std::string> exclude_modules;  // same matching as target_modules
  std::vector<int> layers_to_transform;      // only these decoder layers (empty = all)
  std::string bias = "none";                 // none | all | lora_only: which biases train
  bool use_rslora = false;                   // scaling alpha / sqrt(r) instead of alpha / r
  bool use_dora = false;                     // weight-decomposed LoRA (magnitude vector)
  std::string init_lora_weights = "true";    // true (Kaiming-uniform A) | gaussian | false
  // Modules trained in full and saved whole (the classification / regression head "score").
  std::vector<std::string> modules_to_save;
  // LoRA+: B (and every 1-D trainable tensor) learns loraplus_lr_ratio times faster than A.
  std::optional<double> loraplus_lr_ratio;
  std::string task_type = "CAUSAL_LM";  // CAUSAL_LM | SEQ_CLS (PEFT's TaskType)
  std::string base_model_name_or_path;

  template <class V>
  void visit(V& v) {
    v("r", r, "rank of the update B A", config::at_least(1));
    v("lora_alpha", lora_alpha, "scale numerator: alpha / r (or alpha / sqrt(r) with rsLoRA)");
    v("lora_dropout", lora_dropout, "dropout on the adapter's input while training", config::in_range(0.0, 1.0));
    v("target_modules", target_modules, "module names or suffixes (q_proj, ...), or all-linear");
    v("target_modules_regex", target_modules_regex, "regular expression a full module name must match");
    v("exclude_modules", exclude_modules, "module names or suffixes never adapted");
    v("layers_to_transform", layers_to_transform, "decoder layer indices to adapt (empty = all)");
    v("bias", bias, "which biases train", config::one_of({"none", "all", "lora_only"}));
    v("use_rslora", use_rslora, "rank-stabilised scaling alpha / sqrt(r)");
    v("use_dora", use_dora, "DoRA: learn a magnitude per output row");
    v("init_lora_weights", init_lora_weights, "A's initialisation (B starts at zero)",
      config::one_of({"true", "gaussian", "false"}));
    v("modules_to_save", modules_to_save, "modules trained in full (e.g. score)");
    v("loraplus_lr_ratio", loraplus_lr_ratio, "LoRA+: learning-rate ratio of B to A");
    v("task_type", task_type, "PEFT task type", config::one_of({"CAUSAL_LM", "SEQ_CLS"}));
    v("base_model_name_or_path", base_model_name_or_path, "recorded in adapter_config.json");
  }

  // alpha / r, or alpha / sqrt(r) with rsLoRA.
  double scaling() const;
  bool all_linear() const;
  // Checks values and combinations; `source` names the file or section in messages.
  void validate(const std::string& source) const;
};

// PEFT's adapter_config.json <-> LoraConfig. Reading rejects, naming the file and key, a
// peft_type other than LORA and every setting opine does not implement (rank_pattern, lora_bias,
// PiSSA/OLoRA init, ...) unless it holds PEFT's default; keys PEFT does not know either are
// accepted only when null, false or empty (switched off).
LoraConfig lora_config_from_json(const nlohmann::json& j, const std::string& source);
// Every field PEFT 0.21.2 writes, with its defaults, so PeftConfig.from_pretrained reads it.
nlohmann::json lora_config_to_json(const LoraConfig& config);

}  // namespace opine::peft
