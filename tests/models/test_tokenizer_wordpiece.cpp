// The encoder classifiers' tokenizers: WordPiece (models/tokenizer_wordpiece.h) and XLM-R
// (models/tokenizer_xlmr.h). Ids of every shipped text and of edge cases against Hugging Face
// `tokenizers` (tests/reference/encoder_tokenizer_reference.py): all-MiniLM-L6-v2's tokenizer.json,
// a cased BERT tokenizer as tokenizer.json and as vocab.txt alone, vocab.txt with the other
// options, and a small XLM-R SentencePiece model with and without its tokenizer.json. Tolerance:
// none, every id and every sampled decode must be equal. BertNormalizer and BertPreTokenizer are
// also checked on every code point; hand-made files cover the error paths.
#include <gtest/gtest.h>
#include <unicode/uchar.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.h"
#include "models/tokenizer.h"
#include "models/tokenizer_bpe.h"
#include "models/tokenizer_bpe_internal.h"
#include "models/tokenizer_wordpiece.h"
#include "models/tokenizer_xlmr.h"
#include "test_util.h"
#include "tokenizer_test_util.h"

namespace opine::models {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using test::ids_text;
using test::read_ids;
using test::slurp;

fs::path reference_folder() { return test::reference_dir() / "encoder_tokenizers"; }

struct Reference {
  json manifest;
  std::vector<std::string> texts;
};

const Reference* reference() {
  static const Reference* ref = []() -> const Reference* {
    const fs::path dir = reference_folder();
    if (!fs::exists(dir / "manifest.json")) return nullptr;
    auto* r = new Reference;
    r->manifest = json::parse(slurp(dir / "manifest.json"));
    r->texts = json::parse(slurp(dir / "texts.json")).at("texts").get<std::vector<std::string>>();
    return r;
  }();
  return ref;
}

// Every text: encode(text, true) against the reference ids, the frame, and encode_batch over
// threads; on the sampled texts: decode of the framed ids with and without skip_special, and
// encode(text, false). Done for every path the reference says the tokenizer loads from.
void check_parity(const std::string& name, bool bert) {
  const Reference* ref = reference();
  ASSERT_NE(ref, nullptr) << "no " << reference_folder() / "manifest.json"
                          << ": run ctest, which generates the references";
  const json* e = nullptr;
  for (const json& entry : ref->manifest.at("tokenizers"))
    if (entry.at("name") == name) e = &entry;
  if (e == nullptr)
    GTEST_SKIP() << name << ": its source (Python package or shipped tweets) was missing when the references "
                 << "were generated";
  const auto& texts = ref->texts;
  const auto want = read_ids(reference_folder() / (name + ".ids"));
  ASSERT_EQ(texts.size(), want.size());
  if (fs::exists(test::data_root() / "tweeteval")) {
    ASSERT_GT(texts.size(), 90000u);  // all of TweetEval, UMSAB, SST-2
  }
  const auto prefix = e->at("prefix").get<std::vector<int64_t>>();
  const auto suffix = e->at("suffix").get<std::vector<int64_t>>();
  ASSERT_EQ(prefix.size(), 1u);
  ASSERT_EQ(suffix.size(), 1u);

  for (const std::string& path : e->at("load").get<std::vector<std::string>>()) {
    SCOPED_TRACE(path);
    ASSERT_TRUE(fs::exists(path)) << path << " was written or found with the references";
    const auto tok = load_tokenizer(path);
    EXPECT_EQ(tok->vocab_size(), e->at("vocab_size").get<int64_t>());
    EXPECT_EQ(tok->special_around(), std::make_pair(1, 1));
    if (bert) {
      EXPECT_EQ(tok->kind(), "wordpiece");
      EXPECT_FALSE(tok->bos_id().has_value());
      EXPECT_FALSE(tok->eos_id().has_value());
      EXPECT_EQ(tok->pad_id(), tok->token_to_id("[PAD]"));
      EXPECT_EQ(tok->token_to_id("[CLS]"), prefix[0]);
      EXPECT_EQ(tok->token_to_id("[SEP]"), suffix[0]);
    } else {
      EXPECT_EQ(tok->kind(), "sentencepiece unigram (xlm-roberta)");
      EXPECT_EQ(tok->bos_id(), 0);
      EXPECT_EQ(tok->pad_id(), 1);
      EXPECT_EQ(tok->eos_id(), 2);
      EXPECT_EQ(prefix[0], 0);
      EXPECT_EQ(suffix[0], 2);
      EXPECT_EQ(tok->token_to_id("<unk>"), 3);
      EXPECT_EQ(tok->token_to_id("<mask>"), tok->vocab_size() - 1);
      EXPECT_EQ(tok->id_to_token(tok->vocab_size() - 1), "<mask>");
    }

    std::vector<std::vector<int64_t>> got(texts.size());
    size_t n_tokens = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < texts.size(); ++i) {
      got[i] = tok->encode(texts[i], true);
      n_tokens += got[i].size();
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    size_t mismatches = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
      if (got[i] == want[i]) continue;
      if (++mismatches <= 5)
        ADD_FAILURE() << name << " text " << i << " '" << texts[i] << "'\n  opine:     " << ids_text(got[i])
                      << "\n  reference: " << ids_text(want[i]);
    }
    EXPECT_EQ(mismatches, 0u) << name << ": " << mismatches << " of " << texts.size() << " texts differ";
    std::cout << "[ encoder  ] " << name << " from " << fs::path(path).filename().string() << " ("
              << tok->kind() << "): " << mismatches << " mismatches in " << texts.size() << " texts, "
              << n_tokens << " tokens, single-thread encode " << texts.size() / secs << " texts/s\n";

    size_t frame_errors = 0;
    for (const auto& ids : got)
      frame_errors += ids.size() < 2 || ids.front() != prefix[0] || ids.back() != suffix[0];
    EXPECT_EQ(frame_errors, 0u);

    const auto sample = e->at("sample").get<std::vector<size_t>>();
    const json& decode_skip = e->at("decode_skip");
    const json& decode_keep = e->at("decode_keep");
    const json& bare = e->at("bare");
    size_t decode_errors = 0, bare_errors = 0;
    for (size_t k = 0; k < sample.size(); ++k) {
      const size_t i = sample[k];
      const std::string skip = tok->decode(got[i], true), keep = tok->decode(got[i], false);
      if ((skip != decode_skip[k].get<std::string>() || keep != decode_keep[k].get<std::string>()) &&
          ++decode_errors <= 5)
        ADD_FAILURE() << name << " decode of text " << i << "\n  opine:     '" << skip << "' / '" << keep
                      << "'\n  reference: '" << decode_skip[k].get<std::string>() << "' / '"
                      << decode_keep[k].get<std::string>() << "'";
      if (tok->encode(texts[i], false) != bare[k].get<std::vector<int64_t>>() && ++bare_errors <= 3)
        ADD_FAILURE() << name << " text " << i << ": encode(text, false) differs";
    }
    EXPECT_EQ(decode_errors, 0u) << name << ": " << decode_errors << " of " << sample.size()
                                 << " decodes differ";
    EXPECT_EQ(bare_errors, 0u);

    const auto batch = tok->encode_batch(texts, true, 4);
    size_t batch_errors = 0;
    for (size_t i = 0; i < texts.size(); ++i) batch_errors += batch[i] != got[i];
    EXPECT_EQ(batch_errors, 0u) << name << ": encode_batch differs from encode";
  }
}

TEST(WordPieceRealDataParity, MiniLmTokenizerJson) { check_parity("minilm", true); }
TEST(WordPieceRealDataParity, CasedFromTokenizerJsonAndFromVocabTxt) { check_parity("bert_cased", true); }
TEST(WordPieceRealDataParity, VocabTxtStripAccentsNoChineseSplit) { check_parity("bert_options", true); }
TEST(XlmrRealDataParity, TinyModelWithAndWithoutTokenizerJson) { check_parity("xlmr_tiny", false); }

// ---- BertNormalizer and BertPreTokenizer on every code point --------------------------------

std::string utf8(char32_t cp) {
  std::string s;
  bpe::utf8_append(s, cp);
  return s;
}

// Unicode version ICU assigns `cp` in (0.0: unassigned there).
bool icu_assigns(char32_t cp) {
  UVersionInfo age;
  u_charAge(static_cast<UChar32>(cp), age);
  return age[0] != 0 || age[1] != 0;
}

// Each option alone, on every scalar value. Tolerated, and counted: lowercase of characters the
// linked ICU does not assign yet (the library lowercases with Rust's newer Unicode tables).
TEST(WordPieceNormalizerParity, EveryCodePointEachOption) {
  const fs::path path = reference_folder() / "bert_normalizer.json";
  ASSERT_TRUE(fs::exists(path)) << path << ": run ctest, which generates the references";
  const json ref = json::parse(slurp(path));
  for (const char* key : {"clean_text", "handle_chinese_chars", "strip_accents", "lowercase"}) {
    BertNormalizerOptions options;
    options.clean_text = std::string(key) == "clean_text";
    options.handle_chinese_chars = std::string(key) == "handle_chinese_chars";
    options.strip_accents = std::string(key) == "strip_accents";
    options.lowercase = std::string(key) == "lowercase";
    const json& changed = ref.at(key);
    size_t mismatches = 0, tolerated = 0;
    for (char32_t cp = 0; cp < 0x110000; ++cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      const std::string in = utf8(cp);
      const auto it = changed.find(std::to_string(cp));
      const std::string want = it != changed.end() ? it->get<std::string>() : in;
      const std::string got = bert_normalize(in, options);
      if (got == want) continue;
      if (options.lowercase && !icu_assigns(cp)) {
        ++tolerated;
        continue;
      }
      if (++mismatches <= 5)
        ADD_FAILURE() << key << ": U+" << std::hex << static_cast<uint32_t>(cp) << std::dec << " gives '"
                      << got << "', the library '" << want << "'";
    }
    EXPECT_EQ(mismatches, 0u) << key;
    std::cout << "[ bert     ] " << key << ": " << mismatches << " mismatches, " << tolerated
              << " tolerated (unassigned in ICU " << U_UNICODE_VERSION << ")\n";
  }
}

TEST(WordPieceNormalizerParity, PunctuationAndWhitespaceOnEveryCodePoint) {
  const fs::path path = reference_folder() / "bert_normalizer.json";
  ASSERT_TRUE(fs::exists(path)) << path << ": run ctest, which generates the references";
  const json ref = json::parse(slurp(path));
  const auto punct = ref.at("punctuation").get<std::set<uint32_t>>();
  const auto space = ref.at("whitespace").get<std::set<uint32_t>>();
  size_t mismatches = 0;
  for (char32_t cp = 0; cp < 0x110000; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    const bool p = is_bert_punctuation(cp), w = bpe::is_unicode_whitespace(cp);
    if ((p != (punct.count(cp) > 0) || w != (space.count(cp) > 0)) && ++mismatches <= 5)
      ADD_FAILURE() << "U+" << std::hex << static_cast<uint32_t>(cp) << ": punctuation " << p
                    << ", whitespace " << w;
  }
  EXPECT_EQ(mismatches, 0u);
}

// ---- Hand-made files: semantics and errors ---------------------------------------------------

// Runs `f`, which must throw opine::Error of `kind` whose message contains every string in `parts`.
template <typename F>
void expect_error(F&& f, ErrorKind kind, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    for (const std::string& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << "'" << p << "' not in: " << e.what();
  }
}

class WordPieceTokenizer : public test::TempDirTest {
 protected:
  fs::path write(const std::string& name, const std::string& content) {
    fs::create_directories(dir_);
    std::ofstream(dir_ / name, std::ios::binary) << content;
    return dir_ / name;
  }
  // A small vocabulary: specials, words, continuations.
  fs::path write_vocab() {
    return write("vocab.txt",
                 "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nun\n##aff\n##able\nhello\nworld\n!\n,\n.\n##s\na\n");
  }
  // A tokenizer.json over the same vocabulary, with `patch` merged into it.
  fs::path write_json(const json& patch) {
    json j = {{"version", "1.0"},
              {"added_tokens", json::array()},
              {"normalizer", {{"type", "BertNormalizer"}, {"lowercase", true}}},
              {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
              {"post_processor",
               {{"type", "BertProcessing"},
                {"sep", json::array({"[SEP]", 3})},
                {"cls", json::array({"[CLS]", 2})}}},
              {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}},
              {"model",
               {{"type", "WordPiece"},
                {"unk_token", "[UNK]"},
                {"continuing_subword_prefix", "##"},
                {"max_input_chars_per_word", 10},
                {"vocab",
                 {{"[PAD]", 0},
                  {"[UNK]", 1},
                  {"[CLS]", 2},
                  {"[SEP]", 3},
                  {"[MASK]", 4},
                  {"un", 5},
                  {"##aff", 6},
                  {"##able", 7},
                  {"hello", 8},
                  {"world", 9},
                  {"!", 10}}}}}};
    for (const std::string s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"})
      j["added_tokens"].push_back({{"id", j["model"]["vocab"][s]},
                                   {"content", s},
                                   {"special", true},
                                   {"normalized", false},
                                   {"lstrip", false},
                                   {"rstrip", false},
                                   {"single_word", false}});
    if (patch.is_object()) j.merge_patch(patch);
    return write("tokenizer.json", j.dump());
  }
};

TEST_F(WordPieceTokenizer, GreedyLongestMatchFirstAndItsFrame) {
  const auto tok = load_tokenizer(write_vocab().parent_path().string());
  EXPECT_EQ(tok->kind(), "wordpiece");
  // "unaffable" -> un ##aff ##able; a word it cannot spell is [UNK] as a whole; [MASK] in the text
  // is the mask token; punctuation is a word of its own.
  const auto ids = tok->encode("UnAffable hellos, xyz [MASK]!", true);
  const std::vector<int64_t> want = {2, 5, 6, 7, 8, 13, 11, 1, 4, 10, 3};
  EXPECT_EQ(ids, want) << ids_text(ids);
  // [UNK] and [MASK] are special tokens, so skipped; the decoder's cleanup joins " !".
  EXPECT_EQ(tok->decode(ids, true), "unaffable hellos,!");
  EXPECT_EQ(tok->decode(ids, false), "[CLS] unaffable hellos, [UNK] [MASK]! [SEP]");
  EXPECT_EQ(tok->encode("", true), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(tok->special_around(), std::make_pair(1, 1));
  EXPECT_FALSE(tok->bos_id().has_value());
  EXPECT_FALSE(tok->eos_id().has_value());
  EXPECT_EQ(tok->pad_id(), 0);
}

TEST_F(WordPieceTokenizer, TokenizerJsonWordsOverTheLimitAreUnknown) {
  const auto tok = load_tokenizer(write_json(json::object()).string());
  EXPECT_EQ(tok->kind(), "wordpiece");
  // max_input_chars_per_word 10: "unaffable" (9) splits, "unaffableun" (11) is [UNK].
  EXPECT_EQ(tok->encode("unaffable unaffableun", false), (std::vector<int64_t>{5, 6, 7, 1}));
  EXPECT_EQ(tok->encode("hello", true), (std::vector<int64_t>{2, 8, 3}));
}

TEST_F(WordPieceTokenizer, InvalidUtf8IsAnErrorWithItsOffset) {
  const auto tok = load_tokenizer(write_vocab().string());
  expect_error([&] { tok->encode("ab\xC3", true); }, ErrorKind::kUser, {"byte 2"});
}

TEST_F(WordPieceTokenizer, MissingFilesNameThePath) {
  fs::create_directories(dir_);
  expect_error([&] { load_tokenizer(dir_.string()); }, ErrorKind::kIo, {dir_.string(), "vocab.txt"});
  expect_error([&] { load_wordpiece_vocab((dir_ / "vocab.txt").string()); }, ErrorKind::kIo,
               {(dir_ / "vocab.txt").string()});
  const auto vocab = write("vocab.txt", "[PAD]\nhello\n");
  expect_error([&] { load_tokenizer(vocab.string()); }, ErrorKind::kFormat, {vocab.string(), "[UNK]"});
}

TEST_F(WordPieceTokenizer, UnsupportedComponentsNameThemAndTheFile) {
  struct Case {
    json patch;
    std::string component;
  };
  const std::vector<Case> cases = {
      {{{"normalizer", {{"type", "Lowercase"}}}}, "normalizer 'Lowercase'"},
      {{{"pre_tokenizer", {{"type", "Whitespace"}}}}, "pre_tokenizer 'Whitespace'"},
      {{{"decoder", {{"type", "BPEDecoder"}}}}, "decoder 'BPEDecoder'"},
      {{{"post_processor", {{"type", "Weird"}}}}, "post_processor 'Weird'"},
      {{{"model", {{"type", "WordLevel"}}}}, "model 'WordLevel'"},
  };
  for (const Case& c : cases) {
    const auto path = write_json(c.patch);
    expect_error([&] { load_tokenizer(path.string()); }, ErrorKind::kFormat, {path.string(), c.component});
  }
  const auto path = write_json({{"model", {{"unk_token", "[NOPE]"}}}});
  expect_error([&] { load_tokenizer(path.string()); }, ErrorKind::kFormat, {path.string(), "[NOPE]"});
}

TEST_F(WordPieceTokenizer, UnigramTokenizerJsonNeedsXlmrSentencePieceModel) {
  const auto path = write_json({{"model", {{"type", "Unigram"}, {"vocab", json::array()}}}});
  expect_error([&] { load_tokenizer(dir_.string()); }, ErrorKind::kFormat,
               {path.string(), "sentencepiece.bpe.model"});
}

TEST_F(WordPieceTokenizer, MalformedSentencePieceModelIsAFormatError) {
  const auto path = write("sentencepiece.bpe.model", "not a protobuf");
  expect_error([&] { load_tokenizer(dir_.string()); }, ErrorKind::kFormat, {path.string()});
}

// The generated tiny XLM-R folder: fairseq's ids around SentencePiece's, specials written in the
// text, and a tokenizer.json whose pieces are not the model's.
TEST(XlmrRealData, SpecialTokensIdsAndMismatchedTokenizerJson) {
  const fs::path folder = reference_folder() / "xlmr_tiny";
  if (!fs::exists(folder / "sentencepiece.bpe.model"))
    GTEST_SKIP() << folder << " missing: run ctest (the reference needs the shipped UMSAB tweets)";
  const auto tok = load_tokenizer(folder.string());
  const int64_t mask = tok->vocab_size() - 1;
  const auto ids = tok->encode("a <mask> b</s><pad>", true);
  ASSERT_GE(ids.size(), 6u);
  EXPECT_EQ(ids.front(), 0);
  EXPECT_EQ(ids.back(), 2);
  EXPECT_NE(std::find(ids.begin(), ids.end(), mask), ids.end()) << ids_text(ids);
  EXPECT_EQ(ids[ids.size() - 3], 2) << ids_text(ids);
  EXPECT_EQ(ids[ids.size() - 2], 1) << ids_text(ids);
  EXPECT_EQ(tok->decode(ids, true), "a b");
  // A tokenizer.json beside the model must list the model's pieces.
  const auto scratch = fs::temp_directory_path() / ("opine_xlmr_" + std::to_string(::getpid()));
  fs::create_directories(scratch);
  fs::copy_file(folder / "sentencepiece.bpe.model", scratch / "sentencepiece.bpe.model");
  json j = json::parse(slurp(folder / "tokenizer.json"));
  j["model"]["vocab"][10][0] = "not-the-piece";
  std::ofstream(scratch / "tokenizer.json") << j.dump();
  expect_error([&] { load_tokenizer(scratch.string()); }, ErrorKind::kFormat,
               {(scratch / "tokenizer.json").string(), "not-the-piece"});
  fs::remove_all(scratch);
}

}  // namespace
}  // namespace opine::models
