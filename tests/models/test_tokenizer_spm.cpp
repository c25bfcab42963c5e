// SentencePiece: Llama-2's real tokenizer.model against the sentencepiece library, on every
// text of the shipped data (tests/reference/spm_reference.py, the Python library), and opine's
// merge against the C++ library's own encoder on the texts where they could part.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/tokenizer.h"
#include "models/tokenizer_spm.h"
#include "test_util.h"

namespace opine::models {
namespace {

TEST(SpmRealDataParity, EveryShippedTextMatchesTheLibrary) {
  const auto model = test::data_root() / "tokenizers/llama2-spm-llama2.c/tokenizer.model";
  OPINE_REQUIRE_FILE(model);
  std::ifstream in(test::reference_dir() / "spm" / "llama2_spm.json");
  ASSERT_TRUE(in.good()) << "run ctest, which generates the references";
  const auto ref = nlohmann::json::parse(in);
  const auto texts = ref.at("texts").get<std::vector<std::string>>();
  ASSERT_GT(texts.size(), 90000u);  // all of TweetEval, UMSAB, SST-2
  auto tok = load_tokenizer(model.string());
  EXPECT_EQ(tok->kind(), "sentencepiece (bpe, opine's merge)");
  EXPECT_EQ(tok->vocab_size(), 32000);
  const auto got = tok->encode_batch(texts);
  size_t mismatches = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto want = ref.at("ids").at(i).get<std::vector<int64_t>>();
    if (got[i] != want && ++mismatches <= 5) ADD_FAILURE() << "text " << i << ": '" << texts[i] << "'";
    const std::vector<int64_t> body(got[i].begin() + 1, got[i].end());
    if (tok->decode(body) != ref.at("decoded").at(i).get<std::string>() && ++mismatches <= 5)
      ADD_FAILURE() << "decode of text " << i;
  }
  EXPECT_EQ(mismatches, 0u);
}

// Exact: both give ids. These are the places where opine's merge and the library could part: the
// space handling, text that spells control or byte pieces, characters outside the vocabulary
// (byte fallback), runs of ▁, words past the cache's length limit, cache hits, threads.
TEST(SpmRealData, MergeEqualsTheLibraryOnEdgeCases) {
  const auto model = test::data_root() / "tokenizers/llama2-spm-llama2.c/tokenizer.model";
  OPINE_REQUIRE_FILE(model);
  const SentencePieceTokenizer ours(model.string());
  const SentencePieceTokenizer library(model.string(), true, false, /*library_encoder=*/true);
  ASSERT_EQ(ours.kind(), "sentencepiece (bpe, opine's merge)");
  ASSERT_EQ(library.kind(), "sentencepiece");
  const std::vector<std::string> texts = {
      "", " ", "   ", "a", " leading", "trailing ", "two  spaces   three", "tab\tand\nnewline\r\n",
      "<s> </s> <unk> <0x0A> <0x41>", "▁ already ▁▁ metas ▁x▁", "x▁▁y ▁▁▁", "emoji 🤖🧑‍🤝‍🧑 done",
      "𠀋𠀋 rare 𪚥 chars ᚠᛇᚻ", "العربية Ελληνικά हिन्दी 日本語", "don't stop #hashtag @user http://t.co/x",
      std::string(300, 'a') + " " + std::string(200, 'z'), "repeat repeat repeat repeat",
      "Hello world", "Hello world", "\xC2\xA0nbsp\xE3\x80\x80ideographic space", std::string("nul\0byte", 8)};
  for (const std::string& text : texts) {
    EXPECT_EQ(ours.encode(text, true), library.encode(text, true)) << "'" << text << "'";
    EXPECT_EQ(ours.encode(text, false), library.encode(text, false)) << "'" << text << "'";
  }
  EXPECT_EQ(ours.encode_batch(texts, true, 2), library.encode_batch(texts, true, 1));
}

// A model that is not BPE with byte fallback (here a Unigram one) stays with the library. The
// model is the tiny XLM-R stand-in tests/reference/encoder_tokenizer_reference.py trains on the
// UMSAB tweets, so it needs the data.
TEST(SpmRealData, OtherModelsUseTheLibrary) {
  OPINE_REQUIRE_FILE(test::data_root() / "xlm-t-umsab-sentiment/data/sentiment");
  const auto model = test::reference_dir() / "encoder_tokenizers/xlmr_tiny_spm/sentencepiece.bpe.model";
  ASSERT_TRUE(std::filesystem::exists(model)) << "run ctest, which generates the references";
  const SentencePieceTokenizer tok(model.string());
  EXPECT_EQ(tok.kind(), "sentencepiece");
  const SentencePieceTokenizer library(model.string(), true, false, /*library_encoder=*/true);
  EXPECT_EQ(tok.encode("a small test", true), library.encode("a small test", true));
}

TEST(SpmRealData, SpecialTokensDecodeUnlessSkipped) {
  const auto model = test::data_root() / "tokenizers/llama2-spm-llama2.c/tokenizer.model";
  OPINE_REQUIRE_FILE(model);
  SentencePieceTokenizer tok(model.string());
  const auto ids = tok.encode("Hello world", true);
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(tok.decode(ids, /*skip_special=*/true), "Hello world");
  EXPECT_EQ(tok.decode(ids, /*skip_special=*/false), "<s>Hello world");
  EXPECT_EQ(tok.token_to_id("▁Hello"), 15043);
  EXPECT_FALSE(tok.token_to_id("not-a-piece-xyz").has_value());
}

TEST(SpmRealData, StreamingHoldsBackPartialCharacters) {
  const auto model = test::data_root() / "tokenizers/llama2-spm-llama2.c/tokenizer.model";
  OPINE_REQUIRE_FILE(model);
  SentencePieceTokenizer tok(model.string());
  const std::string text = "Snow ❄ 雪 day";
  const auto ids = tok.encode(text, false);
  StreamDecoder stream(tok);
  std::string joined;
  for (int64_t id : ids) {
    const std::string piece = stream.push(id);
    check_utf8(piece);  // never half a character
    joined += piece;
  }
  joined += stream.finish();
  EXPECT_EQ(joined, text);
  // After a context token the leading space of the first streamed token is kept.
  const auto more = tok.encode("Hello there", false);
  StreamDecoder after(tok, {more[0]});
  EXPECT_EQ(after.push(more[1]), " there");
}

TEST(Tokenizer, InvalidUtf8IsAnErrorWithItsOffset) {
  EXPECT_NO_THROW(check_utf8("plain ascii é 雪 😀"));
  for (const std::string& bad : {std::string("ab\xC3"), std::string("ab\x80"), std::string("ab\xED\xA0\x80"),
                                std::string("ab\xC0\xAF"), std::string("ab\xF4\x90\x80\x80")}) {
    try {
      check_utf8(bad);
      ADD_FAILURE() << "accepted invalid UTF-8";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("byte 2"), std::string::npos) << e.what();
    }
  }
}

TEST(Tokenizer, MalformedSentencePieceModelIsAFormatError) {
  const auto path = std::filesystem::temp_directory_path() / ("opine_bad_" + std::to_string(::getpid()) + ".model");
  std::ofstream(path) << "this is not a protobuf";
  try {
    SentencePieceTokenizer tok(path.string());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kFormat);
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace opine::models
