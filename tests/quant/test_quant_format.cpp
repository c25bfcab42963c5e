// The 4-bit format on its own: nearest-code property against a brute-force search written with
// plain at:: ops, layout facts (nibble order, storage dtypes, sizes), and clear errors.
#include <gtest/gtest.h>

#include "core/error.h"
#include "quant/bnb_format.h"
#include "quant/format.h"

namespace opine::quant {
namespace {

at::Tensor book_tensor(QuantType t) {
  return at::from_blob(const_cast<float*>(code_book(t).data()), {16}, at::kFloat).clone();
}

// Expects `fn` to throw an opine::Error whose message contains `fragment`.
template <typename Fn>
void expect_error(Fn fn, const std::string& fragment) {
  try {
    fn();
    ADD_FAILURE() << "no error; expected one mentioning '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(QuantFormat, CodeBooksAreSortedOrFp4) {
  const auto& nf4 = code_book(QuantType::kNf4);
  EXPECT_EQ(nf4.front(), -1.0f);
  EXPECT_EQ(nf4[7], 0.0f);
  EXPECT_EQ(nf4.back(), 1.0f);
  for (int i = 1; i < 16; ++i) EXPECT_LT(nf4[i - 1], nf4[i]);
  const auto& fp4 = code_book(QuantType::kFp4);
  EXPECT_EQ(fp4[3], 1.0f);    // 0b011: the largest positive value
  EXPECT_EQ(fp4[11], -1.0f);  // its negative (sign bit 8)
  for (int i = 1; i < 8; ++i) EXPECT_EQ(fp4[i + 8], -fp4[i]);
  const auto& dyn = dynamic_map();
  for (int i = 1; i < 256; ++i) EXPECT_LE(dyn[i - 1], dyn[i]);
  EXPECT_EQ(dyn.back(), 1.0f);
}

// Each value decodes to the code nearest to x / absmax, times absmax (ties aside: random data).
TEST(QuantFormat, DequantizeGivesNearestCodeTimesAbsmax) {
  at::manual_seed(3);
  for (QuantType type : {QuantType::kNf4, QuantType::kFp4}) {
    for (int64_t block : {32, 64, 128, 256}) {
      const at::Tensor x = at::randn({24, 96});
      QuantConfig config;
      config.type = type;
      config.block_size = block;
      config.double_quant = false;
      const QuantizedTensor q = quantize(x, config);
      const at::Tensor blocks = x.reshape({-1, block});
      const at::Tensor absmax = blocks.abs().amax(1, true);
      const at::Tensor scaled = blocks / absmax;
      const at::Tensor book = book_tensor(type);
      const at::Tensor nearest = (scaled.unsqueeze(-1) - book).abs().argmin(-1);
      const at::Tensor want = (book.index({nearest}) * absmax).reshape(x.sizes());
      EXPECT_TRUE(at::allclose(dequantize(q, at::kFloat), want, 1e-6, 0)) << quant_type_name(type) << " " << block;
      EXPECT_TRUE(at::equal(q.absmax, absmax.reshape({-1})));
    }
  }
}

TEST(QuantFormat, HighNibbleHoldsTheEvenElement) {
  // Block of 64: [1, 0, 0, ...]: element 0 -> NF4 code 15 in the high nibble, element 1 -> code 7.
  at::Tensor x = at::zeros({64});
  x[0] = 1.0;
  QuantConfig config;
  config.double_quant = false;
  const QuantizedTensor q = quantize(x, config);
  EXPECT_EQ(q.codes()[0].item<uint8_t>(), 0xF7);
  EXPECT_EQ(q.codes()[1].item<uint8_t>(), 0x77);
}

TEST(QuantFormat, SizesAndStorage) {
  const at::Tensor x = at::randn({128, 64}).to(at::kBFloat16);
  QuantConfig config;
  const QuantizedTensor q = quantize(x, config);
  EXPECT_EQ(q.packed.sizes(), (std::vector<int64_t>{4096, 1}));
  EXPECT_EQ(q.absmax.scalar_type(), at::kByte);
  EXPECT_EQ(q.absmax.numel(), 128);
  EXPECT_EQ(q.nested_absmax.numel(), 1);
  EXPECT_EQ(q.bytes(), 4096 + 128 + 4 + 4);
  EXPECT_EQ(q.dtype, at::kBFloat16);
  config.storage = at::kBFloat16;
  const QuantizedTensor b = quantize(x, config);
  EXPECT_EQ(b.packed.scalar_type(), at::kBFloat16);
  EXPECT_EQ(b.packed.sizes(), (std::vector<int64_t>{2048, 1}));
  EXPECT_TRUE(at::equal(b.codes(), q.codes()));  // same bytes, another dtype to shard with
  EXPECT_TRUE(at::equal(dequantize(b, at::kFloat), dequantize(q, at::kFloat)));
}

TEST(QuantFormat, DoubleQuantIsCloseToSingle) {
  at::manual_seed(5);
  const at::Tensor x = at::randn({300, 128});
  QuantConfig config;
  const at::Tensor dq = block_absmax(quantize(x, config));
  config.double_quant = false;
  const at::Tensor single = block_absmax(quantize(x, config));
  // 8-bit dynamic codes of (absmax - mean): relative error well under 1%.
  EXPECT_LT(((dq - single).abs() / single).max().item<float>(), 1e-2);
}

TEST(QuantFormat, SerializedRoundTrip) {
  at::manual_seed(9);
  const at::Tensor x = at::randn({40, 96});
  for (bool dq : {false, true}) {
    QuantConfig config;
    config.type = QuantType::kFp4;
    config.double_quant = dq;
    const QuantizedTensor q = quantize(x, config);
    std::map<std::string, at::Tensor> saved;
    for (const auto& [k, v] : to_bnb_state("w", q)) saved[k] = v;
    EXPECT_TRUE(has_bnb_state("w", [&](const std::string& k) { return saved.count(k) > 0; }));
    const QuantizedTensor r = from_bnb_state("w", [&](const std::string& k) {
      return saved.count(k) ? saved[k] : at::Tensor();
    });
    EXPECT_EQ(r.type, q.type);
    EXPECT_EQ(r.offset, q.offset);
    EXPECT_EQ(r.shape, q.shape);
    EXPECT_TRUE(at::equal(dequantize(r, at::kFloat), dequantize(q, at::kFloat)));
  }
}

TEST(QuantFormat, ClearErrors) {
  QuantConfig config;
  config.block_size = 48;
  expect_error([&] { quantize(at::randn({4, 48}), config); }, "block size must be 32, 64, 128 or 256, got 48");
  config.block_size = 64;
  expect_error([&] { quantize(at::ones({4, 64}, at::kInt), config); }, "float32, bf16 or f16 tensors, got Int");
  expect_error([&] { quantize(at::randn({4, 64}).to(at::kDouble), config); }, "got Double");
  expect_error([&] { quantize(at::Tensor(), config); }, "empty tensor");
  config.storage = at::kLong;
  expect_error([&] { quantize(at::randn({4, 64}), config); }, "storage dtype");
  config.storage = at::kFloat;  // 3 x 3 values pack into 5 bytes: not whole float32s
  expect_error([&] { quantize(at::randn({3, 3}), config); }, "do not fill whole");
  expect_error([] { parse_quant_type("int4"); }, "unknown 4-bit type 'int4'");

  // A serialized state that does not fit its tensor.
  QuantConfig ok;
  ok.double_quant = false;
  std::map<std::string, at::Tensor> saved;
  for (const auto& [k, v] : to_bnb_state("w", quantize(at::randn({8, 64}), ok))) saved[k] = v;
  saved["w.absmax"] = saved["w.absmax"].narrow(0, 0, 4);
  expect_error([&] { from_bnb_state("w", [&](const std::string& k) { return saved.count(k) ? saved[k] : at::Tensor(); }); },
               "w.absmax has 4 values, expected 8");
  expect_error([&] { from_bnb_state("v", [&](const std::string&) { return at::Tensor(); }); },
               "no bitsandbytes quant_state");
}

}  // namespace
}  // namespace opine::quant
