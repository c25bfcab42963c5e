// Quantize-on-load: replaces a model's linear projections by 4-bit ones, as QLoRA does with
// transformers + bitsandbytes (heads, embeddings and norms stay in high precision).
#pragma once

#include <string>
#include <vector>

#include "core/linear.h"
#include "quant/format.h"

namespace opine::quant {

// Module names never quantized: a projection whose name contains one of them is skipped
// (transformers' llm_int8_skip_modules semantics). Heads, embeddings and norms are not in a
// model's linear table at all; the list guards them should they ever be.
std::vector<std::string> default_skip_modules();

struct QuantSummary {
  int64_t layers = 0;        // projections now 4-bit
  int64_t params = 0;        // their weight parameters
  int64_t bytes = 0;         // what they keep resident: packed codes, every scale, biases
  int64_t weight_bytes = 0;  // of which packed codes and scales only
  int64_t dense_bytes = 0;   // what the same layers held before
  std::vector<std::string> skipped;
  double bytes_per_param() const { return params ? double(weight_bytes) / double(params) : 0.0; }
  std::string describe() const;
};

// Installs a QuantLinear on every slot not matched by `skip`, one layer at a time (each dense
// weight is released as soon as its 4-bit copy is installed).
QuantSummary quantize_linears(const std::vector<LinearSlotRef>& slots, const QuantConfig& config,
                              at::ScalarType compute_dtype,
                              const std::vector<std::string>& skip = default_skip_modules());

}  // namespace opine::quant
