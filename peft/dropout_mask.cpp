#include "peft/dropout_mask.h"

namespace opine::peft {

namespace {

// MurmurHash3's 32-bit finalizer: every input bit changes every output bit with probability ~1/2.
inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

}  // namespace

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void apply_dropout_mask(const float* in, float* out, int64_t n, uint64_t first, uint64_t key, uint32_t drop_below,
                        float scale) {
  const uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  const uint32_t start = static_cast<uint32_t>(first);
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t h = fmix32(fmix32(start + static_cast<uint32_t>(i) + k0) ^ k1);
    out[i] = h >= drop_below ? in[i] * scale : 0.0f;
  }
}

}  // namespace opine::peft
