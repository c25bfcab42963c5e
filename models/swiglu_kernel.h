// The loops of models/swiglu.h: plain C++ (no libtorch), compiled at -O3 for AVX-512, AVX2 and
// baseline x86-64, picked at run time. exp is computed here (range reduction by powers of two
// and a degree-6 polynomial, relative error below 1e-7) because the C library's expf does not
// vectorize without -ffast-math.
#pragma once

#include <cstdint>

namespace opine::models {

// y = silu(g) * u over n elements.
void swiglu_forward(const float* g, const float* u, float* y, int64_t n);
// dg = dy * u * silu'(g), du = dy * silu(g).
void swiglu_backward(const float* dy, const float* g, const float* u, float* dg, float* du, int64_t n);

}  // namespace opine::models
