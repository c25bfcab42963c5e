// Adapter folders in PEFT's format: adapter_config.json + adapter_model.safetensors, with PEFT's
// tensor names, so PeftModel.from_pretrained loads what opine saves and opine loads what PEFT
// saves. Writes are atomic (temp file + rename); reading checks every name and shape against the
// model and reports all problems at once.
#pragma once

#include <memory>
#include <string>

#include "models/llama.h"
#include "peft/lora_model.h"
#include "peft/prompt_tuning.h"

namespace opine::peft {

inline constexpr const char* kAdapterConfigFile = "adapter_config.json";
inline constexpr const char* kAdapterWeightsFile = "adapter_model.safetensors";

// The peft_type in DIR/adapter_config.json ("LORA", "PROMPT_TUNING", ...). A missing folder or
// file is an opine::Error (kIo) naming it.
std::string read_peft_type(const std::string& dir);

void save_lora_adapter(const std::string& dir, const LoraModel& lora);
// Attaches the adapter in DIR to `model` (which must outlive the result).
// DIR/adapter_config.json of a LoRA adapter.
LoraConfig read_lora_config(const std::string& dir);
LoraModel load_lora_adapter(const std::string& dir, models::Backbone& model);

void save_prompt_tuning(const std::string& dir, const PromptTuning& prompt, const models::LlamaConfig& model);
PromptTuning load_prompt_tuning(const std::string& dir, models::LlamaModel& model);

// Whichever kind DIR holds.
struct Adapter {
  std::unique_ptr<LoraModel> lora;
  std::unique_ptr<PromptTuning> prompt;
};
Adapter load_adapter(const std::string& dir, models::LlamaModel& model);

}  // namespace opine::peft
