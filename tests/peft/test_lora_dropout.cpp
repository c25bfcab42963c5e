// The fused LoRA update (peft/lora_dropout.h): its dropout mask's statistics and determinism, and
// its output and gradients against the same computation written with plain libtorch ops and the
// same mask.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>

#include <cmath>
#include <mutex>

#include "peft/lora_dropout.h"
#include "peft/lora_linear.h"

namespace opine::peft {
namespace {

double max_rel(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item<double>();
}

uint64_t next_key_after_seed(uint64_t seed) {
  at::Generator g = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_current_seed(seed);
  return g.get<at::CPUGeneratorImpl>()->random64();
}

void seed_default(uint64_t seed) {
  at::Generator g = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_current_seed(seed);
}

TEST(LoraDropout, MaskKeepsOneMinusPScaledAndIsAFunctionOfItsKey) {
  const int64_t n = 1 << 20;
  const at::Tensor ones = at::ones({n / 512, 512});
  for (const double p : {0.05, 0.1, 0.5}) {
    const at::Tensor out = apply_dropout_mask(ones, 42, p);
    const at::Tensor kept = out.ne(0);
    const double rate = kept.to(at::kDouble).mean().item<double>();
    // Binomial: 6 standard deviations of the kept fraction.
    EXPECT_NEAR(rate, 1 - p, 6 * std::sqrt(p * (1 - p) / n)) << "p = " << p;
    // Kept values are 1 / (1 - p) (up to the threshold's 2^-32 resolution).
    EXPECT_NEAR(out.masked_select(kept).min().item<double>(), 1 / (1 - p), 1e-6);
    EXPECT_NEAR(out.masked_select(kept).max().item<double>(), 1 / (1 - p), 1e-6);
    // Unbiased: the mean of the masked ones is 1.
    EXPECT_NEAR(out.to(at::kDouble).mean().item<double>(), 1.0, 6 * std::sqrt(p / ((1 - p) * n)));
  }
  // Same key, same mask (whatever the thread split); another key, another mask.
  const at::Tensor a = apply_dropout_mask(ones, 7, 0.1);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const at::Tensor one_thread = apply_dropout_mask(ones, 7, 0.1);
  at::set_num_threads(threads);
  EXPECT_TRUE(at::equal(a, one_thread));
  const at::Tensor b = apply_dropout_mask(ones, 8, 0.1);
  const double both_dropped = a.eq(0).logical_and(b.eq(0)).to(at::kDouble).mean().item<double>();
  EXPECT_NEAR(both_dropped, 0.01, 6 * std::sqrt(0.01 * 0.99 / n));  // independent masks: p^2
  // Neighbouring elements are not correlated: P(i and i+1 both dropped) = p^2.
  const at::Tensor flat = a.view({-1}).eq(0);
  const double pairs =
      flat.narrow(0, 0, n - 1).logical_and(flat.narrow(0, 1, n - 1)).to(at::kDouble).mean().item<double>();
  EXPECT_NEAR(pairs, 0.01, 6 * std::sqrt(0.01 * 0.99 / n));
}

// The reference: the same update with plain ops, the mask taken from apply_dropout_mask on ones.
struct Reference {
  at::Tensor out, grad_x, grad_a, grad_b;
};

Reference reference(const at::Tensor& base, const at::Tensor& x, const at::Tensor& a, const at::Tensor& b,
                    const at::Tensor& upstream, uint64_t key, double p, double scaling) {
  const at::Tensor xr = x.detach().clone().set_requires_grad(true);
  const at::Tensor ar = a.detach().clone().set_requires_grad(true);
  const at::Tensor br = b.detach().clone().set_requires_grad(true);
  const at::Tensor mask = p > 0 ? apply_dropout_mask(at::ones_like(x), key, p) : at::ones_like(x);
  const at::Tensor out = base + scaling * at::linear(at::linear(xr * mask, ar), br);
  out.backward(upstream);
  return {out.detach(), xr.grad(), ar.grad(), br.grad()};
}

TEST(LoraDropout, UpdateAndGradientsMatchPlainOpsWithTheSameMask) {
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(3);
  // Rows not a multiple of the chunk, so the last chunk is partial.
  const at::Tensor x0 = at::randn({3, 77, 40}, g), a0 = at::randn({4, 40}, g), b0 = at::randn({24, 4}, g);
  const at::Tensor base = at::randn({3, 77, 24}, g), upstream = at::randn({3, 77, 24}, g);
  for (const double p : {0.0, 0.1}) {
    const double scaling = 1.5;
    const uint64_t key = next_key_after_seed(11);
    const Reference ref = reference(base, x0, a0, b0, upstream, key, p, scaling);

    seed_default(11);  // the function draws the same key
    const at::Tensor x = x0.clone().set_requires_grad(true), a = a0.clone().set_requires_grad(true),
                     b = b0.clone().set_requires_grad(true);
    ASSERT_TRUE(lora_update_into_applies(base, x, a, b));
    const at::Tensor out = lora_update_into(base.clone(), x, a, b, p, scaling);
    out.backward(upstream);
    // float32 with another summation order (chunked rows, per-thread sums): 1e-5 relative.
    EXPECT_LT(max_rel(out.detach(), ref.out), 1e-5) << "p = " << p;
    EXPECT_LT(max_rel(x.grad(), ref.grad_x), 1e-5) << "p = " << p;
    EXPECT_LT(max_rel(a.grad(), ref.grad_a), 1e-5) << "p = " << p;
    EXPECT_LT(max_rel(b.grad(), ref.grad_b), 1e-5) << "p = " << p;
  }
}

TEST(LoraDropout, LoraLinearUsesItWhenTrainingInFloat32) {
  // LoraLinear's output with dropout in training equals base + the update under the mask its
  // key gives; in evaluation there is no dropout.
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(5);
  const at::Tensor w = at::randn({12, 10}, g);
  auto base = std::make_shared<DenseLinear>(w, at::Tensor());
  LoraLinear l(base, LoraLayerSpec{2, 2.0, 0.3, false, at::kFloat});
  {
    at::NoGradGuard no_grad;
    l.lora_A().copy_(at::randn({2, 10}, g));
    l.lora_B().copy_(at::randn({12, 2}, g));
  }
  const at::Tensor x = at::randn({5, 10}, g);
  const uint64_t key = next_key_after_seed(9);
  const at::Tensor mask = apply_dropout_mask(at::ones_like(x), key, 0.3);
  const at::Tensor want = at::linear(x, w) + 2.0 * at::linear(at::linear(x * mask, l.lora_A()), l.lora_B());
  l.set_training(true);
  seed_default(9);
  EXPECT_LT(max_rel(l.forward(x).detach(), want.detach()), 1e-6);
  l.set_training(false);
  const at::Tensor plain = at::linear(x, w) + 2.0 * at::linear(at::linear(x, l.lora_A()), l.lora_B());
  EXPECT_LT(max_rel(l.forward(x).detach(), plain.detach()), 1e-6);
}

}  // namespace
}  // namespace opine::peft
