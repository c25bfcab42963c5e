// CPU kernels behind quant/format.h and QuantLinear: raw pointers, no allocation, multithreaded
// with at::parallel_for. Each reproduces bitsandbytes' arithmetic on the CPU to the bit.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "quant/format.h"

namespace opine::quant::cpu {

// 4-bit blockwise quantization of n elements (float, BFloat16 or Half), as bnb's quantize_4bit:
// absmax per block; full blocks scaled by x * (1 / absmax), the short last block by x / absmax;
// the code is the number of sorted-code midpoints below the scaled value (FP4 mapped back to its
// bit order). `packed` gets (n + 1) / 2 bytes, `absmax` one float per block.
template <typename T>
void quantize_4bit(const T* x, int64_t n, int64_t block_size, QuantType type, uint8_t* packed, float* absmax);

// bnb's 8-bit blockwise quantization (its CPU library, blocks of 256) of float32 values with
// dynamic_map(): absmax per block, then a 65536-entry lookup of the scaled value.
void quantize_8bit_dynamic(const float* x, int64_t n, uint8_t* codes, float* absmax);

// Per-block float32 scales from the nested form: dynamic_map()[q] * nested[i / 256] + offset.
void nested_scales(const uint8_t* q, const float* nested, float offset, int64_t blocks, float* out);

// out[i] = code_book[nibble i] * absmax[i / block_size], rounded once to T.
template <typename T>
void dequantize_4bit(const uint8_t* packed, const float* absmax, int64_t n, int64_t block_size, QuantType type,
                     T* out);

// y[r, o] = sum_k x[r, k] * W[o, k] (+ bias[o]) for the 4-bit W [n_out, k] without forming W:
// each thread dequantizes one weight row at a time into float and dots it with the `rows`
// inputs (float accumulation). For small batches, where the matmul is bound by weight reads.
template <typename T>
void gemv_4bit(const T* x, int64_t rows, int64_t k, const uint8_t* packed, const float* absmax, int64_t n_out,
               int64_t block_size, QuantType type, const T* bias, T* y);

}  // namespace opine::quant::cpu
