#include "core/error.h"
#include "core/log.h"
#include "launch/model_setup.h"
#include "peft/adapter_io.h"
#include "peft/prompt_tuning.h"

namespace opine::launch {

at::Tensor apply_adapter(models::LlamaModel& model, const ModelOptions& options) {
  if (peft::read_peft_type(options.adapter) == "PROMPT_TUNING") {
    peft::PromptTuning prompt = peft::load_prompt_tuning(options.adapter, model);
    log::info("adapter ", options.adapter, ": prompt tuning, ", prompt.num_virtual_tokens(), " virtual tokens");
    return prompt.embeddings().detach();
  }
  peft::LoraModel lora = peft::load_lora_adapter(options.adapter, model);
  log::info("adapter ", options.adapter, ": LoRA r=", lora.config().r, lora.config().use_dora ? " (DoRA)" : "",
            " on ", lora.layers().size(), " layers; ", lora.count_parameters().to_string());
  // Over dense weights the update merges exactly, so inference runs at the base model's speed;
  // a 4-bit base keeps the adapters beside it (merging would quantize them away).
  bool dense = true;
  for (const auto& [name, layer] : lora.layers()) dense = dense && dynamic_cast<const DenseLinear*>(layer->base().get());
  if (dense) lora.merge_and_unload();
  return {};
}

}  // namespace opine::launch
