// See kernels_x86.h. Compiled like kernels_cpu.cpp (-O3 -ffp-contract=off); each function
// carries its own target attribute, so the file builds for any x86-64 and runs the best path.
#include "quant/kernels_x86.h"

#ifdef OPINE_QUANT_X86
#include <immintrin.h>

namespace opine::quant::cpu::x86 {

namespace {

// Explicit AVX2 for the hot decode: a 16-entry table lookup is two 8-lane permutes and a blend,
// where the compiler would emit slow gathers. Same IEEE multiply, same round-to-nearest-even
// conversions as the portable loops, so results are identical to the bit.
bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
  return has;
}

// 32 values (16 packed bytes, high nibble first) times `s`, as four vectors of 8 floats.
__attribute__((target("avx2,f16c"))) inline void decode32(const uint8_t* p, __m256 lut_lo, __m256 lut_hi, __m256 s,
                                                          __m256 out[4]) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i mask = _mm_set1_epi8(0x0f);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask), lo = _mm_and_si128(bytes, mask);
  const __m128i e[2] = {_mm_unpacklo_epi8(hi, lo), _mm_unpackhi_epi8(hi, lo)};
  for (int h = 0; h < 2; ++h) {
    for (int q = 0; q < 2; ++q) {
      const __m256i idx = _mm256_cvtepu8_epi32(q ? _mm_srli_si128(e[h], 8) : e[h]);
      const __m256 a = _mm256_permutevar8x32_ps(lut_lo, idx), b = _mm256_permutevar8x32_ps(lut_hi, idx);
      const __m256 v = _mm256_blendv_ps(a, b, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
      out[2 * h + q] = _mm256_mul_ps(v, s);
    }
  }
}

__attribute__((target("avx2,f16c"))) inline void store8(float* o, __m256 v) { _mm256_storeu_ps(o, v); }
__attribute__((target("avx2,f16c"))) inline void store8(c10::Half* o, __m256 v) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(o), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("avx2,f16c"))) inline void store8(c10::BFloat16* o, __m256 v) {
  const __m256i u = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7fc0), nan);
  const __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(o), packed);
}

// Whole blocks only (block sizes are multiples of 32).
template <typename T>
__attribute__((target("avx2,f16c"))) void dequantize_blocks_avx2(const uint8_t* packed, const float* absmax,
                                                                 int64_t first_block, int64_t last_block,
                                                                 int64_t block_size, const float* book, T* out) {
  const __m256 lut_lo = _mm256_loadu_ps(book), lut_hi = _mm256_loadu_ps(book + 8);
  for (int64_t blk = first_block; blk < last_block; ++blk) {
    const __m256 s = _mm256_set1_ps(absmax[blk]);
    const uint8_t* p = packed + blk * block_size / 2;
    T* o = out + blk * block_size;
    for (int64_t j = 0; j < block_size; j += 32) {
      __m256 v[4];
      decode32(p + j / 2, lut_lo, lut_hi, s, v);
      for (int q = 0; q < 4; ++q) store8(o + j + 8 * q, v[q]);
    }
  }
}

// AVX-512: the whole 16-entry table fits one register, so a lookup is a single permute.
// (GCC 12 warns about the _mm512_undefined_* placeholders inside its own intrinsics.)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  return has;
}

#define OPINE_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))

// 32 values (16 packed bytes, high nibble first) times `s`, as two vectors of 16 floats.
OPINE_AVX512 inline void decode32_512(const uint8_t* p, __m512 lut, __m512 s, __m512 out[2]) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i mask = _mm_set1_epi8(0x0f);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask), lo = _mm_and_si128(bytes, mask);
  out[0] = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(hi, lo)), lut), s);
  out[1] = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpackhi_epi8(hi, lo)), lut), s);
}

OPINE_AVX512 inline void store16(float* o, __m512 v) { _mm512_storeu_ps(o, v); }
OPINE_AVX512 inline void store16(c10::Half* o, __m512 v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}
OPINE_AVX512 inline void store16(c10::BFloat16* o, __m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  r = _mm512_mask_mov_epi32(r, nan, _mm512_set1_epi32(0x7fc0));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), _mm512_cvtepi32_epi16(r));
}

template <typename T>
OPINE_AVX512 void dequantize_blocks_avx512(const uint8_t* packed, const float* absmax, int64_t first_block,
                                           int64_t last_block, int64_t block_size, const float* book, T* out) {
  const __m512 lut = _mm512_loadu_ps(book);
  for (int64_t blk = first_block; blk < last_block; ++blk) {
    const __m512 s = _mm512_set1_ps(absmax[blk]);
    const uint8_t* p = packed + blk * block_size / 2;
    T* o = out + blk * block_size;
    for (int64_t j = 0; j < block_size; j += 32) {
      __m512 v[2];
      decode32_512(p + j / 2, lut, s, v);
      store16(o + j, v[0]);
      store16(o + j + 16, v[1]);
    }
  }
}

__attribute__((target("avx2,f16c"))) void dequantize_chunks_avx2_impl(const uint8_t* p, float scale, int64_t chunks,
                                                                 const float* book, float* row) {
  const __m256 lut_lo = _mm256_loadu_ps(book), lut_hi = _mm256_loadu_ps(book + 8), s = _mm256_set1_ps(scale);
  for (int64_t c = 0; c < chunks; ++c) {
    __m256 v[4];
    decode32(p + 16 * c, lut_lo, lut_hi, s, v);
    for (int q = 0; q < 4; ++q) _mm256_storeu_ps(row + 32 * c + 8 * q, v[q]);
  }
}

// One weight row against R input rows, decoding 32 weights at a time straight into FMAs (the
// row is never stored). Needs rows of whole 32-element chunks (k % 32 == 0, as real models have).
template <int R>
__attribute__((target("avx2,fma,f16c"))) void gemv_row_avx2(const uint8_t* packed, const float* absmax, int64_t first,
                                                            int64_t k, int64_t block_size, const float* book,
                                                            const float* x, float* out) {
  const __m256 lut_lo = _mm256_loadu_ps(book), lut_hi = _mm256_loadu_ps(book + 8);
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t i = 0; i < k; i += 32) {
    __m256 w[4];
    decode32(packed + (first + i) / 2, lut_lo, lut_hi, _mm256_set1_ps(absmax[(first + i) / block_size]), w);
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < 4; ++q) acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(x + r * k + i + 8 * q), w[q], acc[r]);
  }
  for (int r = 0; r < R; ++r) {
    const __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[r]), _mm256_extractf128_ps(acc[r], 1));
    const __m128 h2 = _mm_add_ps(h, _mm_movehl_ps(h, h));
    out[r] = _mm_cvtss_f32(_mm_add_ss(h2, _mm_shuffle_ps(h2, h2, 1)));
  }
}

template <int R>
OPINE_AVX512 void gemv_row_avx512(const uint8_t* packed, const float* absmax, int64_t first, int64_t k,
                                  int64_t block_size, const float* book, const float* x, float* out) {
  const __m512 lut = _mm512_loadu_ps(book);
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t i = 0; i < k; i += 32) {
    __m512 w[2];
    decode32_512(packed + (first + i) / 2, lut, _mm512_set1_ps(absmax[(first + i) / block_size]), w);
    for (int r = 0; r < R; ++r) {
      acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(x + r * k + i), w[0], acc[r]);
      acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(x + r * k + i + 16), w[1], acc[r]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
}

GemvRowFn gemv_row_for_impl(int64_t rows) {
  static const GemvRowFn avx2[8] = {gemv_row_avx2<1>, gemv_row_avx2<2>, gemv_row_avx2<3>, gemv_row_avx2<4>,
                                    gemv_row_avx2<5>, gemv_row_avx2<6>, gemv_row_avx2<7>, gemv_row_avx2<8>};
  static const GemvRowFn avx512[8] = {gemv_row_avx512<1>, gemv_row_avx512<2>, gemv_row_avx512<3>,
                                      gemv_row_avx512<4>, gemv_row_avx512<5>, gemv_row_avx512<6>,
                                      gemv_row_avx512<7>, gemv_row_avx512<8>};
  if (rows < 1 || rows > 8) return nullptr;
  return cpu_has_avx512() ? avx512[rows - 1] : avx2[rows - 1];
}
#pragma GCC diagnostic pop
}  // namespace

bool has_avx2() { return cpu_has_avx2(); }

template <typename T>
void dequantize_blocks(const uint8_t* packed, const float* absmax, int64_t first_block, int64_t last_block,
                       int64_t block_size, const float* book, T* out) {
  if (cpu_has_avx512()) dequantize_blocks_avx512(packed, absmax, first_block, last_block, block_size, book, out);
  else dequantize_blocks_avx2(packed, absmax, first_block, last_block, block_size, book, out);
}
template void dequantize_blocks<float>(const uint8_t*, const float*, int64_t, int64_t, int64_t, const float*, float*);
template void dequantize_blocks<c10::BFloat16>(const uint8_t*, const float*, int64_t, int64_t, int64_t, const float*,
                                               c10::BFloat16*);
template void dequantize_blocks<c10::Half>(const uint8_t*, const float*, int64_t, int64_t, int64_t, const float*,
                                           c10::Half*);

void dequantize_chunks(const uint8_t* p, float scale, int64_t chunks, const float* book, float* row) {
  dequantize_chunks_avx2_impl(p, scale, chunks, book, row);
}

GemvRowFn gemv_row_for(int64_t rows) { return gemv_row_for_impl(rows); }

}  // namespace opine::quant::cpu::x86
#endif
