// Compiled with -O3 -ffp-contract=off (quant/CMakeLists.txt): the loops vectorise, and no multiply
// fuses into an add behind our back, which would break bit-exactness with bitsandbytes. The
// portable loops are cloned for AVX2 and AVX-512 and picked at load time; the hottest ones have
// hand-vectorised x86 versions (kernels_x86.h) used when the CPU has them.
#include "quant/kernels_cpu.h"
#include "quant/kernels_x86.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "core/error.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define OPINE_QUANT_CLONES __attribute__((target_clones("default", "avx2", "arch=x86-64-v4")))
#else
#define OPINE_QUANT_CLONES
#endif

namespace opine::quant::cpu {

namespace {

// Elements per parallel task: big enough that thread start-up does not dominate.
constexpr int64_t kGrainElements = 1 << 16;

// The 15 midpoints between the sorted code values, and the code of each sorted slot (bnb's
// _get_4bit_quantize_bounds: identity for NF4, a permutation for FP4).
struct Bounds {
  float mid[15];
  uint8_t code_of_slot[16];
};

Bounds make_bounds(QuantType type) {
  const std::array<float, 16>& book = code_book(type);
  std::array<int, 16> order;
  for (int i = 0; i < 16; ++i) order[i] = i;
  // +0 and -0 compare equal; torch's argsort keeps index 0 before 8, as a stable sort does.
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return book[a] < book[b]; });
  Bounds b{};
  for (int i = 0; i < 15; ++i) b.mid[i] = (book[order[i]] + book[order[i + 1]]) / 2.0f;
  for (int i = 0; i < 16; ++i) b.code_of_slot[i] = static_cast<uint8_t>(order[i]);
  return b;
}

const Bounds& bounds(QuantType type) {
  static const Bounds nf4 = make_bounds(QuantType::kNf4), fp4 = make_bounds(QuantType::kFp4);
  return type == QuantType::kNf4 ? nf4 : fp4;
}

inline float to_float(float v) { return v; }
inline float to_float(c10::BFloat16 v) { return static_cast<float>(v); }
inline float to_float(c10::Half v) { return static_cast<float>(v); }

// float -> T, round to nearest even (bf16 by bit arithmetic, so the loop vectorises).
template <typename T>
inline T from_float(float v);
template <>
inline float from_float<float>(float v) {
  return v;
}
template <>
inline c10::BFloat16 from_float<c10::BFloat16>(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return c10::BFloat16(static_cast<uint16_t>(nan ? 0x7fc0u : rounded), c10::BFloat16::from_bits());
}
template <>
inline c10::Half from_float<c10::Half>(float v) {
  return c10::Half(v);
}

// Slot of the scaled value among the sorted codes: how many midpoints lie strictly below it
// (torch.bucketize with right=False, as bnb uses).
inline int slot_of(const float* mid, float v) {
  int s = 0;
  for (int i = 0; i < 15; ++i) s += v > mid[i];
  return s;
}

template <typename T>
OPINE_QUANT_CLONES void quantize_block_4bit(const T* x, int64_t len, bool full, const Bounds& b, uint8_t* out,
                                           float* absmax_out) {
  float am = 0.0f;
  for (int64_t i = 0; i < len; ++i) am = std::max(am, std::fabs(to_float(x[i])));
  // bnb clamps the divisor at 1e-38 (as a float) so all-zero blocks give code 0.
  const float floor = static_cast<float>(1e-38);
  const float safe = std::max(am, floor);
  *absmax_out = full ? am : safe;  // bnb stores the clamped value only for the short block
  const float inv = 1.0f / safe;
  uint8_t slots[256 + 1];
  for (int64_t i = 0; i < len; ++i) {
    const float xi = to_float(x[i]);
    float v = full ? xi * inv : xi / safe;
    v = std::min(std::max(v, -1.0f), 1.0f);
    slots[i] = static_cast<uint8_t>(b.code_of_slot[slot_of(b.mid, v)]);
  }
  if (len % 2) slots[len] = b.code_of_slot[slot_of(b.mid, 0.0f)];  // bnb pads an odd tail with 0
  for (int64_t j = 0; j < (len + 1) / 2; ++j) out[j] = static_cast<uint8_t>(slots[2 * j] << 4 | slots[2 * j + 1]);
}

}  // namespace

template <typename T>
void quantize_4bit(const T* x, int64_t n, int64_t block_size, QuantType type, uint8_t* packed, float* absmax) {
  OPINE_ASSERT(block_size % 2 == 0 && block_size <= 256, "block size ", block_size);
  const Bounds& b = bounds(type);
  const int64_t blocks = (n + block_size - 1) / block_size;
  at::parallel_for(0, blocks, std::max<int64_t>(1, kGrainElements / block_size), [&](int64_t begin, int64_t end) {
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t start = blk * block_size;
      const int64_t len = std::min(block_size, n - start);
      quantize_block_4bit(x + start, len, len == block_size, b, packed + start / 2, absmax + blk);
    }
  });
}

namespace {

// bnb's CPU lookup table for the 8-bit code: 65536 evenly spaced values in [-1, 1], each mapped
// to the first code whose upper midpoint is not below it.
std::vector<uint8_t> make_dynamic_lut() {
  const std::array<float, 256>& code = dynamic_map();
  float mid[255];
  for (int i = 0; i < 255; ++i) mid[i] = (code[i] + code[i + 1]) * 0.5f;
  std::vector<uint8_t> lut(65536);
  int idx = 0;
  for (int i = 0; i < 65536; ++i) {
    const float fi = static_cast<float>(i);
    const float val = (fi + fi) / 65535.0f - 1.0f;
    while (idx < 255 && val > mid[idx]) ++idx;
    lut[i] = static_cast<uint8_t>(idx);
  }
  return lut;
}

}  // namespace

void quantize_8bit_dynamic(const float* x, int64_t n, uint8_t* codes, float* absmax) {
  static const std::vector<uint8_t> lut = make_dynamic_lut();
  const int64_t blocks = (n + kNestedBlockSize - 1) / kNestedBlockSize;
  at::parallel_for(0, blocks, 64, [&](int64_t begin, int64_t end) {
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t start = blk * kNestedBlockSize, stop = std::min(n, start + kNestedBlockSize);
      float am = -INFINITY;
      for (int64_t i = start; i < stop; ++i) am = std::max(am, std::fabs(x[i]));
      am = std::max(am, 0.0f);
      absmax[blk] = am;
      if (am == 0.0f) {
        std::memset(codes + start, 0, stop - start);
        continue;
      }
      const float inv = 1.0f / am;
      for (int64_t i = start; i < stop; ++i) {
        const float v = std::clamp(x[i] * inv, -1.0f, 1.0f);
        // bnb's library computes this index with one fused multiply-add.
        const float t = std::fma((v + 1.0f) * 0.5f, 65535.0f, 0.5f);
        codes[i] = lut[static_cast<uint16_t>(static_cast<int32_t>(t))];
      }
    }
  });
}

void nested_scales(const uint8_t* q, const float* nested, float offset, int64_t blocks, float* out) {
  const std::array<float, 256>& code = dynamic_map();
  for (int64_t i = 0; i < blocks; ++i) {
    const float scaled = code[q[i]] * nested[i / kNestedBlockSize];
    out[i] = scaled + offset;
  }
}

namespace {


template <typename T>
OPINE_QUANT_CLONES void dequantize_range(const uint8_t* packed, const float* absmax, int64_t first_block,
                                        int64_t last_block, int64_t n, int64_t block_size, const float* book,
                                        T* out) {
  for (int64_t blk = first_block; blk < last_block; ++blk) {
    const int64_t start = blk * block_size;
    const int64_t len = std::min(block_size, n - start);
    const float s = absmax[blk];
    const uint8_t* p = packed + start / 2;
    T* o = out + start;
    if (len == block_size) {
      for (int64_t j = 0; j < block_size / 2; ++j) {
        o[2 * j] = from_float<T>(book[p[j] >> 4] * s);
        o[2 * j + 1] = from_float<T>(book[p[j] & 15] * s);
      }
    } else {
      for (int64_t i = 0; i < len; ++i) {
        const uint8_t byte = p[i / 2];
        o[i] = from_float<T>(book[(i % 2) ? (byte & 15) : (byte >> 4)] * s);
      }
    }
  }
}

}  // namespace

template <typename T>
void dequantize_4bit(const uint8_t* packed, const float* absmax, int64_t n, int64_t block_size, QuantType type,
                     T* out) {
  const float* book = code_book(type).data();
  const int64_t blocks = (n + block_size - 1) / block_size;
  at::parallel_for(0, blocks, std::max<int64_t>(1, kGrainElements / block_size), [&](int64_t begin, int64_t end) {
#ifdef OPINE_QUANT_X86
    if (x86::has_avx2() && block_size % 32 == 0) {
      const int64_t whole = std::min(end, n / block_size);  // the short last block goes the portable way
      if (whole > begin) x86::dequantize_blocks(packed, absmax, begin, whole, block_size, book, out);
      begin = std::max(begin, whole);
    }
#endif
    dequantize_range(packed, absmax, begin, end, n, block_size, book, out);
  });
}

namespace {


// Dequantizes weight elements [first, first + k) (one row) into float.
OPINE_QUANT_CLONES void dequantize_row(const uint8_t* packed, const float* absmax, int64_t first, int64_t k,
                                      int64_t block_size, const float* book, float* row) {
  int64_t i = 0;
  while (i < k) {
    const int64_t e = first + i;
    const int64_t blk = e / block_size;
    const int64_t stop = std::min(k, (blk + 1) * block_size - first);
    const float s = absmax[blk];
#ifdef OPINE_QUANT_X86
    if (e % 32 == 0 && stop - i >= 32 && x86::has_avx2()) {
      const int64_t chunks = (stop - i) / 32;
      x86::dequantize_chunks(packed + e / 2, s, chunks, book, row + i);
      i += 32 * chunks;
      continue;  // the rest of this block, if any, from the new position
    }
#endif
    if (e % 2 == 0) {
      const uint8_t* p = packed + e / 2;
      const int64_t pairs = (stop - i) / 2;
      for (int64_t j = 0; j < pairs; ++j) {
        row[i + 2 * j] = book[p[j] >> 4] * s;
        row[i + 2 * j + 1] = book[p[j] & 15] * s;
      }
      i += 2 * pairs;
    }
    for (; i < stop; ++i) {
      const int64_t ei = first + i;
      const uint8_t byte = packed[ei / 2];
      row[i] = book[(ei % 2) ? (byte & 15) : (byte >> 4)] * s;
    }
  }
}

// Dot product with 16 independent partial sums, so it vectorises without -ffast-math.
OPINE_QUANT_CLONES float dot(const float* a, const float* b, int64_t k) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= k; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
  float tail = 0.0f;
  for (; i < k; ++i) tail += a[i] * b[i];
  float sum = 0.0f;
  for (int j = 0; j < 16; ++j) sum += acc[j];
  return sum + tail;
}

}  // namespace


template <typename T>
void gemv_4bit(const T* x, int64_t rows, int64_t k, const uint8_t* packed, const float* absmax, int64_t n_out,
               int64_t block_size, QuantType type, const T* bias, T* y) {
  const float* book = code_book(type).data();
  // The inputs in float once (small: rows * k).
  std::vector<float> xf(static_cast<size_t>(rows * k));
  for (int64_t i = 0; i < rows * k; ++i) xf[i] = to_float(x[i]);
  const int64_t grain = std::max<int64_t>(1, kGrainElements / std::max<int64_t>(k, 1));
#ifdef OPINE_QUANT_X86
  if (x86::has_avx2() && k % 32 == 0 && block_size % 32 == 0) {
    if (const x86::GemvRowFn fn = x86::gemv_row_for(rows)) {
      at::parallel_for(0, n_out, grain, [&](int64_t begin, int64_t end) {
        float acc[8];
        for (int64_t o = begin; o < end; ++o) {
          fn(packed, absmax, o * k, k, block_size, book, xf.data(), acc);
          const float b = bias ? to_float(bias[o]) : 0.0f;
          for (int64_t r = 0; r < rows; ++r) y[r * n_out + o] = from_float<T>(acc[r] + b);
        }
      });
      return;
    }
  }
#endif
  at::parallel_for(0, n_out, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> w(static_cast<size_t>(k));
    for (int64_t o = begin; o < end; ++o) {
      dequantize_row(packed, absmax, o * k, k, block_size, book, w.data());
      const float b = bias ? to_float(bias[o]) : 0.0f;
      for (int64_t r = 0; r < rows; ++r) y[r * n_out + o] = from_float<T>(dot(xf.data() + r * k, w.data(), k) + b);
    }
  });
}

#define OPINE_QUANT_INSTANTIATE(T)                                                                              \
  template void quantize_4bit<T>(const T*, int64_t, int64_t, QuantType, uint8_t*, float*);                      \
  template void dequantize_4bit<T>(const uint8_t*, const float*, int64_t, int64_t, QuantType, T*);              \
  template void gemv_4bit<T>(const T*, int64_t, int64_t, const uint8_t*, const float*, int64_t, int64_t, QuantType, \
                             const T*, T*);
OPINE_QUANT_INSTANTIATE(float)
OPINE_QUANT_INSTANTIATE(c10::BFloat16)
OPINE_QUANT_INSTANTIATE(c10::Half)
#undef OPINE_QUANT_INSTANTIATE

}  // namespace opine::quant::cpu
