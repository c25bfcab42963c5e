// The tiny-model parity on CUDA in bfloat16 (label `gpu`; skipped on machines without a GPU).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "models/loader.h"
#include "test_util.h"

namespace opine::models {
namespace {

class LlamaGpu : public ::testing::TestWithParam<std::string> {};

TEST_P(LlamaGpu, Bf16LogprobsMatchTransformers) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const auto folder = test::reference_dir() / "tiny" / GetParam();
  std::ifstream in(folder / "reference.json");
  ASSERT_TRUE(in.good()) << folder;
  const auto ref = nlohmann::json::parse(in);
  LoadOptions options;
  options.dtype = at::kBFloat16;
  options.device = at::Device(at::kCUDA, 0);
  LlamaModel model = load_model(folder.string(), options);
  const auto seqs = ref.at("sequences").get<std::vector<std::vector<int64_t>>>();
  for (size_t i = 0; i < seqs.size(); ++i) {
    at::Tensor lp = token_logprobs(model, at::tensor(seqs[i], at::kLong).unsqueeze(0)).to(at::kCPU);
    const auto want = ref.at("logprobs_bf16").at(i).get<std::vector<double>>();
    // bf16 (8-bit mantissa) and different kernels on the GPU: as the CPU bf16 tolerance.
    for (size_t j = 0; j < want.size(); ++j) EXPECT_NEAR(lp[0][j].item<double>(), want[j], 0.08) << i << "," << j;
  }
}

INSTANTIATE_TEST_SUITE_P(Tiny, LlamaGpu,
                         ::testing::Values("llama_gqa_untied", "llama_mha_tied_bias", "qwen2_gqa_tied",
                                           "mistral_window"));

}  // namespace
}  // namespace opine::models
