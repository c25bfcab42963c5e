// The CUDA kernels' launchers: raw pointers and a stream, no torch types, so the .cu file
// compiles with nvcc alone. `dtype` is 0 = float32, 1 = bf16, 2 = f16. Every launcher reports
// failures through the returned message (empty on success), with file:line and the CUDA error.
#pragma once

#include <cstdint>
#include <string>

namespace opine::quant::cuda_raw {

std::string nested_scales(const uint8_t* codes, const float* nested, float offset, const float* dynamic_map,
                          int64_t blocks, float* out, void* stream);
std::string dequantize_4bit(const uint8_t* codes, const float* scales, int64_t n, int64_t block_size,
                            const float* book, int dtype, void* out, void* stream);
std::string gemv_4bit(const void* x, int64_t rows, int64_t k, const uint8_t* codes, const float* scales,
                      int64_t n_out, int64_t block_size, const float* book, const void* bias, int dtype, void* y,
                      void* stream);

}  // namespace opine::quant::cuda_raw
