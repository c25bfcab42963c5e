// The one seeded generator behind every random choice opine makes outside libtorch (shuffles,
// shards, splits, augmentation). Its stream is fixed by this code alone, unlike
// std::uniform_int_distribution's or std::shuffle's, so a seed means the same choices on every
// rank, compiler and machine.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "core/error.h"

namespace opine {

// SplitMix64's step (Steele, Lea, Flood 2014): advances `state`, returns a well-mixed value.
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A seed for stream (`stream`, `index`) derived from `seed`: independent draws per epoch, class,
// row, ...; neighbouring indices give unrelated streams.
inline uint64_t derive_seed(uint64_t seed, uint64_t stream, uint64_t index = 0) {
  uint64_t s = seed;
  uint64_t t = splitmix64(s) ^ stream;
  uint64_t u = splitmix64(t) + index;
  return splitmix64(u);
}

// xoshiro256** (Blackman, Vigna), seeded through SplitMix64.
class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed) {
    for (uint64_t& s : s_) s = splitmix64(seed);
  }
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n) without modulo bias (the lowest 2^64 mod n values are redrawn); n > 0.
  uint64_t below(uint64_t n) {
    OPINE_ASSERT(n > 0, "uniform draw from an empty range");
    const uint64_t threshold = (0 - n) % n;
    for (;;) {
      const uint64_t r = next();
      if (r >= threshold) return r % n;
    }
  }
  // Uniform in [0, 1).
  double unit() { return double(next() >> 11) * 0x1.0p-53; }
  // Fisher-Yates.
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace opine
