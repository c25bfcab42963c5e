// The CUDA kernels against the CPU path (itself bit-exact with bitsandbytes): dequantization to
// the bit, the fused 4-bit matrix-vector kernel and the buffered matmul within float32 summation
// order. Skipped without a GPU.
#include <gtest/gtest.h>

#include "quant/format.h"
#include "quant/quant_linear.h"

namespace opine::quant {
namespace {

#define OPINE_REQUIRE_CUDA() \
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device"

bool same_bits(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor x = a.contiguous().cpu(), y = b.contiguous().cpu();
  return x.scalar_type() == y.scalar_type() && x.sizes() == y.sizes() &&
         std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()) == 0;
}

TEST(QuantGpu, DequantizeMatchesCpuBitForBit) {
  OPINE_REQUIRE_CUDA();
  at::manual_seed(1);
  for (QuantType type : {QuantType::kNf4, QuantType::kFp4}) {
    for (bool dq : {false, true}) {
      for (std::vector<int64_t> shape : {std::vector<int64_t>{256, 320}, {37, 70}, {7, 33}}) {
        QuantConfig config;
        config.type = type;
        config.double_quant = dq;
        config.block_size = shape[1] == 33 ? 32 : 64;
        const QuantizedTensor cpu = quantize(at::randn(shape), config);
        const QuantizedTensor gpu = cpu.to(at::Device(at::kCUDA, 0));
        EXPECT_TRUE(same_bits(block_absmax(gpu), block_absmax(cpu)));
        for (at::ScalarType dt : {at::kFloat, at::kBFloat16, at::kHalf})
          EXPECT_TRUE(same_bits(dequantize(gpu, dt), dequantize(cpu, dt)))
              << quant_type_name(type) << " dq " << dq << " " << at::IntArrayRef(shape) << " " << dt;
      }
    }
  }
}

TEST(QuantGpu, MatmulMatchesCpu) {
  OPINE_REQUIRE_CUDA();
  at::manual_seed(2);
  for (int64_t in : {512, 100}) {  // 8-aligned rows (vector loads) and ragged ones
    Linear linear;
    linear.weight = at::randn({384, in}) * 0.05;
    linear.bias = at::randn({384});
    QuantConfig config;
    auto op = quantize_linear(linear, config, at::kFloat);
    for (int64_t rows : {1, 5, 8, 33}) {  // up to 8: fused kernel; 33: dequantize + cuBLAS
      const at::Tensor x = at::randn({rows, in});
      const at::Tensor want = op->forward(x);
      auto gop = quantize_linear(linear, config, at::kFloat);
      gop->to(at::Device(at::kCUDA, 0), at::kFloat);
      const at::Tensor got = gop->forward(x.cuda()).cpu();
      // float32 sums of `in` products in another order (TF32 is off for float32 matmuls by default).
      EXPECT_TRUE(at::allclose(got, want, 1e-4, 1e-4)) << in << " rows " << rows << " max diff "
                                                       << (got - want).abs().max().item<float>();
      for (at::ScalarType dt : {at::kBFloat16, at::kHalf}) {
        gop->to(at::Device(at::kCUDA, 0), dt);
        const at::Tensor y = gop->forward(x.cuda().to(dt)).cpu().to(at::kFloat);
        const double tol = dt == at::kBFloat16 ? 5e-2 : 1e-2;
        EXPECT_TRUE(at::allclose(y, want, tol, tol)) << dt << " rows " << rows;
        gop->to(at::Device(at::kCUDA, 0), at::kFloat);
      }
    }
  }
}

}  // namespace
}  // namespace opine::quant
