// llama2.c's tokenizer with the real stories260K model: the published greedy sample, round trips
// and byte fallback.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "models/generate.h"
#include "models/loader.h"
#include "models/tokenizer_llama2c.h"
#include "test_util.h"

namespace opine::models {
namespace {

namespace fs = std::filesystem;

fs::path stories_dir() { return test::data_root() / "models/stories260K-llama2.c/data"; }

TEST(StoriesRealData, GreedySampleIsTheOnePublishedByLlama2c) {
  OPINE_REQUIRE_FILE(stories_dir() / "stories260K.bin");
  LlamaModel model = load_model((stories_dir() / "stories260K.bin").string());
  Llama2cTokenizer tok((stories_dir() / "tok512.bin").string(), model.config().vocab_size);
  GenerateOptions greedy;
  greedy.max_new_tokens = 40;
  const std::string text = tok.decode(generate(model, {Llama2cTokenizer::kBos}, greedy));
  // llama2.c's doc/stories260K.md quotes run.c's greedy output (temperature 0) from BOS.
  const std::string published =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
  EXPECT_EQ(text.substr(0, published.size()), published) << text;
}

TEST(StoriesRealData, SamplingIsSeededAndReproducible) {
  OPINE_REQUIRE_FILE(stories_dir() / "stories260K.bin");
  LlamaModel model = load_model((stories_dir() / "stories260K.bin").string());
  GenerateOptions o;
  o.max_new_tokens = 30;
  o.temperature = 1.0;
  o.top_k = 40;
  o.top_p = 0.9;
  o.seed = 3;
  const auto a = generate(model, {1}, o), b = generate(model, {1}, o);
  EXPECT_EQ(a, b);
  o.seed = 4;
  EXPECT_NE(generate(model, {1}, o), a);
}

TEST(StoriesRealData, EncodeDecodeRoundTripWithByteFallback) {
  OPINE_REQUIRE_FILE(stories_dir() / "tok512.bin");
  Llama2cTokenizer tok((stories_dir() / "tok512.bin").string(), 512);
  const std::string text = "Once upon a time, Lily saw a big red ball.";
  const auto ids = tok.encode(text, true);
  EXPECT_EQ(ids.front(), Llama2cTokenizer::kBos);
  EXPECT_LT(ids.size(), text.size() / 2);  // merges happened
  // After BOS the dummy-prefix space is dropped again, as run.c decodes.
  EXPECT_EQ(tok.decode(std::vector<int64_t>(ids.begin() + 1, ids.end())), text);
  // A character outside the 512-piece vocabulary falls back to its UTF-8 bytes (ids 3 + byte).
  const auto cat = tok.encode("猫", false);
  EXPECT_EQ(std::vector<int64_t>(cat.end() - 3, cat.end()),
            (std::vector<int64_t>{0xE7 + 3, 0x8C + 3, 0xAB + 3}));
  EXPECT_EQ(tok.decode(cat), "猫");
}

TEST(Llama2cTokenizerErrors, TruncatedFileIsAFormatError) {
  const fs::path src = stories_dir() / "tok512.bin";
  OPINE_REQUIRE_FILE(src);
  const fs::path cut = fs::temp_directory_path() / ("opine_tok_cut_" + std::to_string(::getpid()) + ".bin");
  fs::copy_file(src, cut, fs::copy_options::overwrite_existing);
  fs::resize_file(cut, 1000);
  try {
    Llama2cTokenizer tok(cut.string(), 512);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kFormat);
    EXPECT_NE(std::string(e.what()).find(cut.string()), std::string::npos) << e.what();
  }
  fs::remove(cut);
}

}  // namespace
}  // namespace opine::models
