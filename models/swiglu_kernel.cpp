#include "models/swiglu_kernel.h"

#include <cstring>

namespace opine::models {

namespace {

// e^x for x in float range: x = n ln2 + r with |r| <= ln2 / 2, e^r by its Taylor series to r^6
// (truncation below 2e-8 relative), 2^n put into the exponent bits. Inputs are clamped to where
// e^x is a normal float, which sigmoid below tolerates (it saturates there anyway).
inline float exp_float(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  // Round to nearest by adding and subtracting 1.5 * 2^23 (no floor call: the loop vectorizes).
  constexpr float kRound = 12582912.0f;
  const float n = (x * 1.44269504088896341f + kRound) - kRound;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;  // ln2 split in two: exact n * hi
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

inline float sigmoid(float x) { return 1.0f / (1.0f + exp_float(-x)); }

}  // namespace

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define OPINE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define OPINE_CLONES
#endif

OPINE_CLONES void swiglu_forward(const float* g, const float* u, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = g[i] * sigmoid(g[i]) * u[i];
}

OPINE_CLONES void swiglu_backward(const float* dy, const float* g, const float* u, float* dg, float* du,
                                  int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float s = sigmoid(g[i]);
    const float silu = g[i] * s;
    du[i] = dy[i] * silu;
    dg[i] = dy[i] * u[i] * (s * (1.0f + g[i] * (1.0f - s)));
  }
}

}  // namespace opine::models
