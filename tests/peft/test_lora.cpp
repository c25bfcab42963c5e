// LoRA layer and model: gradients against finite differences (double precision), seeded
// initialisation, merge/unmerge, LoRA over the 4-bit layer, target matching, LoRA+ groups.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "models/llama.h"
#include "peft/lora_model.h"
#include "peft_test_util.h"
#if __has_include("quant/quant_linear.h")
#include "quant/quant_linear.h"
#define OPINE_TEST_HAVE_QUANT 1
#endif

namespace opine::peft {
namespace {

using test::rel_error;
using test::tiny_config;
using test::tiny_model;

at::Generator gen(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

std::shared_ptr<LoraLinear> make_layer(at::ScalarType dtype, bool dora, bool bias, uint64_t seed = 0) {
  at::Generator g = gen(seed);
  auto o = at::TensorOptions().dtype(dtype);
  auto base = std::make_shared<DenseLinear>(at::randn({6, 5}, g, o), bias ? at::randn({6}, g, o) : at::Tensor());
  auto l = std::make_shared<LoraLinear>(base, LoraLayerSpec{3, 1.7, 0.0, dora, dtype});
  at::NoGradGuard no_grad;
  l->lora_A().copy_(at::randn({3, 5}, g, o));
  l->lora_B().copy_(at::randn({6, 3}, g, o));
  if (dora) l->magnitude().copy_(at::rand({6}, g, o) + 0.5);
  return l;
}

// Central differences of sum(forward(x) * w) in double precision; the analytic gradient must agree
// to 1e-7 relative (the difference quotient's own error at step 1e-6 is ~1e-10 here).
void finite_difference_check(LoraLinear& layer, const std::vector<at::Tensor*>& params) {
  at::Generator g = gen(42);
  const at::Tensor x = at::randn({4, 5}, g, at::kDouble).set_requires_grad(true);
  const at::Tensor w = at::randn({4, 6}, g, at::kDouble);
  auto loss = [&] { return (layer.forward(x) * w).sum(); };
  loss().backward();
  std::vector<at::Tensor*> all = params;
  at::Tensor xv = x;
  all.push_back(&xv);
  for (at::Tensor* p : all) {
    const at::Tensor analytic = p->grad().clone();
    at::Tensor numeric = at::zeros_like(*p);
    at::NoGradGuard no_grad;
    const double eps = 1e-6;
    at::Tensor flat = p->view({-1});
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double orig = flat[i].item<double>();
      flat[i].fill_(orig + eps);
      const double up = loss().item<double>();
      flat[i].fill_(orig - eps);
      const double down = loss().item<double>();
      flat[i].fill_(orig);
      numeric.view({-1})[i].fill_((up - down) / (2 * eps));
    }
    EXPECT_LT(rel_error(analytic, numeric), 1e-7) << "parameter of shape " << p->sizes();
  }
}

TEST(LoraLinear, GradientsMatchFiniteDifferences) {
  for (bool bias : {false, true}) {
    auto l = make_layer(at::kDouble, false, bias);
    finite_difference_check(*l, {&l->lora_A(), &l->lora_B()});
  }
}

// DoRA treats the weight norm as a constant (the paper's section 4.3, as PEFT does), so only the
// magnitude and the input have the plain derivative; A and B are checked against PEFT instead.
TEST(LoraLinear, DoraMagnitudeGradientMatchesFiniteDifferences) {
  auto l = make_layer(at::kDouble, true, true);
  finite_difference_check(*l, {&l->magnitude()});
}

TEST(LoraLinear, ComputesBaseplusScaledUpdate) {
  auto l = make_layer(at::kFloat, false, true);
  at::NoGradGuard no_grad;
  const at::Tensor x = at::randn({2, 5}, gen(1));
  const at::Tensor want = l->base()->forward(x) + 1.7 * at::matmul(at::matmul(x, l->lora_A().t()), l->lora_B().t());
  EXPECT_LT(rel_error(l->forward(x), want), 1e-6);
}

TEST(LoraLinear, SeededInitIsReproducible) {
  auto base = std::make_shared<DenseLinear>(at::randn({32, 48}), at::Tensor());
  auto draw = [&](uint64_t seed, const std::string& mode) {
    LoraLinear l(base, LoraLayerSpec{8, 2.0});
    at::Generator g = gen(seed);
    l.initialize(mode, g);
    return std::make_pair(l.lora_A().detach().clone(), l.lora_B().detach().clone());
  };
  auto [a1, b1] = draw(5, "true");
  auto [a2, b2] = draw(5, "true");
  auto [a3, b3] = draw(6, "true");
  EXPECT_TRUE(at::equal(a1, a2));
  EXPECT_FALSE(at::equal(a1, a3));
  EXPECT_EQ(b1.abs().max().item<float>(), 0.0f);
  // Kaiming-uniform with a = sqrt(5): U(-1/sqrt(in), 1/sqrt(in)).
  EXPECT_LE(a1.abs().max().item<double>(), 1 / std::sqrt(48.0));
  EXPECT_GT(a1.abs().max().item<double>(), 0.9 / std::sqrt(48.0));
  auto [ga, gb] = draw(5, "gaussian");
  EXPECT_NEAR(ga.std().item<double>(), 1.0 / 8, 0.02);  // N(0, 1/r), 384 draws
  EXPECT_EQ(gb.abs().max().item<float>(), 0.0f);
  auto [fa, fb] = draw(5, "false");  // nn.Linear's own init: B is not zero
  EXPECT_GT(fb.abs().max().item<float>(), 0.0f);
}

TEST(LoraLinear, MergeAndUnmergeAgree) {
  for (bool dora : {false, true}) {
    auto l = make_layer(at::kFloat, dora, true);
    at::NoGradGuard no_grad;
    const at::Tensor w0 = l->base()->dense_weight(at::kFloat).clone();
    const at::Tensor x = at::randn({3, 5}, gen(2));
    const at::Tensor unmerged = l->forward(x);
    const at::Tensor effective = l->dense_weight(at::kFloat);
    l->merge();
    EXPECT_TRUE(l->merged());
    // float32: the merged weight is rounded once more than the separate paths.
    EXPECT_LT(rel_error(l->forward(x), unmerged), 1e-6) << (dora ? "DoRA" : "LoRA");
    EXPECT_LT(rel_error(l->base()->dense_weight(at::kFloat), effective), 1e-6);
    l->unmerge();
    EXPECT_LT(rel_error(l->base()->dense_weight(at::kFloat), w0), 1e-6);
    EXPECT_LT(rel_error(l->forward(x), unmerged), 1e-6);
  }
}

#ifdef OPINE_TEST_HAVE_QUANT
// One interface for both bases: LoRA over the 4-bit layer computes the 4-bit output plus the same
// update, trains A and B, and merges by quantizing again (lossy, as PEFT over bitsandbytes).
TEST(LoraLinear, WorksOverFourBitBase) {
  at::Generator g = gen(3);
  Linear linear;
  linear.weight = at::randn({64, 128}, g) * 0.1;
  auto q = quant::quantize_linear(linear, quant::QuantConfig{}, at::kFloat);
  LoraLinear l(q, LoraLayerSpec{4, 2.0});
  {
    at::NoGradGuard no_grad;
    l.lora_A().copy_(at::randn({4, 128}, g) * 0.1);
    l.lora_B().copy_(at::randn({64, 4}, g) * 0.1);
  }
  const at::Tensor x = at::randn({3, 128}, g);
  const at::Tensor y = l.forward(x);
  at::Tensor want;
  {
    at::NoGradGuard no_grad;
    want = q->forward(x) + 2.0 * at::matmul(at::matmul(x, l.lora_A().t()), l.lora_B().t());
  }
  EXPECT_LT(rel_error(y, want), 1e-5);
  y.sum().backward();
  EXPECT_TRUE(l.lora_A().grad().defined());
  EXPECT_GT(l.lora_B().grad().abs().max().item<float>(), 0.0f);
  EXPECT_NE(l.describe().find("over nf4"), std::string::npos) << l.describe();
  at::NoGradGuard no_grad;
  l.merge();
  // Re-quantizing W + dW costs NF4's rounding: a few percent of the output, not more.
  EXPECT_LT(rel_error(l.forward(x), y), 0.1);
}
#endif

LoraConfig lora_config(std::vector<std::string> targets) {
  LoraConfig c;
  c.r = 2;
  c.target_modules = std::move(targets);
  return c;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(LoraModel, TargetsByNameSuffixPatternAndLayer) {
  {
    models::LlamaModel m = tiny_model();
    EXPECT_EQ(LoraModel(m, lora_config({"all-linear"})).layers().size(), 14u);
  }
  {
    models::LlamaModel m = tiny_model();
    LoraConfig c = lora_config({"q_proj", "mlp.down_proj"});
    c.layers_to_transform = {1};
    LoraModel l(m, c);
    ASSERT_EQ(l.layers().size(), 2u);
    EXPECT_EQ(l.layers()[0].first, "model.layers.1.self_attn.q_proj");
    EXPECT_EQ(l.layers()[1].first, "model.layers.1.mlp.down_proj");
  }
  {
    models::LlamaModel m = tiny_model();
    LoraConfig c = lora_config({});
    c.target_modules_regex = R"(.*layers\.0\.self_attn\.(k|v)_proj)";
    EXPECT_EQ(LoraModel(m, c).layers().size(), 2u);
  }
  {
    models::LlamaModel m = tiny_model();
    LoraConfig c = lora_config({"all-linear"});
    c.exclude_modules = {"o_proj", "gate_proj"};
    LoraModel l(m, c);
    EXPECT_EQ(l.layers().size(), 10u);
    EXPECT_EQ(l.saved_config().target_modules.size(), 10u);  // saved resolved, as PEFT saves all-linear
  }
}

TEST(LoraModel, UnknownTargetsAreClearErrors) {
  models::LlamaModel m = tiny_model();
  EXPECT_NE(error_of([&] { LoraModel(m, lora_config({"q_proj", "qkv_proj"})); }).find("'qkv_proj' is not in the model"),
            std::string::npos);
  EXPECT_NE(error_of([&] { LoraModel(m, lora_config({"lm_head"})); }).find("modules_to_save"), std::string::npos);
  LoraConfig c = lora_config({});
  c.target_modules_regex = ".*attn_proj";
  EXPECT_NE(error_of([&] { LoraModel(m, c); }).find("match no module"), std::string::npos);
  // Nothing was left attached by the failed attempts.
  for (const LinearSlotRef& s : m.linear_table()) EXPECT_FALSE(s.linear->op) << s.name;
}

TEST(LoraModel, HeadTrainsInFullAndCountsAsPeft) {
  models::LlamaModel m = tiny_model(16, models::HeadKind::kClassification);
  const at::Tensor original = m.score;
  LoraConfig c = lora_config({"q_proj", "v_proj"});
  c.task_type = "SEQ_CLS";  // adds classifier and score to modules_to_save, as PEFT does
  LoraModel l(m, c);
  EXPECT_TRUE(m.score.requires_grad());
  EXPECT_FALSE(m.score.is_same(original));
  EXPECT_FALSE(original.requires_grad());
  const ParameterCount n = l.count_parameters();
  // Per layer: q (A 2x16 + B 16x2) and v (A 2x16 + B 8x2); the head copy 3x16.
  EXPECT_EQ(n.trainable, 2 * (64 + 48) + 48);
  EXPECT_EQ(n.all, tiny_config(16, models::HeadKind::kClassification).parameter_count() + 2 * (64 + 48) + 48);
  EXPECT_EQ(ParameterCount({2176, 76416}).to_string(), "trainable params: 2,176 || all params: 76,416 || trainable%: 2.8476");
}

TEST(LoraModel, LoraPlusGroupsBAndVectorsApart) {
  models::LlamaModel m = tiny_model(16, models::HeadKind::kClassification);
  LoraConfig c = lora_config({"q_proj"});
  c.use_dora = true;
  c.task_type = "SEQ_CLS";
  c.loraplus_lr_ratio = 16;
  LoraModel l(m, c);
  std::vector<ParamGroup> groups = l.parameter_groups();
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0].lr_scale, 1.0);
  EXPECT_EQ(groups[1].lr_scale, 16.0);
  size_t total = 0;
  for (const ParamGroup& g : groups) {
    total += g.params.size();
    for (const auto& [name, t] : g.params) {
      const bool b_side = name.find("lora_B") != std::string::npos || t.dim() == 1;
      EXPECT_EQ(g.name != "A", b_side) << name << " in " << g.name;
    }
  }
  EXPECT_EQ(total, l.named_trainable().size());
  // A (2 layers) and the head in A; B and the DoRA magnitudes in B.
  EXPECT_EQ(groups[0].params.size(), 3u);
  EXPECT_EQ(groups[1].params.size(), 4u);
  c.loraplus_lr_ratio.reset();
  models::LlamaModel m2 = tiny_model(16, models::HeadKind::kClassification);
  EXPECT_EQ(LoraModel(m2, c).parameter_groups().size(), 1u);
}

TEST(LoraModel, DropoutOnlyWhileTraining) {
  models::LlamaModel m = tiny_model();
  LoraConfig c = lora_config({"q_proj"});
  c.lora_dropout = 0.5;
  c.init_lora_weights = "false";  // B non-zero, so dropout shows
  LoraModel l(m, c, 3);
  const at::Tensor ids = at::tensor({1, 5, 7, 9}, at::kLong).view({1, 4});
  at::NoGradGuard no_grad;
  const at::Tensor eval1 = m.forward(ids).hidden, eval2 = m.forward(ids).hidden;
  EXPECT_TRUE(at::equal(eval1, eval2));
  l.set_training(true);
  EXPECT_FALSE(at::equal(m.forward(ids).hidden, eval1));
}

}  // namespace
}  // namespace opine::peft
