// What build_model() does to a loaded model, one file per library that does it:
// setup_quant.cpp (quant/) and setup_adapter.cpp (peft/).
#pragma once

#include "core/comm.h"
#include "launch/options.h"
#include "models/llama.h"

namespace opine::launch {

// Replaces the decoder's linear layers by 4-bit ones as `options.quant` says.
void apply_quantization(models::Backbone& model, const ModelOptions& options);
// The double-quantization offsets (floats beside the 4-bit tensors) from node rank 0 to the
// node's skeleton ranks, which quantized shapes only.
void share_quant_offsets(models::Backbone& model, dist::Communicator& node);
// Loads the PEFT adapter folder `options.adapter` onto the model. LoRA changes the model; a
// prompt-tuning adapter changes the input: its soft prompt [n, hidden] is returned (else undefined).
at::Tensor apply_adapter(models::LlamaModel& model, const ModelOptions& options);

}  // namespace opine::launch
