#include "peft/adapter_io.h"

#include <ATen/core/grad_mode.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <unistd.h>

#include "core/error.h"
#include "core/json_file.h"
#include "models/safetensors.h"
#include "models/weights.h"

namespace opine::peft {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string file_in(const std::string& dir, const char* name) {
  OPINE_CHECK_KIND(fs::is_directory(dir), ErrorKind::kIo, "adapter folder '", dir, "' does not exist");
  const std::string path = (fs::path(dir) / name).string();
  if (std::string(name) == kAdapterWeightsFile && !fs::exists(path) && fs::exists(fs::path(dir) / "adapter_model.bin"))
    OPINE_CHECK_KIND(false, ErrorKind::kIo, dir, " holds adapter_model.bin (a pickle), which opine does not read; "
                     "save the adapter with safe_serialization=True (PEFT's default)");
  OPINE_CHECK_KIND(fs::exists(path), ErrorKind::kIo, "adapter folder '", dir, "' has no ", name);
  return path;
}

json read_json(const std::string& path) { return read_json_file(path); }

// Temp file + rename, so a crash never leaves half a config.
void write_text_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    OPINE_CHECK_KIND(out.good(), ErrorKind::kIo, "cannot write ", tmp);
    out << text;
    out.flush();
    OPINE_CHECK_KIND(out.good(), ErrorKind::kIo, "cannot write ", tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  OPINE_CHECK_KIND(!ec, ErrorKind::kIo, "cannot rename ", tmp, " to ", path, ": ", ec.message());
}

void make_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  OPINE_CHECK_KIND(!ec && fs::is_directory(dir), ErrorKind::kIo, "cannot create folder ", dir, ": ", ec.message());
}

void save_tensors(const std::string& dir, const std::vector<std::pair<std::string, at::Tensor>>& named) {
  std::vector<std::pair<std::string, at::Tensor>> cpu;
  for (const auto& [name, t] : named) cpu.emplace_back(name, t.detach().to(at::kCPU).contiguous());
  models::save_safetensors((fs::path(dir) / kAdapterWeightsFile).string(), cpu, {{"format", "pt"}});
}

// Copies each expected tensor from the file; every missing, unexpected or mis-shaped name is
// collected into one error.
void load_tensors(const std::string& dir, const std::vector<std::pair<std::string, at::Tensor>>& expected,
                  const std::string& hint) {
  const std::string path = file_in(dir, kAdapterWeightsFile);
  models::SafetensorsFile file = models::SafetensorsFile::open(path);
  std::vector<std::string> problems;
  std::set<std::string> used;
  for (const auto& [name, t] : expected) {
    auto it = file.entries().find(name);
    if (it == file.entries().end()) {
      problems.push_back("missing " + name + " " + models::shape_string(t.sizes().vec()));
      continue;
    }
    used.insert(name);
    if (it->second.shape != t.sizes().vec()) {
      problems.push_back(name + " has shape " + models::shape_string(it->second.shape) + ", the model needs " +
                         models::shape_string(t.sizes().vec()));
    }
  }
  for (const auto& [name, entry] : file.entries())
    if (!used.count(name)) problems.push_back("unexpected " + name + " " + models::shape_string(entry.shape));
  if (!problems.empty()) {
    std::string msg = path + " does not fit the model (" + hint + "):";
    const size_t shown = std::min<size_t>(problems.size(), 20);
    for (size_t i = 0; i < shown; ++i) msg += "\n  " + problems[i];
    if (shown < problems.size()) msg += "\n  ... and " + std::to_string(problems.size() - shown) + " more";
    throw Error(ErrorKind::kFormat, msg);
  }
  at::NoGradGuard no_grad;
  for (const auto& [name, t] : expected) {
    at::Tensor dst = t;  // shares storage with the model's tensor
    dst.copy_(file.tensor(name));
  }
}

}  // namespace

std::string read_peft_type(const std::string& dir) {
  const std::string path = file_in(dir, kAdapterConfigFile);
  json j = read_json(path);
  OPINE_CHECK_FORMAT(j.is_object() && j.contains("peft_type") && j["peft_type"].is_string(), path,
                     ": no peft_type (is this a PEFT adapter_config.json?)");
  return j["peft_type"].get<std::string>();
}

void save_lora_adapter(const std::string& dir, const LoraModel& lora) {
  make_dir(dir);
  save_tensors(dir, lora.named_trainable());
  write_text_atomic((fs::path(dir) / kAdapterConfigFile).string(), lora_config_to_json(lora.saved_config()).dump(2));
}

LoraConfig read_lora_config(const std::string& dir) {
  const std::string path = file_in(dir, kAdapterConfigFile);
  return lora_config_from_json(read_json(path), path);
}

LoraModel load_lora_adapter(const std::string& dir, models::Backbone& model) {
  const std::string path = file_in(dir, kAdapterConfigFile);
  LoraConfig config = read_lora_config(dir);
  config.init_lora_weights = "false";  // nothing to draw: the file has the values
  LoraModel lora = [&] {
    try {
      return LoraModel(model, config, 0, /*initialize=*/false);
    } catch (const Error& e) {
      throw Error(e.kind(), path + ": " + e.what());
    }
  }();
  try {
    load_tensors(dir, lora.named_trainable(),
                 "r=" + std::to_string(config.r) + (config.use_dora ? ", DoRA" : "") + ", bias=" + config.bias);
  } catch (...) {
    lora.unload();  // leave the model as it was
    throw;
  }
  return lora;
}

void save_prompt_tuning(const std::string& dir, const PromptTuning& prompt, const models::LlamaConfig& model) {
  make_dir(dir);
  save_tensors(dir, prompt.named_trainable());
  write_text_atomic((fs::path(dir) / kAdapterConfigFile).string(),
                    prompt_tuning_config_to_json(prompt.config(), model).dump(2));
}

PromptTuning load_prompt_tuning(const std::string& dir, models::LlamaModel& model) {
  const std::string path = file_in(dir, kAdapterConfigFile);
  PromptTuningConfig config = prompt_tuning_config_from_json(read_json(path), path, model.config());
  config.prompt_tuning_init = "RANDOM";  // overwritten from the file below
  PromptTuning prompt(model, config);
  load_tensors(dir, prompt.named_trainable(), std::to_string(config.num_virtual_tokens) + " virtual tokens");
  return prompt;
}

Adapter load_adapter(const std::string& dir, models::LlamaModel& model) {
  const std::string type = read_peft_type(dir);
  Adapter a;
  if (type == "LORA") a.lora = std::make_unique<LoraModel>(load_lora_adapter(dir, model));
  else if (type == "PROMPT_TUNING") a.prompt = std::make_unique<PromptTuning>(load_prompt_tuning(dir, model));
  else OPINE_CHECK_FORMAT(false, (fs::path(dir) / kAdapterConfigFile).string(), ": peft_type '", type,
                          "' is not supported by opine (LORA or PROMPT_TUNING)");
  return a;
}

}  // namespace opine::peft
