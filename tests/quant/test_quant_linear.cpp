// QuantLinear against a dense matmul over its own dequantized weight: the fused small-batch kernel,
// the buffered path, gradients through chains of layers, and quantize-on-load over slots.
#include <gtest/gtest.h>

#include "core/error.h"
#include "quant/quant_linear.h"
#include "quant/quantize_model.h"

namespace opine::quant {
namespace {

std::shared_ptr<QuantLinear> make_layer(int64_t out, int64_t in, bool bias, at::ScalarType compute,
                                        QuantType type = QuantType::kNf4) {
  Linear linear;
  linear.weight = at::randn({out, in}) * 0.1;
  if (bias) linear.bias = at::randn({out});
  QuantConfig config;
  config.type = type;
  return quantize_linear(linear, config, compute);
}

at::Tensor reference(const QuantLinear& op, const at::Tensor& x) {
  const at::Tensor w = op.dense_weight(at::kFloat);
  const at::Tensor b = op.bias();
  return at::linear(x.to(at::kFloat), w, b.defined() ? std::optional<at::Tensor>(b.to(at::kFloat)) : std::nullopt);
}

TEST(QuantLinear, ForwardMatchesDenseMatmulInFloat32) {
  at::manual_seed(1);
  // 100 inputs: rows that are not whole blocks; 96: whole blocks; 128: whole 32-element chunks.
  for (int64_t in : {96, 100, 128}) {
    const auto op = make_layer(40, in, true, at::kFloat);
    // 1 and 3 rows take the fused kernel, 2x9 the dequantize-into-buffer path.
    for (std::vector<int64_t> shape : {std::vector<int64_t>{1, in}, {3, in}, {2, 9, in}}) {
      const at::Tensor x = at::randn(shape);
      const at::Tensor y = op->forward(x);
      std::vector<int64_t> want_shape = shape;
      want_shape.back() = 40;
      EXPECT_EQ(y.sizes(), at::IntArrayRef(want_shape));
      // float32 sums of ~100 products in another order.
      EXPECT_TRUE(at::allclose(y, reference(*op, x), 1e-5, 1e-5)) << in << " " << x.sizes();
    }
  }
}

TEST(QuantLinear, Bf16AndF16Compute) {
  at::manual_seed(2);
  for (at::ScalarType dt : {at::kBFloat16, at::kHalf}) {
    const auto op = make_layer(64, 128, true, dt, QuantType::kFp4);
    for (int64_t rows : {1, 16}) {
      const at::Tensor x = at::randn({rows, 128}).to(dt);
      const at::Tensor y = op->forward(x);
      EXPECT_EQ(y.scalar_type(), dt);
      // Inputs and weights rounded to 8 (bf16) or 11 (f16) mantissa bits, one output rounding.
      const double tol = dt == at::kBFloat16 ? 3e-2 : 4e-3;
      EXPECT_TRUE(at::allclose(y.to(at::kFloat), reference(*op, x), tol, tol)) << dt << " rows " << rows;
    }
  }
}

TEST(QuantLinear, FusedKernelAgreesWithBufferedPath) {
  at::manual_seed(3);
  // 256 inputs: whole 32-element chunks (the vectorised kernel); 200: the portable one.
  for (int64_t in : {256, 200}) {
    const auto op = make_layer(72, in, false, at::kFloat);
    const int64_t fused_rows = QuantLinear::kFusedRowsCpu;
    const at::Tensor x = at::randn({fused_rows + 3, in});
    const at::Tensor buffered = op->forward(x);  // above the fused threshold
    const at::Tensor fused = at::cat({op->forward(x.narrow(0, 0, fused_rows)), op->forward(x.narrow(0, fused_rows, 3))});
    EXPECT_TRUE(at::allclose(fused, buffered, 1e-5, 1e-5)) << in;
  }
}

// Two 4-bit layers in a row share one dequantization buffer; backward must dequantize again
// rather than read a weight the next layer overwrote.
TEST(QuantLinear, GradientsFlowToInputsThroughChainedLayers) {
  at::manual_seed(4);
  const auto a = make_layer(48, 32, true, at::kFloat);
  const auto b = make_layer(16, 48, false, at::kFloat);
  const at::Tensor x = at::randn({5, 32}).set_requires_grad(true);
  b->forward(at::gelu(a->forward(x))).pow(2).sum().backward();
  const at::Tensor x2 = x.detach().clone().set_requires_grad(true);
  at::linear(at::gelu(at::linear(x2, a->dense_weight(at::kFloat), a->bias())), b->dense_weight(at::kFloat))
      .pow(2)
      .sum()
      .backward();
  EXPECT_TRUE(at::allclose(x.grad(), x2.grad(), 1e-5, 1e-5));
}

// LoRA adds its update into the base output in place. On a view, autograd would turn that into
// CopySlices, which copies the whole gradient in backward (8% of a QLoRA step), so a [B, T, in]
// input must give an output of its own, with the same gradients as the dense layer.
TEST(QuantLinear, TrainingOutputIsNotAViewAndTakesInPlaceUpdates) {
  at::manual_seed(6);
  const auto op = make_layer(48, 32, true, at::kFloat);
  const at::Tensor update = at::randn({32, 48});
  const at::Tensor x = at::randn({2, 3, 32}).set_requires_grad(true);
  at::Tensor y = op->forward(x);
  EXPECT_FALSE(y.is_view());
  ASSERT_EQ(y.sizes(), at::IntArrayRef({2, 3, 48}));
  y.add_(at::matmul(x, update));
  y.pow(2).sum().backward();
  const at::Tensor x2 = x.detach().clone().set_requires_grad(true);
  (at::linear(x2, op->dense_weight(at::kFloat), op->bias()) + at::matmul(x2, update)).pow(2).sum().backward();
  EXPECT_TRUE(at::allclose(x.grad(), x2.grad(), 1e-5, 1e-4));
}

TEST(QuantLinear, AssignDenseWeightQuantizesAgain) {
  at::manual_seed(5);
  const auto op = make_layer(32, 64, false, at::kFloat);
  const at::Tensor w = at::randn({32, 64});
  op->assign_dense_weight(w);
  QuantConfig config;
  EXPECT_TRUE(at::equal(op->dense_weight(at::kFloat), dequantize(quantize(w, config), at::kFloat)));
  EXPECT_THROW(op->assign_dense_weight(at::randn({32, 63})), Error);
}

TEST(QuantLinear, ClearErrors) {
  const auto op = make_layer(8, 64, false, at::kFloat);
  try {
    op->forward(at::randn({2, 63}));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("takes 64 input features"), std::string::npos) << e.what();
  }
  QuantConfig config;
  EXPECT_THROW(QuantLinear(quantize(at::randn({64}), config), {}, config, at::kFloat), Error);  // 1-D
  EXPECT_THROW(QuantLinear(quantize(at::randn({8, 64}), config), at::randn({7}), config, at::kFloat), Error);
  EXPECT_THROW(QuantLinear(quantize(at::randn({8, 64}), config), {}, config, at::kInt), Error);
}

TEST(QuantLinear, DescribeAndResidentBytes) {
  const auto op = make_layer(64, 128, true, at::kFloat);
  EXPECT_EQ(op->describe(), "nf4 (block 64, double quant)");
  // 8192 weights: 4096 code bytes, 128 absmax codes, one nested float, the offset; 64 float biases.
  EXPECT_EQ(op->resident_bytes(), 4096 + 128 + 4 + 4 + 64 * 4);
}

TEST(QuantizeModel, InstallsOnSlotsAndSkipsByName) {
  at::manual_seed(6);
  std::vector<Linear> layers(3);
  for (Linear& l : layers) l.weight = at::randn({32, 64});
  layers[2].bias = at::randn({32});
  std::vector<LinearSlotRef> slots = {{"model.layers.0.self_attn.q_proj", &layers[0]},
                                      {"model.layers.0.mlp.down_proj", &layers[1]},
                                      {"lm_head", &layers[2]}};
  const at::Tensor x = at::randn({2, 64});
  const at::Tensor before = layers[0].forward(x);
  QuantConfig config;
  const QuantSummary s = quantize_linears(slots, config, at::kFloat);
  EXPECT_EQ(s.layers, 2);
  EXPECT_EQ(s.params, 2 * 32 * 64);
  EXPECT_EQ(s.skipped, std::vector<std::string>{"lm_head"});
  EXPECT_EQ(s.dense_bytes, 2 * 32 * 64 * 4);
  EXPECT_NEAR(s.bytes_per_param(), 0.5 + 1.0 / 64 + 8.0 / (32 * 64), 1e-12);
  EXPECT_FALSE(layers[0].weight.defined());  // the dense weight is released
  EXPECT_TRUE(dynamic_cast<QuantLinear*>(layers[0].op.get()));
  EXPECT_FALSE(layers[2].op);
  // 4 bits: close to, not equal to, the dense output.
  const at::Tensor after = layers[0].forward(x);
  EXPECT_GT((after - before).abs().max().item<float>(), 0.0f);
  EXPECT_LT(((after - before).norm() / before.norm()).item<float>(), 0.15f);
  // Quantizing twice is refused with the layer's name.
  try {
    quantize_linears(slots, config, at::kFloat);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.0.self_attn.q_proj"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace opine::quant
