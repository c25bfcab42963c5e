// ShardedModel on one process: every mode and activation checkpointing give the gradients plain
// autograd gives on the same layers (the multi-rank equalities run under mpirun in
// tests/launch/test_train.py). Double precision: the recomputed forward is the same arithmetic,
// but the master copies of trainable tensors (and so their gradients) are float32: 1e-6 relative.
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>

#include "core/shard.h"

namespace opine::dist {
namespace {

struct ToyLayer {
  at::Tensor norm, weight, adapter, bias;  // frozen, frozen, trainable, trainable
};

// y = x + tanh((x * norm) W^T) A^T + bias
at::Tensor toy_forward(const ToyLayer& l, const at::Tensor& x) {
  return x + at::tanh(at::matmul(x * l.norm, l.weight.t())).matmul(l.adapter.t()) + l.bias;
}

std::vector<ToyLayer> make_layers(int n, int64_t h) {
  at::manual_seed(3);
  std::vector<ToyLayer> layers(n);
  const auto o = at::TensorOptions().dtype(at::kDouble);
  for (ToyLayer& l : layers) {
    l.norm = at::rand({h}, o) + 0.5;
    l.weight = at::randn({h, h}, o);
    // Trainable values a float32 master copy holds exactly.
    l.adapter = (at::randn({h, h}, o) * 0.1).to(at::kFloat).to(at::kDouble).set_requires_grad(true);
    l.bias = (at::randn({h}, o) * 0.1).to(at::kFloat).to(at::kDouble).set_requires_grad(true);
  }
  return layers;
}

double loss_of(const at::Tensor& y) { return y.pow(2).sum().item<double>(); }

// Gradients of the trainable tensors, by layer, after a plain autograd backward.
std::vector<at::Tensor> reference_grads(int n, int64_t h, const at::Tensor& x) {
  std::vector<ToyLayer> layers = make_layers(n, h);
  at::Tensor y = x;
  for (const ToyLayer& l : layers) y = toy_forward(l, y);
  y.pow(2).sum().backward();
  std::vector<at::Tensor> grads;
  for (const ToyLayer& l : layers) {
    grads.push_back(l.adapter.grad().reshape({-1}));
    grads.push_back(l.bias.grad().reshape({-1}));
  }
  return grads;
}

void check_mode(const std::string& mode, bool checkpointing) {
  SCOPED_TRACE(mode + (checkpointing ? " + checkpointing" : ""));
  const int n = 3;
  const int64_t h = 6;
  const at::Tensor x = at::randn({4, h}, at::TensorOptions().dtype(at::kDouble));
  const std::vector<at::Tensor> want = reference_grads(n, h, x);

  std::vector<ToyLayer> layers = make_layers(n, h);
  std::vector<ShardedModel::Unit> units;
  for (int i = 0; i < n; ++i)
    units.push_back({"layers." + std::to_string(i),
                     {{"norm", &layers[i].norm},
                      {"weight", &layers[i].weight},
                      {"adapter", &layers[i].adapter},
                      {"bias", &layers[i].bias}}});
  std::unique_ptr<Communicator> self = make_self_communicator();
  ShardOptions options;
  options.mode = mode;
  options.param_dtype = "f64";
  options.reduce_dtype = "f64";
  options.activation_checkpointing = checkpointing;
  ShardedModel model(std::move(units), {}, *self, nullptr, options, at::kCPU,
                     [](const std::string&) { return 0; });

  at::Tensor y = x;
  for (int i = 0; i < n; ++i)
    y = model.run(i, y, [&layers, i](const at::Tensor& in) { return toy_forward(layers[i], in); });
  y.pow(2).sum().backward();
  model.reduce_gradients();
  const std::vector<FlatParam> params = model.parameters();
  ASSERT_EQ(params.size(), size_t(n));
  for (int i = 0; i < n; ++i) {
    const at::Tensor got = params[i].param.grad().to(at::kDouble);
    const at::Tensor expect = at::cat({want[2 * i], want[2 * i + 1]});
    ASSERT_GE(got.numel(), expect.numel());
    EXPECT_TRUE(at::allclose(got.narrow(0, 0, expect.numel()), expect, 1e-6, 1e-9))
        << mode << (checkpointing ? " + checkpointing" : "") << ", layer " << i << ": max difference "
        << (got.narrow(0, 0, expect.numel()) - expect).abs().max().item<double>();
  }
  // Evaluation (no grad) gives the same output as the plain forward.
  at::NoGradGuard no_grad;
  at::Tensor e = x, plain = x;
  std::vector<ToyLayer> fresh = make_layers(n, h);
  for (int i = 0; i < n; ++i) {
    e = model.run(i, e, [&layers, i](const at::Tensor& in) { return toy_forward(layers[i], in); });
    plain = toy_forward(fresh[i], plain);
  }
  EXPECT_NEAR(loss_of(e), loss_of(plain), 1e-9);
}

TEST(Shard, EveryModeGivesPlainAutogradGradients) {
  for (const char* mode : {"full_shard", "shard_grad_op", "replicate"})
    for (bool checkpointing : {false, true}) check_mode(mode, checkpointing);
}

TEST(Shard, ModeNamesAndDtypes) {
  EXPECT_EQ(parse_shard_mode("full_shard"), ShardMode::kFullShard);
  EXPECT_STREQ(shard_mode_name(ShardMode::kShardGradOp), "shard_grad_op");
  EXPECT_THROW(parse_shard_mode("zero3"), Error);
  EXPECT_EQ(parse_float_dtype("bf16"), at::kBFloat16);
  EXPECT_THROW(parse_float_dtype("fp8"), Error);
}

}  // namespace
}  // namespace opine::dist
