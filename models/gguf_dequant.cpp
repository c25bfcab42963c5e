// ggml type table and the dequantization kernels behind gguf::File::dequantize.
//
// Block layouts follow ggml (ggml-common.h). Each kernel does the same float32 operations in the
// same order as ggml's reference dequantizers (scale products first, then the multiply and the
// subtraction), so results are bit-identical to ggml and gguf-py wherever the compiler does not
// fuse a multiply-add (plain x86-64 never does).
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstring>

#include "core/error.h"
#include "models/gguf.h"

namespace opine::gguf {
namespace {

constexpr int64_t kQK = 32;    // elements per block of the legacy formats
constexpr int64_t kQKK = 256;  // elements per K-quant super-block

struct TypeTraits {
  const char* name = nullptr;  // nullptr: no such type
  int64_t block = 0;
  int64_t size = 0;
  bool dequant = false;
};

constexpr size_t kTypeCount = 42;

// Indexed by type id. Sizes as in ggml's type_traits; Q8_1 is 36 bytes (two halves + 32 int8).
constexpr TypeTraits kTypes[kTypeCount] = {
    /* 0*/ {"F32", 1, 4, true},
    /* 1*/ {"F16", 1, 2, true},
    /* 2*/ {"Q4_0", kQK, 18, true},
    /* 3*/ {"Q4_1", kQK, 20, true},
    /* 4*/ {},
    /* 5*/ {},
    /* 6*/ {"Q5_0", kQK, 22, true},
    /* 7*/ {"Q5_1", kQK, 24, true},
    /* 8*/ {"Q8_0", kQK, 34, true},
    /* 9*/ {"Q8_1", kQK, 36, false},
    /*10*/ {"Q2_K", kQKK, 84, true},
    /*11*/ {"Q3_K", kQKK, 110, true},
    /*12*/ {"Q4_K", kQKK, 144, true},
    /*13*/ {"Q5_K", kQKK, 176, true},
    /*14*/ {"Q6_K", kQKK, 210, true},
    /*15*/ {"Q8_K", kQKK, 292, true},
    /*16*/ {"IQ2_XXS", kQKK, 66, false},
    /*17*/ {"IQ2_XS", kQKK, 74, false},
    /*18*/ {"IQ3_XXS", kQKK, 98, false},
    /*19*/ {"IQ1_S", kQKK, 50, false},
    /*20*/ {"IQ4_NL", kQK, 18, false},
    /*21*/ {"IQ3_S", kQKK, 110, false},
    /*22*/ {"IQ2_S", kQKK, 82, false},
    /*23*/ {"IQ4_XS", kQKK, 136, false},
    /*24*/ {"I8", 1, 1, true},
    /*25*/ {"I16", 1, 2, true},
    /*26*/ {"I32", 1, 4, true},
    /*27*/ {"I64", 1, 8, true},
    /*28*/ {"F64", 1, 8, true},
    /*29*/ {"IQ1_M", kQKK, 56, false},
    /*30*/ {"BF16", 1, 2, true},
    /*31*/ {},
    /*32*/ {},
    /*33*/ {},
    /*34*/ {"TQ1_0", kQKK, 54, false},
    /*35*/ {"TQ2_0", kQKK, 66, false},
    /*36*/ {},
    /*37*/ {},
    /*38*/ {},
    /*39*/ {"MXFP4", kQK, 17, false},
    /*40*/ {"NVFP4", 64, 36, false},
    /*41*/ {"Q1_0", 128, 18, false},
};

const TypeTraits& traits(GgmlType type) {
  const auto id = static_cast<uint32_t>(type);
  static constexpr TypeTraits kNone{};
  return id < kTypeCount ? kTypes[id] : kNone;
}

inline float f16(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return c10::detail::fp16_ieee_to_fp32_value(bits);
}

inline uint32_t u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

template <typename T>
void convert(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, src + i * sizeof(T), sizeof(T));
    dst[i] = static_cast<float>(v);
  }
}

// Legacy 32-element blocks: element j sits in the low nibble of byte j, element j+16 in the high
// nibble; the 5-bit formats take bit j of a 32-bit word as the fifth bit of element j.
void q4_0(const uint8_t* b, float* y) {
  const float d = f16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
    y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

void q4_1(const uint8_t* b, float* y) {
  const float d = f16(b), m = f16(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
    y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

void q5_0(const uint8_t* b, float* y) {
  const float d = f16(b);
  const uint32_t qh = u32(b + 2);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 0x0F) | (((qh >> j) & 1) << 4);
    const int hi = (qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
    y[j] = static_cast<float>(lo - 16) * d;
    y[j + 16] = static_cast<float>(hi - 16) * d;
  }
}

void q5_1(const uint8_t* b, float* y) {
  const float d = f16(b), m = f16(b + 2);
  const uint32_t qh = u32(b + 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 0x0F) | (((qh >> j) & 1) << 4);
    const int hi = (qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
    y[j] = static_cast<float>(lo) * d + m;
    y[j + 16] = static_cast<float>(hi) * d + m;
  }
}

void q8_0(const uint8_t* b, float* y) {
  const float d = f16(b);
  const auto* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(qs[j]) * d;
}

// K-quants: 256-element super-blocks of sub-blocks with their own small integer scales.
//
// Q2_K: scales[16] (low nibble scale, high nibble min, one per 16 elements), qs[64] (2 bits each),
// d, dmin. Each 128-element half reads 32 bytes of qs four times, at bit shifts 0, 2, 4, 6.
void q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* qs = b + 16;
  const float d = f16(b + 80), dmin = f16(b + 82);
  for (int n = 0; n < 2; ++n) {
    for (int j = 0; j < 4; ++j) {
      for (int g = 0; g < 2; ++g) {
        const uint8_t sc = scales[n * 8 + j * 2 + g];
        const float dl = d * static_cast<float>(sc & 0x0F);
        const float ml = dmin * static_cast<float>(sc >> 4);
        const uint8_t* q = qs + n * 32 + g * 16;
        float* out = y + n * 128 + j * 32 + g * 16;
        for (int l = 0; l < 16; ++l) out[l] = dl * static_cast<float>((q[l] >> (2 * j)) & 3) - ml;
      }
    }
  }
}

// Q3_K: hmask[32] (the third bit; a clear bit subtracts 4), qs[64] (low 2 bits, laid out as in
// Q2_K), scales[12] (sixteen 6-bit scales biased by 32), d.
void q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* packed = b + 96;
  const float d = f16(b + 108);
  // Scale i: low 4 bits from byte i%8 (low nibble for i<8, high for i>=8), high 2 bits from
  // byte 8 + i%4 at shift 2*(i/4).
  float dl[16];
  for (int i = 0; i < 16; ++i) {
    const int lo = (packed[i % 8] >> (i < 8 ? 0 : 4)) & 0x0F;
    const int hi = (packed[8 + i % 4] >> (2 * (i / 4))) & 0x03;
    dl[i] = d * static_cast<float>((lo | (hi << 4)) - 32);
  }
  for (int n = 0; n < 2; ++n) {
    for (int j = 0; j < 4; ++j) {
      const int hbit = 4 * n + j;
      for (int l = 0; l < 32; ++l) {
        const int low = (qs[n * 32 + l] >> (2 * j)) & 3;
        const int q = low - (((hmask[l] >> hbit) & 1) ? 0 : 4);
        const int idx = n * 128 + j * 32 + l;
        y[idx] = dl[idx / 16] * static_cast<float>(q);
      }
    }
  }
}

// The 12-byte scale/min table of Q4_K and Q5_K: eight 6-bit scales and eight 6-bit mins.
// Sub-blocks 0-3 keep them in the low 6 bits of bytes 0-3 (scales) and 4-7 (mins); sub-blocks
// 4-7 take their low 4 bits from bytes 8-11 and their high 2 bits from the top of bytes 0-7.
inline void scale_min_k4(int j, const uint8_t* s, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Q4_K: d, dmin, scales[12], qs[128]. Sub-block 2i is the low nibbles of qs[32i..32i+32),
// sub-block 2i+1 the high nibbles.
void q4_k(const uint8_t* b, float* y) {
  const float d = f16(b), dmin = f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qs = b + 16;
  for (int s = 0; s < 8; ++s) {
    int sc, m;
    scale_min_k4(s, scales, &sc, &m);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
    const uint8_t* q = qs + 32 * (s / 2);
    const int shift = 4 * (s % 2);
    for (int l = 0; l < 32; ++l) y[s * 32 + l] = d1 * static_cast<float>((q[l] >> shift) & 0x0F) - m1;
  }
}

// Q5_K: Q4_K plus qh[32], whose bit s of byte l is the fifth bit of element l of sub-block s.
void q5_k(const uint8_t* b, float* y) {
  const float d = f16(b), dmin = f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int s = 0; s < 8; ++s) {
    int sc, m;
    scale_min_k4(s, scales, &sc, &m);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
    const uint8_t* q = qs + 32 * (s / 2);
    const int shift = 4 * (s % 2);
    for (int l = 0; l < 32; ++l) {
      const int v = ((q[l] >> shift) & 0x0F) | (((qh[l] >> s) & 1) << 4);
      y[s * 32 + l] = d1 * static_cast<float>(v) - m1;
    }
  }
}

// Q6_K: ql[128] (low 4 bits), qh[64] (high 2 bits), int8 scales[16] (one per 16 elements), d.
// Per 128-element half: 64 bytes of ql give elements 0-63 (low nibbles) and 64-127 (high
// nibbles); 32 bytes of qh give the high bits of elements l, l+32, l+64, l+96 at shifts 0-6.
void q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
  const float d = f16(b + 208);
  for (int n = 0; n < 2; ++n) {
    const uint8_t* l4 = ql + 64 * n;
    const uint8_t* h2 = qh + 32 * n;
    const int8_t* sc = scales + 8 * n;
    float* out = y + 128 * n;
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((l4[l] & 0x0F) | (((h2[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((l4[l + 32] & 0x0F) | (((h2[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((l4[l] >> 4) | (((h2[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((l4[l + 32] >> 4) | (((h2[l] >> 6) & 3) << 4)) - 32;
      out[l] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
      out[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      out[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      out[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
  }
}

// Q8_K: float32 d, int8 qs[256], int16 bsums[16] (sums for dot products, unused here).
void q8_k(const uint8_t* b, float* y) {
  float d;
  std::memcpy(&d, b, 4);
  const auto* qs = reinterpret_cast<const int8_t*>(b + 4);
  for (int j = 0; j < 256; ++j) y[j] = d * static_cast<float>(qs[j]);
}

template <void (*Kernel)(const uint8_t*, float*)>
void blocks(const uint8_t* src, float* dst, int64_t n, int64_t block, int64_t size) {
  for (int64_t i = 0; i < n / block; ++i) Kernel(src + i * size, dst + i * block);
}

}  // namespace

const char* ggml_type_name(GgmlType type) {
  const char* name = traits(type).name;
  return name ? name : "unknown";
}

bool ggml_type_known(uint32_t id) { return id < kTypeCount && kTypes[id].name != nullptr; }

int64_t ggml_block_size(GgmlType type) {
  OPINE_ASSERT(traits(type).name, "unknown ggml type ", static_cast<uint32_t>(type));
  return traits(type).block;
}

int64_t ggml_type_size(GgmlType type) {
  OPINE_ASSERT(traits(type).name, "unknown ggml type ", static_cast<uint32_t>(type));
  return traits(type).size;
}

bool can_dequantize(GgmlType type) { return traits(type).dequant; }

void dequantize_row(GgmlType type, const uint8_t* src, float* dst, int64_t n) {
  const TypeTraits& t = traits(type);
  OPINE_ASSERT(t.dequant, "no dequantizer for ggml type ", ggml_type_name(type));
  OPINE_ASSERT(n >= 0 && n % t.block == 0, n, " elements is not a whole number of ", ggml_type_name(type),
               " blocks");
  switch (type) {
    case GgmlType::F32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = f16(src + 2 * i);
      return;
    case GgmlType::BF16:
      // bfloat16 is the top half of a float32: widening is exact, NaN payloads included.
      for (int64_t i = 0; i < n; ++i) {
        uint16_t bits;
        std::memcpy(&bits, src + 2 * i, 2);
        const uint32_t wide = static_cast<uint32_t>(bits) << 16;
        std::memcpy(dst + i, &wide, 4);
      }
      return;
    case GgmlType::F64:
      convert<double>(src, dst, n);
      return;
    case GgmlType::I8:
      convert<int8_t>(src, dst, n);
      return;
    case GgmlType::I16:
      convert<int16_t>(src, dst, n);
      return;
    case GgmlType::I32:
      convert<int32_t>(src, dst, n);
      return;
    case GgmlType::I64:
      convert<int64_t>(src, dst, n);
      return;
    case GgmlType::Q4_0:
      blocks<q4_0>(src, dst, n, t.block, t.size);
      return;
    case GgmlType::Q4_1:
      blocks<q4_1>(src, dst, n, t.block, t.size);
      return;
    case GgmlType::Q5_0:
      blocks<q5_0>(src, dst, n, t.block, t.size);
      return;
    case GgmlType::Q5_1:
      blocks<q5_1>(src, dst, n, t.block, t.size);
      return;
    case GgmlType::Q8_0:
      blocks<q8_0>(src, dst, n, t.block, t.size);
      return;
    case GgmlType::Q2_K:
      blocks<q2_k>(src, dst, n, t.block, t.size);
      return;
    case GgmlType::Q3_K:
      blocks<q3_k>(src, dst, n, t.block, t.size);
      return;
    case GgmlType::Q4_K:
      blocks<q4_k>(src, dst, n, t.block, t.size);
      return;
    case GgmlType::Q5_K:
      blocks<q5_k>(src, dst, n, t.block, t.size);
      return;
    case GgmlType::Q6_K:
      blocks<q6_k>(src, dst, n, t.block, t.size);
      return;
    case GgmlType::Q8_K:
      blocks<q8_k>(src, dst, n, t.block, t.size);
      return;
    default:
      break;
  }
  OPINE_ASSERT(false, "type table and dequantize_row disagree on ", ggml_type_name(type));
}

}  // namespace opine::gguf
