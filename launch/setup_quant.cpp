#include "core/error.h"
#include "core/log.h"
#include "launch/model_setup.h"
#include "models/loader.h"
#include "peft/lora_linear.h"
#include "quant/quant_linear.h"
#include "quant/quantize_model.h"

namespace opine::launch {

namespace {
quant::QuantConfig quant_config(const ModelOptions& options) {
  quant::QuantConfig config;
  config.type = quant::parse_quant_type(options.quant);
  config.double_quant = options.double_quant;
  config.block_size = options.quant_block_size;
  config.storage = options.quant_storage == "bf16" ? at::kBFloat16 : at::kByte;
  return config;
}
}  // namespace

void apply_quantization(models::Backbone& model, const ModelOptions& options) {
  const quant::QuantConfig config = quant_config(options);
  // The matmul runs in the model's dtype (bnb_4bit_compute_dtype); heads, embeddings and norms
  // stay in it too, as QLoRA keeps them.
  const quant::QuantSummary summary =
      quant::quantize_linears(model.linear_table(), config, models::parse_dtype(options.dtype));
  log::info("quantized to ", config.describe(), ": ", summary.describe());
}

void share_quant_offsets(models::Backbone& model, dist::Communicator& node) {
  if (node.size() == 1) return;
  std::vector<quant::QuantLinear*> layers;
  for (const LinearSlotRef& s : model.linear_table()) {
    LinearOp* op = s.linear->op.get();
    if (auto* lora = dynamic_cast<peft::LoraLinear*>(op)) op = lora->base().get();
    if (auto* q = dynamic_cast<quant::QuantLinear*>(op)) layers.push_back(q);
  }
  at::Tensor offsets = at::empty({static_cast<int64_t>(layers.size())}, at::kFloat);
  for (size_t i = 0; i < layers.size(); ++i) offsets[i] = layers[i]->offset();
  node.broadcast(offsets, 0);
  for (size_t i = 0; i < layers.size(); ++i) layers[i]->set_offset(offsets[i].item<float>());
}

}  // namespace opine::launch
