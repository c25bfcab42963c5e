// The fused SwiGLU (models/swiglu.h) against silu(gate) * up in float64 with libtorch's own ops:
// values and both gradients, over ordinary and extreme gate values.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "models/swiglu.h"

namespace opine::models {
namespace {

// Largest difference over the reference's largest magnitude.
double scaled_error(const at::Tensor& got, const at::Tensor& want) {
  return ((got.to(at::kDouble) - want).abs().max() / want.abs().max()).item<double>();
}

TEST(Swiglu, MatchesSiluTimesUpAndItsGradients) {
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(1);
  at::Tensor gate = at::randn({7, 333}, g) * 4;  // not a multiple of any vector width
  gate[0][0] = -100;                             // exp's clamp
  gate[0][1] = 100;
  gate[0][2] = 0;
  gate[0][3] = -87.5;
  const at::Tensor up = at::randn({7, 333}, g), upstream = at::randn({7, 333}, g);

  const at::Tensor g32 = gate.clone().set_requires_grad(true), u32 = up.clone().set_requires_grad(true);
  const at::Tensor y = swiglu(g32, u32);
  y.backward(upstream);

  const at::Tensor g64 = gate.to(at::kDouble).set_requires_grad(true), u64 = up.to(at::kDouble).set_requires_grad(true);
  const at::Tensor ref = at::silu(g64) * u64;
  ref.backward(upstream.to(at::kDouble));

  // float32 arithmetic against float64: a few units in the last place of the largest value.
  EXPECT_LT(scaled_error(y.detach(), ref.detach()), 1e-6);
  EXPECT_LT(scaled_error(g32.grad(), g64.grad()), 1e-6);
  EXPECT_LT(scaled_error(u32.grad(), u64.grad()), 1e-6);
  EXPECT_TRUE(at::isfinite(y).all().item<bool>());
  EXPECT_TRUE(at::isfinite(g32.grad()).all().item<bool>());

  // Other dtypes take libtorch's ops: the same values.
  const at::Tensor y64 = swiglu(gate.to(at::kDouble), up.to(at::kDouble));
  EXPECT_TRUE(at::allclose(y64, ref.detach()));
}

}  // namespace
}  // namespace opine::models
