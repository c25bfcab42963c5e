#include "peft/lora_config.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"

namespace opine::peft {

using nlohmann::json;

namespace {

constexpr const char* kPeftVersion = "0.21.2";  // the PEFT release whose format this mirrors

// An "off" value: what PEFT writes for a feature that is not used.
bool is_off(const json& v) {
  return v.is_null() || (v.is_boolean() && !v.get<bool>()) || (v.is_object() && v.empty()) ||
         (v.is_array() && v.empty());
}

std::vector<std::string> string_list(const json& v, const std::string& source, const char* key) {
  std::vector<std::string> out;
  OPINE_CHECK_FORMAT(v.is_array(), source, ": '", key, "' must be a list of module names, got ", v.dump());
  for (const json& item : v) {
    OPINE_CHECK_FORMAT(item.is_string(), source, ": '", key, "' must hold strings, got ", item.dump());
    out.push_back(item.get<std::string>());
  }
  return out;
}

}  // namespace

double LoraConfig::scaling() const { return use_rslora ? lora_alpha / std::sqrt(double(r)) : lora_alpha / r; }

bool LoraConfig::all_linear() const {
  if (target_modules.size() != 1) return false;
  std::string t = target_modules[0];
  for (char& c : t) c = char(std::tolower(static_cast<unsigned char>(c)));
  return t == "all-linear";
}

void LoraConfig::validate(const std::string& source) const {
  OPINE_CHECK_KIND(r >= 1, ErrorKind::kConfig, source, ": r must be a positive integer, got ", r);
  OPINE_CHECK_KIND(lora_dropout >= 0 && lora_dropout < 1, ErrorKind::kConfig, source,
                   ": lora_dropout must be in [0, 1), got ", lora_dropout);
  OPINE_CHECK_KIND(!target_modules.empty() || !target_modules_regex.empty(), ErrorKind::kConfig, source,
                   ": no target_modules given (names such as q_proj, all-linear, or target_modules_regex)");
  OPINE_CHECK_KIND(target_modules.empty() || target_modules_regex.empty(), ErrorKind::kConfig, source,
                   ": give target_modules or target_modules_regex, not both");
  OPINE_CHECK_KIND(bias == "none" || bias == "all" || bias == "lora_only", ErrorKind::kConfig, source,
                   ": bias must be none, all or lora_only, got '", bias, "'");
  OPINE_CHECK_KIND(init_lora_weights == "true" || init_lora_weights == "gaussian" || init_lora_weights == "false",
                   ErrorKind::kConfig, source, ": init_lora_weights must be true, gaussian or false, got '",
                   init_lora_weights, "'");
  OPINE_CHECK_KIND(!loraplus_lr_ratio || *loraplus_lr_ratio > 0, ErrorKind::kConfig, source,
                   ": loraplus_lr_ratio must be positive");
  OPINE_CHECK_KIND(task_type.empty() || task_type == "CAUSAL_LM" || task_type == "SEQ_CLS", ErrorKind::kConfig,
                   source, ": task_type '", task_type, "' is not supported (CAUSAL_LM or SEQ_CLS)");
}

LoraConfig lora_config_from_json(const json& j, const std::string& source) {
  OPINE_CHECK_FORMAT(j.is_object(), source, ": not a JSON object");
  const std::string peft_type = j.value("peft_type", std::string());
  OPINE_CHECK_FORMAT(peft_type == "LORA", source, ": peft_type is '", peft_type, "', expected 'LORA'");
  LoraConfig c;
  // Keys that only describe where the adapter came from.
  static const std::set<std::string> kMetadata = {"auto_mapping", "base_model_name_or_path", "inference_mode",
                                                  "peft_type",    "peft_version",            "revision",
                                                  "megatron_core", "qalora_group_size"};
  // Features opine does not implement: accepted only while switched off.
  static const std::set<std::string> kUnsupported = {
      "alora_invocation_tokens", "alpha_pattern",  "arrow_config",    "corda_config", "ensure_weight_tying",
      "eva_config",              "fan_in_fan_out", "kasa_config",     "layer_replication", "loftq_config",
      "lora_bias",               "lora_ga_config", "megatron_config", "monteclora_config", "rank_pattern",
      "target_parameters",       "trainable_token_indices", "use_bdlora", "use_qalora", "velora_config"};
  for (const auto& [key, v] : j.items()) {
    auto bad = [&](const std::string& what) {
      throw Error(ErrorKind::kFormat, source + ": '" + key + "' " + what + ", got " + v.dump());
    };
    try {
      if (kMetadata.count(key)) {
        if (key == "base_model_name_or_path" && v.is_string()) c.base_model_name_or_path = v.get<std::string>();
      } else if (key == "r") {
        if (!v.is_number_integer()) bad("must be an integer");
        c.r = v.get<int>();
      } else if (key == "lora_alpha") {
        if (!v.is_number()) bad("must be a number");
        c.lora_alpha = v.get<double>();
      } else if (key == "lora_dropout") {
        if (!v.is_number()) bad("must be a number");
        c.lora_dropout = v.get<double>();
      } else if (key == "target_modules") {
        if (v.is_string()) {
          std::string s = v.get<std::string>(), lower = s;
          for (char& ch : lower) ch = char(std::tolower(static_cast<unsigned char>(ch)));
          if (lower == "all-linear") c.target_modules = {s};
          else c.target_modules_regex = s;
        } else if (!v.is_null()) {
          c.target_modules = string_list(v, source, "target_modules");
        }
      } else if (key == "exclude_modules") {
        if (v.is_string()) bad("as a regular expression is not supported by opine (give a list)");
        if (!v.is_null()) c.exclude_modules = string_list(v, source, "exclude_modules");
      } else if (key == "layers_to_transform") {
        if (v.is_number_integer()) c.layers_to_transform = {v.get<int>()};
        else if (v.is_array()) for (const json& i : v) {
          if (!i.is_number_integer()) bad("must be an integer or a list of integers");
          c.layers_to_transform.push_back(i.get<int>());
        }
        else if (!v.is_null()) bad("must be an integer or a list of integers");
      } else if (key == "layers_pattern") {
        // Llama's decoder layers are "model.layers.N": only that pattern can mean anything here.
        const bool ok = v.is_null() || (v.is_string() && v.get<std::string>() == "layers") ||
                        (v.is_array() && v.size() == 1 && v[0] == "layers") || (v.is_array() && v.empty());
        if (!ok) bad("must be null or \"layers\" for Llama-family models");
      } else if (key == "bias") {
        if (!v.is_string()) bad("must be none, all or lora_only");
        c.bias = v.get<std::string>();
      } else if (key == "use_rslora" || key == "use_dora") {
        if (!v.is_boolean()) bad("must be true or false");
        (key == "use_rslora" ? c.use_rslora : c.use_dora) = v.get<bool>();
      } else if (key == "init_lora_weights") {
        if (v.is_boolean()) c.init_lora_weights = v.get<bool>() ? "true" : "false";
        else if (v.is_string() && v.get<std::string>() == "gaussian") c.init_lora_weights = "gaussian";
        else bad("is not supported by opine (true, false or \"gaussian\")");
      } else if (key == "modules_to_save") {
        if (!v.is_null()) c.modules_to_save = string_list(v, source, "modules_to_save");
      } else if (key == "task_type") {
        if (!v.is_null() && !v.is_string()) bad("must be a string or null");
        c.task_type = v.is_null() ? "" : v.get<std::string>();
      } else if (kUnsupported.count(key)) {
        if (!is_off(v)) bad("is not supported by opine (only its default, off, is)");
      } else {
        if (!is_off(v)) bad("is not a LoRA setting opine knows (from a newer PEFT?)");
      }
    } catch (const json::exception& e) {
      bad(std::string("could not be read: ") + e.what());
    }
  }
  // Duplicates make no difference to matching; PEFT keeps a set.
  try {
    c.validate(source);
  } catch (const Error& e) {
    throw Error(ErrorKind::kFormat, e.what());
  }
  return c;
}

json lora_config_to_json(const LoraConfig& c) {
  json j = json::object();
  for (const char* key : {"alora_invocation_tokens", "arrow_config", "auto_mapping", "corda_config", "eva_config",
                          "kasa_config", "layer_replication", "layers_pattern", "lora_ga_config", "megatron_config",
                          "monteclora_config", "revision", "target_parameters", "trainable_token_indices",
                          "use_bdlora", "velora_config"})
    j[key] = nullptr;
  j["alpha_pattern"] = json::object();
  j["rank_pattern"] = json::object();
  j["loftq_config"] = json::object();
  j["ensure_weight_tying"] = false;
  j["fan_in_fan_out"] = false;
  j["lora_bias"] = false;
  j["use_qalora"] = false;
  j["qalora_group_size"] = 16;
  j["megatron_core"] = "megatron.core";
  j["inference_mode"] = true;
  j["peft_type"] = "LORA";
  j["peft_version"] = kPeftVersion;
  j["base_model_name_or_path"] = c.base_model_name_or_path.empty() ? json(nullptr) : json(c.base_model_name_or_path);
  j["r"] = c.r;
  if (c.lora_alpha == std::floor(c.lora_alpha) && std::abs(c.lora_alpha) < 1e15) j["lora_alpha"] = int64_t(c.lora_alpha);
  else j["lora_alpha"] = c.lora_alpha;
  j["lora_dropout"] = c.lora_dropout;
  if (!c.target_modules_regex.empty()) j["target_modules"] = c.target_modules_regex;
  else if (c.all_linear()) j["target_modules"] = "all-linear";
  else j["target_modules"] = c.target_modules;
  j["exclude_modules"] = c.exclude_modules.empty() ? json(nullptr) : json(c.exclude_modules);
  j["layers_to_transform"] = c.layers_to_transform.empty() ? json(nullptr) : json(c.layers_to_transform);
  j["bias"] = c.bias;
  j["use_rslora"] = c.use_rslora;
  j["use_dora"] = c.use_dora;
  if (c.init_lora_weights == "gaussian") j["init_lora_weights"] = "gaussian";
  else j["init_lora_weights"] = c.init_lora_weights == "true";
  j["modules_to_save"] = c.modules_to_save.empty() ? json(nullptr) : json(c.modules_to_save);
  j["task_type"] = c.task_type.empty() ? json(nullptr) : json(c.task_type);
  return j;
}

}  // namespace opine::peft
