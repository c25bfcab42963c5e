// CUDA paths of the 4-bit format (tensor-level wrappers, in kernels_cuda.cpp). Only built and
// called when this build has CUDA (OPINE_HAVE_CUDA) and the tensors live on a GPU.
#pragma once

#include <ATen/ATen.h>

#include "quant/format.h"

namespace opine::quant::cuda {

#ifdef OPINE_HAVE_CUDA
// Per-block float32 scales from uint8 codes, nested absmax and offset (as bnb, in float32).
at::Tensor nested_scales(const at::Tensor& codes, const at::Tensor& nested, float offset);
// Dequantizes flat uint8 `codes` with float32 `scales` into `out` (float32, bf16 or f16).
void dequantize_4bit(const at::Tensor& codes, const at::Tensor& scales, int64_t block_size, QuantType type,
                     at::Tensor& out);
// y [rows, n_out] = x [rows, k] W^T (+ bias) without forming W, for small `rows`.
at::Tensor gemv_4bit(const at::Tensor& x, const at::Tensor& codes, const at::Tensor& scales, int64_t n_out,
                     int64_t block_size, QuantType type, const at::Tensor& bias);
#endif

}  // namespace opine::quant::cuda
