// silu(gate) * up, the activation of the Llama family's MLP, as one autograd function for
// float32 CPU tensors: one pass forward, one backward, and only its two inputs kept for backward
// (the two libtorch ops also keep silu(gate) and make three passes forward, four backward).
// Other dtypes and devices take the two ops.
#pragma once

#include <ATen/ATen.h>

namespace opine::models {

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up);

}  // namespace opine::models
