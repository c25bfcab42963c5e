// LoRA's update, scaling * B(A(dropout(x))), added into the base layer's output by one autograd
// function, for float32 on the CPU. What PEFT's nn.Dropout + two nn.Linear keep for backward per adapted layer is the
// dropout mask and the dropped input (two copies of x); this keeps x itself (shared by q/k/v, or
// gate/up, which read the same x) and A's small output, and regenerates the mask from its key
// (peft/dropout_mask.h). The mask's key is drawn from the default CPU generator, so a seeded run
// repeats and a recomputed layer draws the same mask. Same distribution as torch's dropout:
// each element kept with probability 1 - p and scaled by 1 / (1 - p); not the same draws.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace opine::peft {

// Whether lora_update_into() takes these: all float32 on the CPU, `result` contiguous.
bool lora_update_into_applies(const at::Tensor& result, const at::Tensor& x, const at::Tensor& a,
                              const at::Tensor& b);

// result + scaling * (dropout_p(x) A^T) B^T for x [..., in], A [r, in], B [out, r] and the base
// layer's output `result` [..., out], which it updates in place and returns (p = 0: no dropout).
at::Tensor lora_update_into(at::Tensor result, const at::Tensor& x, const at::Tensor& a, const at::Tensor& b,
                            double p, double scaling);

// The mask alone: x * keep(key) / (1 - p), float32 CPU: what the update applies for that key
// (tests check the update against it).
at::Tensor apply_dropout_mask(const at::Tensor& x, uint64_t key, double p);

}  // namespace opine::peft
