// Small seeded generators whose output is fixed by the algorithm, not by the standard library
// (std::uniform_int_distribution and std::shuffle differ between implementations), so a seed
// means the same shuffle on every rank, compiler and machine.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace opine {

// SplitMix64 (Steele, Lea, Flood 2014): one 64-bit state, good enough for shuffles and sampling.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) without modulo bias (Lemire's multiply-shift with rejection).
  uint64_t below(uint64_t n) {
    if (n <= 1) return 0;
    const uint64_t threshold = (0 - n) % n;
    while (true) {
      const unsigned __int128 m = (unsigned __int128)next() * n;
      if (uint64_t(m) >= threshold) return uint64_t(m >> 64);
    }
  }
  // Uniform in [0, 1).
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// A seed for stream `index` derived from `seed` (independent streams per example, rank, epoch).
inline uint64_t derive_seed(uint64_t seed, uint64_t index) {
  SplitMix64 g(seed ^ (index * 0xD1B54A32D192ED03ull));
  g.next();
  return g.next();
}

// Fisher-Yates.
template <class T>
void shuffle(std::vector<T>& items, SplitMix64& rng) {
  for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[rng.below(i)]);
}

}  // namespace opine
