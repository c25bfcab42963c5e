// A model (adapters merged in) written as a Hugging Face folder: config.json + model.safetensors,
// loadable by transformers' from_pretrained and by opine. What `opine merge` writes.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

#include "models/backbone.h"

namespace opine::peft {

// Every weight under its transformers name, each projection as the dense weight its op computes
// with (LoRA merged in, 4-bit dequantized), in `dtype`, on the CPU.
std::vector<std::pair<std::string, at::Tensor>> hf_state_dict(models::Backbone& model, at::ScalarType dtype);

// Writes OUT/config.json and OUT/model.safetensors (atomically). `source` is the folder or file
// the model came from: a Hugging Face folder's config.json is the starting point (its extra keys
// kept) and its tokenizer and generation files are copied along; any other source gets a
// config.json built from the model's hyperparameters. `labels` name the classes of a
// classification head in id2label (else LABEL_0, LABEL_1, ...).
void save_hf_model(const std::string& out, models::Backbone& model, const std::string& source,
                   at::ScalarType dtype, const std::vector<std::string>& labels = {});

}  // namespace opine::peft
