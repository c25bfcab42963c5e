// CUDA kernels of the 4-bit format. No torch headers: raw pointers and a stream (see
// kernels_cuda_raw.h). Arithmetic uses __fmul_rn/__fadd_rn so nothing fuses into an FMA and the
// values match the CPU path (and bitsandbytes) to the bit before the final rounding.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "quant/kernels_cuda_raw.h"

namespace opine::quant::cuda_raw {

namespace {

#define OPINE_CUDA_TRY(call)                                                                      \
  do {                                                                                            \
    cudaError_t err_ = (call);                                                                    \
    if (err_ != cudaSuccess)                                                                      \
      return std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " + #call + ": " +       \
             cudaGetErrorString(err_);                                                            \
  } while (0)

struct Book16 {
  float v[16];
};
struct Book256 {
  float v[256];
};

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }

template <typename T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
template <>
__device__ __forceinline__ __half from_f<__half>(float v) {
  return __float2half_rn(v);
}

__global__ void nested_scales_kernel(const uint8_t* codes, const float* nested, float offset, Book256 map,
                                     int64_t blocks, float* out) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i < blocks) out[i] = __fadd_rn(__fmul_rn(map.v[codes[i]], nested[i / 256]), offset);
}

// One thread per packed byte: elements 2j (high nibble) and 2j + 1 (low nibble).
template <typename T>
__global__ void dequantize_kernel(const uint8_t* codes, const float* scales, int64_t n, int64_t block_size, Book16 book,
                                  T* out) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t e = 2 * j;
  if (e >= n) return;
  const uint8_t byte = codes[j];
  out[e] = from_f<T>(__fmul_rn(book.v[byte >> 4], scales[e / block_size]));
  if (e + 1 < n) out[e + 1] = from_f<T>(__fmul_rn(book.v[byte & 15], scales[(e + 1) / block_size]));
}

constexpr int kMaxRows = 8;
constexpr int kWarpsPerBlock = 4;

// One warp per output feature; every lane walks k in strides, dequantizes the weight on the fly
// and accumulates all input rows at once; a warp shuffle sums the lanes.
template <typename T>
__global__ void gemv_kernel(const T* x, int rows, int64_t k, const uint8_t* codes, const float* scales, int64_t n_out,
                            int64_t block_size, Book16 book, const T* bias, T* y) {
  const int lane = threadIdx.x % 32;
  const int64_t o = blockIdx.x * int64_t(kWarpsPerBlock) + threadIdx.x / 32;
  if (o >= n_out) return;
  float acc[kMaxRows];
#pragma unroll
  for (int r = 0; r < kMaxRows; ++r) acc[r] = 0.0f;
  const int64_t first = o * k;
  if (k % 8 == 0) {
    // Eight weights per 32-bit load; blocks are multiples of 8, so one scale per load.
    const uint32_t* words = reinterpret_cast<const uint32_t*>(codes + first / 2);
    for (int64_t w = lane; w < k / 8; w += 32) {
      const uint32_t word = words[w];
      const float s = scales[(first + 8 * w) / block_size];
#pragma unroll
      for (int b = 0; b < 4; ++b) {
        const uint32_t byte = (word >> (8 * b)) & 0xffu;
        const float w0 = __fmul_rn(book.v[byte >> 4], s), w1 = __fmul_rn(book.v[byte & 15], s);
        const int64_t i = 8 * w + 2 * b;
#pragma unroll
        for (int r = 0; r < kMaxRows; ++r)
          if (r < rows) acc[r] += to_f(x[r * k + i]) * w0 + to_f(x[r * k + i + 1]) * w1;
      }
    }
  } else {
    for (int64_t i = lane; i < k; i += 32) {
      const int64_t e = first + i;
      const uint8_t byte = codes[e / 2];
      const float wv = __fmul_rn(book.v[(e % 2) ? (byte & 15) : (byte >> 4)], scales[e / block_size]);
#pragma unroll
      for (int r = 0; r < kMaxRows; ++r)
        if (r < rows) acc[r] += to_f(x[r * k + i]) * wv;
    }
  }
#pragma unroll
  for (int r = 0; r < kMaxRows; ++r) {
    float v = acc[r];
    for (int off = 16; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
    if (lane == 0 && r < rows) y[r * n_out + o] = from_f<T>(v + (bias ? to_f(bias[o]) : 0.0f));
  }
}

template <typename T>
std::string launch_dequantize(const uint8_t* codes, const float* scales, int64_t n, int64_t block_size,
                              const Book16& book, void* out, cudaStream_t stream) {
  const int64_t bytes = (n + 1) / 2;
  const int threads = 256;
  const int64_t grid = (bytes + threads - 1) / threads;
  dequantize_kernel<T><<<grid, threads, 0, stream>>>(codes, scales, n, block_size, book, static_cast<T*>(out));
  OPINE_CUDA_TRY(cudaGetLastError());
  return {};
}

template <typename T>
std::string launch_gemv(const void* x, int64_t rows, int64_t k, const uint8_t* codes, const float* scales,
                        int64_t n_out, int64_t block_size, const Book16& book, const void* bias, void* y,
                        cudaStream_t stream) {
  const int64_t grid = (n_out + kWarpsPerBlock - 1) / kWarpsPerBlock;
  gemv_kernel<T><<<grid, 32 * kWarpsPerBlock, 0, stream>>>(static_cast<const T*>(x), int(rows), k, codes, scales,
                                                           n_out, block_size, book, static_cast<const T*>(bias),
                                                           static_cast<T*>(y));
  OPINE_CUDA_TRY(cudaGetLastError());
  return {};
}

Book16 make_book(const float* book) {
  Book16 b;
  for (int i = 0; i < 16; ++i) b.v[i] = book[i];
  return b;
}

}  // namespace

std::string nested_scales(const uint8_t* codes, const float* nested, float offset, const float* dynamic_map,
                          int64_t blocks, float* out, void* stream) {
  Book256 map;
  for (int i = 0; i < 256; ++i) map.v[i] = dynamic_map[i];
  const int threads = 256;
  const int64_t grid = (blocks + threads - 1) / threads;
  nested_scales_kernel<<<grid, threads, 0, static_cast<cudaStream_t>(stream)>>>(codes, nested, offset, map, blocks,
                                                                               out);
  OPINE_CUDA_TRY(cudaGetLastError());
  return {};
}

std::string dequantize_4bit(const uint8_t* codes, const float* scales, int64_t n, int64_t block_size,
                            const float* book, int dtype, void* out, void* stream) {
  const Book16 b = make_book(book);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (dtype == 0) return launch_dequantize<float>(codes, scales, n, block_size, b, out, s);
  if (dtype == 1) return launch_dequantize<__nv_bfloat16>(codes, scales, n, block_size, b, out, s);
  if (dtype == 2) return launch_dequantize<__half>(codes, scales, n, block_size, b, out, s);
  return "dequantize_4bit: unsupported dtype code " + std::to_string(dtype);
}

std::string gemv_4bit(const void* x, int64_t rows, int64_t k, const uint8_t* codes, const float* scales,
                      int64_t n_out, int64_t block_size, const float* book, const void* bias, int dtype, void* y,
                      void* stream) {
  if (rows < 1 || rows > kMaxRows) return "gemv_4bit: rows must be 1.." + std::to_string(kMaxRows);
  const Book16 b = make_book(book);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (dtype == 0) return launch_gemv<float>(x, rows, k, codes, scales, n_out, block_size, b, bias, y, s);
  if (dtype == 1) return launch_gemv<__nv_bfloat16>(x, rows, k, codes, scales, n_out, block_size, b, bias, y, s);
  if (dtype == 2) return launch_gemv<__half>(x, rows, k, codes, scales, n_out, block_size, b, bias, y, s);
  return "gemv_4bit: unsupported dtype code " + std::to_string(dtype);
}

}  // namespace opine::quant::cuda_raw
