// bitsandbytes' serialized form of a 4-bit weight, as transformers saves a bnb 4-bit model:
//   W                                     packed codes in the storage dtype, [(n + 1) / 2 / item, 1]
//   W.absmax                              float32 absmax, or uint8 codes with double quant
//   W.quant_map                           the 16 code values
//   W.nested_absmax, W.nested_quant_map   with double quant: float32 absmax of the absmax, 256-value map
//   W.quant_state.bitsandbytes__nf4|fp4   uint8 bytes of a JSON dict: quant_type, blocksize, dtype,
//                                         shape, and nested_blocksize, nested_dtype, nested_offset
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "quant/format.h"

namespace opine::quant {

// The tensors bnb would save for `q` under `name` (e.g. "model.layers.0.self_attn.q_proj.weight").
std::vector<std::pair<std::string, at::Tensor>> to_bnb_state(const std::string& name, const QuantizedTensor& q);

// Reads a weight saved by bnb under `name`; `get` returns a stored tensor by key, or an undefined
// tensor when the key is absent. Checks the state against the packed codes and the code books.
QuantizedTensor from_bnb_state(const std::string& name, const std::function<at::Tensor(const std::string&)>& get);

// Whether a checkpoint holds a bnb 4-bit weight under `name` (its quant_state key is present).
bool has_bnb_state(const std::string& name, const std::function<bool(const std::string&)>& has);

}  // namespace opine::quant
