// BPE tokenizers (models/tokenizer_bpe.h): ids of every shipped text against Hugging Face
// tokenizers / transformers (tests/reference/tokenizer_reference.py), llama.cpp's own tokenizer
// test cases for its vocabulary GGUFs, and hand-made files for the error paths and semantics.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "models/gguf.h"
#include "models/tokenizer.h"
#include "models/tokenizer_bpe.h"
#include "test_util.h"
#include "tokenizer_test_util.h"

namespace opine::models {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using test::ids_text;
using test::read_ids;
using test::slurp;

// A scratch folder removed at the end of the test.
class TempDir {
 public:
  TempDir()
      : path_(fs::temp_directory_path() /
              ("opine_bpe_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++))) {
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path write(const std::string& name, const std::string& content) const {
    std::ofstream(path_ / name, std::ios::binary) << content;
    return path_ / name;
  }
  const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

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

// ---- Reference data (tests/reference/tokenizer_reference.py) -----------------------------------

struct Reference {
  json manifest;
  std::vector<std::string> texts;
};

const Reference* reference() {
  static const Reference* ref = []() -> const Reference* {
    const fs::path dir = test::reference_dir() / "tokenizers";
    if (!fs::exists(dir / "manifest.json")) return nullptr;
    auto* r = new Reference;
    r->manifest = json::parse(slurp(dir / "manifest.json"));
    r->texts = json::parse(slurp(dir / "texts.json")).at("texts").get<std::vector<std::string>>();
    return r;
  }();
  return ref;
}

const json* entry(const std::string& name) {
  const Reference* ref = reference();
  if (!ref) return nullptr;
  for (const json& e : ref->manifest.at("tokenizers"))
    if (e.at("name") == name) return &e;
  return nullptr;
}

std::unique_ptr<Tokenizer> load_entry(const json& e) {
  const auto files = e.at("files").get<std::vector<std::string>>();
  const std::string loader = e.at("loader");
  if (loader == "hf_json") return load_hf_tokenizer_json(files.at(0));
  if (loader == "vocab_merges") return load_vocab_merges(files.at(0), files.at(1));
  if (loader == "gguf") return load_gguf_tokenizer(gguf::File::open(files.at(0)));
  throw std::runtime_error("unknown loader " + loader);
}

// Every text of the entry: the ids of encode(text, true) and the round trip through decode of the
// ids inside the add_special frame; on the sampled texts encode(text, false) and
// decode(skip_special); encode_batch over threads against encode; the single-thread throughput,
// printed.
void check_parity(const std::string& name) {
  const Reference* ref = reference();
  ASSERT_NE(ref, nullptr) << "no " << test::reference_dir() / "tokenizers/manifest.json"
                          << ": run ctest, which generates the references";
  const json* e = entry(name);
  if (e == nullptr)
    GTEST_SKIP() << name << ": its source files were missing when the references were generated";
  for (const std::string& f : e->at("files").get<std::vector<std::string>>()) {
    if (e->value("generated", false)) {
      ASSERT_TRUE(fs::exists(f)) << f << " was written with the references";
    }
    OPINE_REQUIRE_FILE(f);
  }
  const auto want = read_ids(test::reference_dir() / "tokenizers" / (name + ".ids"));
  std::vector<std::string> texts;
  if (e->at("indices").is_null()) {
    texts = ref->texts;
  } else {
    for (int64_t i : e->at("indices")) texts.push_back(ref->texts.at(i));
  }
  ASSERT_EQ(texts.size(), want.size());
  // All of TweetEval, UMSAB, SST-2 when the data root is there; without it only the tricky strings
  // (SmolLM2's GGUF comes from the Python environment, so its reference exists either way).
  if (e->at("indices").is_null() && fs::exists(test::data_root() / "tweeteval")) {
    ASSERT_GT(texts.size(), 90000u);
  }

  const auto t_load = std::chrono::steady_clock::now();
  const auto tok = load_entry(*e);
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
  EXPECT_EQ(tok->vocab_size(), e->at("vocab_size").get<int64_t>());
  const auto prefix = e->at("prefix").get<std::vector<int64_t>>();
  const auto suffix = e->at("suffix").get<std::vector<int64_t>>();

  // Single thread, timed: the figure an encode_batch thread achieves.
  std::vector<std::vector<int64_t>> got(texts.size());
  size_t n_tokens = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < texts.size(); ++i) {
    got[i] = tok->encode(texts[i], true);
    n_tokens += got[i].size();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "[ bpe      ] " << name << " (" << tok->kind() << "): " << texts.size() << " texts, "
            << n_tokens << " tokens, loaded in " << load_s << " s, single-thread encode "
            << texts.size() / secs << " texts/s (" << n_tokens / secs / 1e6 << " M tokens/s)\n";

  size_t mismatches = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (got[i] == want[i]) continue;
    if (++mismatches <= 5)
      ADD_FAILURE() << name << " text " << i << " '" << texts[i] << "'\n  opine:      " << ids_text(got[i])
                    << "\n  reference:  " << ids_text(want[i]);
  }
  EXPECT_EQ(mismatches, 0u) << name << ": " << mismatches << " of " << texts.size() << " texts differ";
  std::cout << "[ bpe      ] " << name << ": " << mismatches << " mismatches in " << texts.size()
            << " texts\n";

  // The round trip through decode, on the ids inside the frame; add_special=false gives exactly
  // those (checked on the sampled texts).
  size_t frame_errors = 0, decode_errors = 0;
  const json& decode_ref = e->at("decode");
  for (size_t i = 0; i < texts.size(); ++i) {
    const size_t n = got[i].size();
    if (n < prefix.size() + suffix.size() || !std::equal(prefix.begin(), prefix.end(), got[i].begin()) ||
        !std::equal(suffix.begin(), suffix.end(), got[i].end() - suffix.size())) {
      if (++frame_errors <= 3)
        ADD_FAILURE() << name << " text " << i << ": the ids lack the add_special frame";
      continue;
    }
    const std::vector<int64_t> bare(got[i].begin() + prefix.size(), got[i].end() - suffix.size());
    const std::string key = std::to_string(i);
    const std::string expected = decode_ref.contains(key) ? decode_ref[key].get<std::string>() : texts[i];
    const std::string decoded = tok->decode(bare, false);
    if (decoded != expected && ++decode_errors <= 5)
      ADD_FAILURE() << name << " decode of text " << i << ":\n  opine:     '" << decoded
                    << "'\n  reference: '" << expected << "'";
  }
  ASSERT_EQ(frame_errors, 0u);
  EXPECT_EQ(decode_errors, 0u) << name << ": " << decode_errors << " decodes differ";
  size_t bare_errors = 0;
  for (int64_t i : e->at("decode_skip_sample")) {
    const std::vector<int64_t> bare(got[i].begin() + prefix.size(), got[i].end() - suffix.size());
    if (tok->encode(texts[i], false) != bare && ++bare_errors <= 3)
      ADD_FAILURE() << name << " text " << i << ": add_special=false is not the inside of the frame";
  }
  EXPECT_EQ(bare_errors, 0u);
  size_t lossless = texts.size() - decode_ref.size();
  std::cout << "[ bpe      ] " << name << ": decode(encode(x)) == x for " << lossless
            << " texts, the library's own "
            << "decode for the other " << decode_ref.size() << "; " << decode_errors
            << " decode mismatches\n";

  size_t skip_errors = 0;
  const json& skip_ref = e->at("decode_skip");
  for (int64_t i : e->at("decode_skip_sample")) {
    const std::string key = std::to_string(i);
    const std::string expected = skip_ref.contains(key) ? skip_ref[key].get<std::string>() : texts[i];
    const std::string decoded = tok->decode(got[i], true);
    if (decoded != expected && ++skip_errors <= 5)
      ADD_FAILURE() << name << " decode(skip_special) of text " << i << ":\n  opine:     '" << decoded
                    << "'\n  reference: '" << expected << "'";
  }
  EXPECT_EQ(skip_errors, 0u);

  // Many threads share the word cache and the regex state: same ids as one thread.
  const auto batch = tok->encode_batch(texts, true, 4);
  size_t batch_errors = 0;
  for (size_t i = 0; i < texts.size(); ++i) batch_errors += batch[i] != got[i];
  EXPECT_EQ(batch_errors, 0u) << name << ": encode_batch differs from encode";
}

TEST(BpeParity, Llama2TokenizerJson) { check_parity("llama2"); }
TEST(BpeParity, Phi3TokenizerJson) { check_parity("phi3"); }
TEST(BpeParity, Qwen2VocabMerges) { check_parity("qwen2"); }
TEST(BpeParity, Gpt2VocabMerges) { check_parity("gpt2"); }
TEST(BpeParity, SmolLM2Gguf) { check_parity("smollm2"); }
TEST(BpeParity, SyntheticMetaspaceFirst) { check_parity("llama2_metaspace_first"); }
TEST(BpeParity, SyntheticMetaspaceAlwaysNfkc) { check_parity("llama2_metaspace_always_nfkc"); }
TEST(BpeParity, SyntheticDigitsLlama3Split) { check_parity("gpt2_digits_llama3_split"); }
TEST(BpeParity, SyntheticSplitBehaviours) { check_parity("gpt2_split_behaviours"); }

// RoBERTa's post-processor frames a text as <s> ... </s> (here <|endoftext|> on both sides), so
// truncation keeps both ends; a decoder's TemplateProcessing that adds BOS/EOS is left alone.
TEST(BpeParity, RobertaProcessingFramesTheText) {
  const json* roberta = entry("gpt2_split_behaviours");
  const json* template_processing = entry("gpt2_digits_llama3_split");
  if (!roberta || !template_processing) GTEST_SKIP() << "no reference tokenizers";
  EXPECT_EQ(load_entry(*roberta)->special_around(), std::make_pair(1, 1));
  EXPECT_EQ(load_entry(*template_processing)->special_around(), std::make_pair(0, 0));
}

// ---- llama.cpp's test cases for its vocabulary GGUFs -------------------------------------------

// test-tokenizer-0's format: inputs separated by a "\n__ggml_vocab_test__\n" line, one output line
// of space-separated ids per input (tokenized without BOS/EOS).
void check_llama_cpp_cases(const std::string& vocab) {
  const fs::path base = test::data_root() / "tokenizers/llama.cpp-vocab/models" / vocab;
  OPINE_REQUIRE_FILE(base);
  const std::string inp = slurp(base.string() + ".inp");
  std::vector<std::string> inputs;
  const std::string sep = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0; pos < inp.size();) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) {
      inputs.push_back(inp.substr(pos));
      break;
    }
    inputs.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<std::vector<int64_t>> outputs;
  std::ifstream out(base.string() + ".out");
  for (std::string line; std::getline(out, line);) {
    std::istringstream s(line);
    std::vector<int64_t> ids;
    for (int64_t id; s >> id;) ids.push_back(id);
    outputs.push_back(ids);
  }
  ASSERT_EQ(inputs.size(), outputs.size());
  ASSERT_GT(inputs.size(), 30u);
  const auto tok = load_gguf_tokenizer(gguf::File::open(base.string()));
  size_t failures = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto got = tok->encode(inputs[i], false);
    if (got != outputs[i] && ++failures <= 5)
      ADD_FAILURE() << vocab << " case " << i << " '" << inputs[i] << "'\n  opine:    " << ids_text(got)
                    << "\n  llama.cpp: " << ids_text(outputs[i]);
  }
  EXPECT_EQ(failures, 0u) << failures << " of " << inputs.size() << " cases differ";
  std::cout << "[ bpe      ] " << vocab << " (" << tok->kind() << "): " << inputs.size() - failures << "/"
            << inputs.size() << " llama.cpp cases\n";
}

TEST(BpeRealData, LlamaCppGpt2Cases) { check_llama_cpp_cases("ggml-vocab-gpt-2.gguf"); }
TEST(BpeRealData, LlamaCppPhi3Cases) { check_llama_cpp_cases("ggml-vocab-phi-3.gguf"); }
TEST(BpeRealData, LlamaCppLlamaSpmCases) { check_llama_cpp_cases("ggml-vocab-llama-spm.gguf"); }

TEST(BpeRealData, Gpt2SpecialsStreamingAndLookups) {
  const fs::path dir = test::data_root() / "tokenizers/onnxruntime-extensions/test/data";
  OPINE_REQUIRE_FILE(dir / "gpt2.vocab");
  const auto tok = load_vocab_merges((dir / "gpt2.vocab").string(), (dir / "gpt2.merges.txt").string());
  EXPECT_EQ(tok->encode("Hello world"), (std::vector<int64_t>{15496, 995}));
  EXPECT_EQ(tok->encode(" Hello world"), (std::vector<int64_t>{18435, 995}));
  EXPECT_EQ(tok->token_to_id("<|endoftext|>"), 50256);
  EXPECT_EQ(tok->eos_id(), 50256);
  EXPECT_EQ(tok->id_to_token(995), "\xC4\xA0world");  // "Ġworld"
  const auto ids = tok->encode("a<|endoftext|>b");
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], 50256);
  EXPECT_EQ(tok->decode(ids, true), "ab");
  EXPECT_EQ(tok->decode(ids, false), "a<|endoftext|>b");

  const std::string text = "Snow \xE2\x9D\x84 \xE9\x9B\xAA day \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9";
  StreamDecoder stream(*tok);
  std::string joined;
  for (int64_t id : tok->encode(text)) {
    const std::string piece = stream.push(id);
    check_utf8(piece);  // never half a character
    joined += piece;
  }
  joined += stream.finish();
  EXPECT_EQ(joined, text);
}

TEST(BpeRealData, LoadTokenizerFindsEachFormat) {
  const fs::path qwen = test::data_root() / "tokenizers/qwen2-1.5b-instruct";
  OPINE_REQUIRE_FILE(qwen / "vocab.json");
  const auto q = load_tokenizer(qwen.string());
  EXPECT_NE(q->kind().find("qwen2"), std::string::npos) << q->kind();
  EXPECT_EQ(q->token_to_id("<|im_start|>"), 151644);
  EXPECT_EQ(q->eos_id(), 151645);
  EXPECT_EQ(q->pad_id(), 151643);
  EXPECT_FALSE(q->bos_id().has_value());
  EXPECT_EQ(q->encode("<|im_start|>user\nhi<|im_end|>", true),
            (std::vector<int64_t>{151644, 872, 198, 6023, 151645}));
  const fs::path llama =
      test::data_root() / "tokenizers/onnxruntime-extensions/test/data/llama2/tokenizer.json";
  OPINE_REQUIRE_FILE(llama);
  const auto l = load_tokenizer(llama.string());
  EXPECT_EQ(l->bos_id(), 1);
  EXPECT_EQ(l->eos_id(), 2);
  EXPECT_EQ(l->encode("Hello world", true), (std::vector<int64_t>{1, 15043, 3186}));
  EXPECT_EQ(l->encode("Hello world", false), (std::vector<int64_t>{15043, 3186}));
  // Characters outside the vocabulary fall back to their UTF-8 bytes.
  const auto bytes = l->encode("\xF0\x9F\xA6\x99", false);  // 🦙
  EXPECT_EQ(bytes.size(), 5u);                              // "▁" and four <0xXX>
  EXPECT_EQ(l->decode(bytes, false), "\xF0\x9F\xA6\x99");
}

// ---- Hand-made files --------------------------------------------------------------------------

// A small byte-level vocabulary: the letters a-e, "Ġ" (space) and some merges.
struct TinyByteLevel {
  TempDir dir;
  fs::path vocab, merges;
  TinyByteLevel(const std::string& merges_text = "#version: 0.2\na b\nab c\n\xC4\xA0 a\n") {
    vocab = dir.write(
        "vocab.json",
        R"({"a":0,"b":1,"c":2,"d":3,"e":4,"\u0120":5,"ab":6,"abc":7,"\u0120a":8,"<|endoftext|>":9})");
    merges = dir.write("merges.txt", merges_text);
  }
};

TEST(BpeTokenizer, ByteLevelMergesByRank) {
  TinyByteLevel t;
  const auto tok = load_vocab_merges(t.vocab.string(), t.merges.string());
  EXPECT_EQ(tok->vocab_size(), 10);
  // "abc" merges a+b then ab+c; " a" is Ġ+a; "d" stays; "<|endoftext|>" is GPT-2's special.
  EXPECT_EQ(tok->encode("abc a d<|endoftext|>"), (std::vector<int64_t>{7, 8, 5, 3, 9}));
  EXPECT_EQ(tok->decode({7, 8, 5, 3, 9}), "abc a d<|endoftext|>");
  EXPECT_EQ(tok->decode({7, 8, 5, 3, 9}, true), "abc a d");
  EXPECT_EQ(tok->bos_id(), 9);
  EXPECT_EQ(tok->eos_id(), 9);
  EXPECT_NE(tok->kind().find("gpt2"), std::string::npos);
}

TEST(BpeTokenizer, MergesWithCrLfAndTrailingNewline) {
  TinyByteLevel t("#version: 0.2\r\na b\r\nab c\r\n\r\n");
  const auto tok = load_vocab_merges(t.vocab.string(), t.merges.string());
  EXPECT_EQ(tok->encode("abc"), (std::vector<int64_t>{7}));
}

TEST(BpeTokenizer, BadMergesLineIsAFormatErrorWithItsLineNumber) {
  TinyByteLevel unknown("#version: 0.2\na b\nab zz\n");
  expect_error([&] { load_vocab_merges(unknown.vocab.string(), unknown.merges.string()); },
               ErrorKind::kFormat, {unknown.merges.string() + ":3", "zz"});
  TinyByteLevel one_token("#version: 0.2\nab\n");
  expect_error([&] { load_vocab_merges(one_token.vocab.string(), one_token.merges.string()); },
               ErrorKind::kFormat, {one_token.merges.string() + ":2"});
  TinyByteLevel no_result("#version: 0.2\nc d\n");
  expect_error([&] { load_vocab_merges(no_result.vocab.string(), no_result.merges.string()); },
               ErrorKind::kFormat, {no_result.merges.string() + ":2", "'cd'"});
}

TEST(BpeTokenizer, InvalidUtf8IsAUserErrorWithItsOffset) {
  TinyByteLevel t;
  const auto tok = load_vocab_merges(t.vocab.string(), t.merges.string());
  expect_error([&] { tok->encode("abc \xC3(", true); }, ErrorKind::kUser, {"byte 4"});
  expect_error([&] { tok->encode("\xED\xA0\x80", true); }, ErrorKind::kUser, {"byte 0"});
  expect_error([&] { tok->decode({10}); }, ErrorKind::kUser, {"10"});
}

TEST(BpeTokenizer, MalformedJsonIsAFormatErrorNamingTheFile) {
  TempDir dir;
  const fs::path bad = dir.write("tokenizer.json", R"({"model": {"type": "BPE", "vocab": )");
  expect_error([&] { load_hf_tokenizer_json(bad.string()); }, ErrorKind::kFormat, {bad.string(), "JSON"});
  const fs::path no_model = dir.write("t2.json", R"({"normalizer": null})");
  expect_error([&] { load_hf_tokenizer_json(no_model.string()); }, ErrorKind::kFormat,
               {no_model.string(), "model"});
  const fs::path vocab = dir.write("vocab.json", "[1, 2]");
  const fs::path merges = dir.write("merges.txt", "");
  expect_error([&] { load_vocab_merges(vocab.string(), merges.string()); }, ErrorKind::kFormat,
               {vocab.string()});
  expect_error([&] { load_hf_tokenizer_json((dir.path() / "missing.json").string()); }, ErrorKind::kIo,
               {"missing.json"});
}

// A tokenizer.json around a tiny vocabulary, with the components given.
std::string tiny_json(const std::string& normalizer, const std::string& pre_tokenizer,
                      const std::string& decoder,
                      const std::string& model_extra = R"("byte_fallback": false)",
                      const std::string& added = "[]") {
  return R"({"version": "1.0", "added_tokens": )" + added + R"(, "normalizer": )" + normalizer +
         R"(, "pre_tokenizer": )" + pre_tokenizer + R"(, "post_processor": null, "decoder": )" + decoder +
         R"(, "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, )" + model_extra +
         R"(, "vocab": {"<unk>": 0, "<s>": 1, "a": 2, "b": 3, "\u2581": 4, "\u2581a": 5, "ab": 6,)"
         R"( "<0x41>": 7, "<0xC3>": 8, "<0xA9>": 9, "x": 10},)"
         R"( "merges": ["\u2581 a", ["a", "b"]]}})";
}

TEST(BpeTokenizer, UnsupportedComponentNamesItAndTheFile) {
  TempDir dir;
  const fs::path lower = dir.write("a.json", tiny_json(R"({"type": "Lowercase"})", "null", "null"));
  expect_error([&] { load_hf_tokenizer_json(lower.string()); }, ErrorKind::kFormat,
               {"Lowercase", lower.string()});
  const fs::path ws = dir.write("b.json", tiny_json("null", R"({"type": "Whitespace"})", "null"));
  expect_error([&] { load_hf_tokenizer_json(ws.string()); }, ErrorKind::kFormat, {"Whitespace", ws.string()});
  const fs::path ctc = dir.write("c.json", tiny_json("null", "null", R"({"type": "CTC", "pad_token": "<pad>"})"));
  expect_error([&] { load_hf_tokenizer_json(ctc.string()); }, ErrorKind::kFormat, {"CTC", ctc.string()});
  std::string unigram = tiny_json("null", "null", "null");
  unigram.replace(unigram.find("\"BPE\""), 5, "\"Unigram\"");
  const fs::path uni = dir.write("d.json", unigram);
  expect_error([&] { load_hf_tokenizer_json(uni.string()); }, ErrorKind::kFormat, {"Unigram", uni.string()});
}

TEST(BpeTokenizer, UnknownCharactersFuseAndByteFallbackSpellsBytes) {
  TempDir dir;
  const std::string prepend =
      R"({"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},)"
      R"( {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]})";
  const std::string dec =
      R"({"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"},)"
      R"( "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},)"
      R"( {"type": "Strip", "content": " ", "start": 1, "stop": 0}]})";
  // Without byte fallback two unknown characters fuse into one <unk>.
  const auto unk = load_hf_tokenizer_json(dir.write("u.json", tiny_json(prepend, "null", dec)).string());
  EXPECT_EQ(unk->encode("ab zzb", false), (std::vector<int64_t>{5, 3, 4, 0, 3}));
  // With it "é" is <0xC3><0xA9>; "q" has no byte token (<0x71>) and becomes <unk>.
  const auto bf = load_hf_tokenizer_json(
      dir.write("f.json", tiny_json(prepend, "null", dec, R"("byte_fallback": true)")).string());
  EXPECT_EQ(bf->encode("a\xC3\xA9q", false), (std::vector<int64_t>{5, 8, 9, 0}));
  EXPECT_EQ(bf->decode({5, 8, 9}), "a\xC3\xA9");
  EXPECT_EQ(bf->decode({5, 8}), "a\xEF\xBF\xBD");  // half a character: U+FFFD per byte
  EXPECT_NE(bf->kind().find("sentencepiece"), std::string::npos);
}

TEST(BpeTokenizer, AddedTokensStripAndMatchWholeWords) {
  TempDir dir;
  const std::string added =
      R"([{"id": 11, "content": "<m>", "special": true, "lstrip": true, "rstrip": true,)"
      R"( "single_word": false, "normalized": false},)"
      R"( {"id": 12, "content": "ab", "special": false, "lstrip": false, "rstrip": false,)"
      R"( "single_word": true, "normalized": false}])";
  const std::string split =
      R"({"type": "Split", "pattern": {"String": " "}, "behavior": "Removed", "invert": false})";
  const auto tok = load_hf_tokenizer_json(
      dir.write("t.json", tiny_json("null", split, "null", R"("byte_fallback": false)", added)).string());
  EXPECT_EQ(tok->vocab_size(), 13);
  // lstrip/rstrip take the spaces (and tabs) around <m>; "ab" only matches as a whole word.
  EXPECT_EQ(tok->encode("x  <m>\t b", false), (std::vector<int64_t>{10, 11, 3}));
  EXPECT_EQ(tok->encode("ab xab ab", false), (std::vector<int64_t>{12, 10, 6, 12}));
  EXPECT_EQ(tok->decode({10, 11, 3}, true), "x b");
  EXPECT_EQ(tok->decode({10, 11, 3}, false), "x <m> b");
  EXPECT_EQ(tok->token_to_id("<m>"), 11);
  EXPECT_EQ(tok->id_to_token(12), "ab");
}

TEST(BpeTokenizer, EncodeBatchMatchesEncodeAcrossThreads) {
  TinyByteLevel t;
  const auto tok = load_vocab_merges(t.vocab.string(), t.merges.string());
  std::vector<std::string> texts;
  for (int i = 0; i < 2000; ++i)
    texts.push_back(std::string(i % 7, 'a') + " abc " + std::string(i % 5, 'b') + "dd e");
  const auto batch = tok->encode_batch(texts, true, 8);
  for (size_t i = 0; i < texts.size(); ++i) ASSERT_EQ(batch[i], tok->encode(texts[i], true)) << i;
}

// ---- GGUF vocabularies built by hand ----------------------------------------------------------

// GGUF v3 with metadata only. Values: strings, string arrays, int32 arrays, float arrays, bools.
class GgufWriter {
 public:
  GgufWriter& str(const std::string& key, const std::string& v) { return kv(key, 8).s(v); }
  GgufWriter& flag(const std::string& key, bool v) {
    kv(key, 7);
    bytes_.push_back(v);
    return *this;
  }
  GgufWriter& u32(const std::string& key, uint32_t v) { return kv(key, 4).put(&v, 4); }
  GgufWriter& strings(const std::string& key, const std::vector<std::string>& v) {
    kv(key, 9).u32v(8).u64v(v.size());
    for (const auto& s_ : v) s(s_);
    return *this;
  }
  GgufWriter& ints(const std::string& key, const std::vector<int32_t>& v) {
    kv(key, 9).u32v(5).u64v(v.size());
    for (int32_t x : v) put(&x, 4);
    return *this;
  }
  GgufWriter& floats(const std::string& key, const std::vector<float>& v) {
    kv(key, 9).u32v(6).u64v(v.size());
    for (float x : v) put(&x, 4);
    return *this;
  }
  fs::path save(const TempDir& dir, const std::string& name) {
    std::string out = "GGUF";
    auto append = [&](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); };
    const uint32_t version = 3;
    const uint64_t n_tensors = 0;
    append(&version, 4);
    append(&n_tensors, 8);
    append(&n_kv_, 8);
    out.append(bytes_.begin(), bytes_.end());
    while (out.size() % 32) out.push_back('\0');
    return dir.write(name, out);
  }

 private:
  GgufWriter& kv(const std::string& key, uint32_t type) {
    ++n_kv_;
    return s(key).u32v(type);
  }
  GgufWriter& s(const std::string& v) { return u64v(v.size()).put(v.data(), v.size()); }
  GgufWriter& u32v(uint32_t v) { return put(&v, 4); }
  GgufWriter& u64v(uint64_t v) { return put(&v, 8); }
  GgufWriter& put(const void* p, size_t n) {
    const auto* b = static_cast<const char*>(p);
    bytes_.insert(bytes_.end(), b, b + n);
    return *this;
  }
  std::vector<char> bytes_;
  uint64_t n_kv_ = 0;
};

TEST(BpeTokenizer, GgufSentencePieceMergesByScore) {
  TempDir dir;
  // "▁ab" can form as ▁a + b or ▁ + ab: the higher-scored bigram first decides (ab: -1 > ▁a: -2).
  const std::vector<std::string> tokens = {"<unk>",
                                           "<s>",
                                           "</s>",
                                           "\xE2\x96\x81",
                                           "a",
                                           "b",
                                           "\xE2\x96\x81"
                                           "a",
                                           "ab",
                                           "\xE2\x96\x81"
                                           "ab",
                                           "<0xC3>",
                                           "<0xA9>"};
  const auto path = GgufWriter()
                        .str("general.architecture", "llama")
                        .str("tokenizer.ggml.model", "llama")
                        .strings("tokenizer.ggml.tokens", tokens)
                        .floats("tokenizer.ggml.scores", {0, 0, 0, -5, -6, -6, -2, -1, -3, 0, 0})
                        .ints("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1, 1, 1, 1, 6, 6})
                        .save(dir, "spm.gguf");
  const auto tok = load_gguf_tokenizer(gguf::File::open(path.string()));
  EXPECT_EQ(tok->kind(), "sentencepiece (gguf)");
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->encode("ab", true), (std::vector<int64_t>{1, 8}));
  EXPECT_EQ(tok->encode("ab a\xC3\xA9", false), (std::vector<int64_t>{8, 6, 9, 10}));
  // A special token in the text, and the space put before the text after it.
  EXPECT_EQ(tok->encode("a</s>b", false), (std::vector<int64_t>{6, 2, 3, 5}));
  EXPECT_EQ(tok->decode({1, 8, 6, 9, 10}, true), "ab a\xC3\xA9");
}

TEST(BpeTokenizer, GgufByteLevelAndItsErrors) {
  TempDir dir;
  auto writer = [](const std::string& model, const std::string& pre) {
    GgufWriter w;
    w.str("general.architecture", "llama").str("tokenizer.ggml.model", model).str("tokenizer.ggml.pre", pre);
    w.strings("tokenizer.ggml.tokens", {"a", "b", "1", "\xC4\xA0",
                                        "\xC4\xA0"
                                        "a",
                                        "ab", "<|im_start|>",
                                        "\xC4\xA0"
                                        "1",
                                        "12", "2"});
    w.ints("tokenizer.ggml.token_type", {1, 1, 1, 1, 1, 1, 3, 1, 1, 1});
    w.u32("tokenizer.ggml.bos_token_id", 6);
    w.strings("tokenizer.ggml.merges", {"\xC4\xA0 a", "a b", "\xC4\xA0 1", "1 2"});
    return w;
  };
  const auto smollm =
      load_gguf_tokenizer(gguf::File::open(writer("gpt2", "smollm").save(dir, "s.gguf").string()));
  EXPECT_NE(smollm->kind().find("smollm"), std::string::npos);
  // smollm splits digits one by one before GPT-2's regex: no "Ġ1", no "12".
  EXPECT_EQ(smollm->encode("ab a<|im_start|> 12", true), (std::vector<int64_t>{5, 4, 6, 3, 2, 9}));
  const auto gpt2 =
      load_gguf_tokenizer(gguf::File::open(writer("gpt2", "gpt-2").save(dir, "g.gguf").string()));
  EXPECT_EQ(gpt2->encode(" 12", true), (std::vector<int64_t>{7, 9}));
  EXPECT_EQ(gpt2->decode({7, 2, 6}, false), " 11<|im_start|>");
  EXPECT_EQ(gpt2->decode({7, 2, 6}, true), " 11");

  // Every pre-tokenizer family compiles and keeps the text whole.
  for (const std::string pre :
       {"default", "llama-bpe", "qwen2", "dbrx", "falcon", "gpt-4o", "tekken", "olmo"}) {
    const auto tok =
        load_gguf_tokenizer(gguf::File::open(writer("gpt2", pre).save(dir, pre + ".gguf").string()));
    EXPECT_EQ(tok->decode(tok->encode("ab 12 ba", false)), "ab 12 ba") << pre;
  }
  // Llama-3-style vocabularies add BOS unless the file says otherwise.
  EXPECT_EQ(
      load_gguf_tokenizer(gguf::File::open((dir.path() / "llama-bpe.gguf").string()))->encode("a").front(),
      6);
  EXPECT_EQ(smollm->encode("a"), (std::vector<int64_t>{0}));

  const auto bert = writer("bert", "default").save(dir, "b.gguf");
  expect_error([&] { load_gguf_tokenizer(gguf::File::open(bert.string())); }, ErrorKind::kFormat,
               {"bert", bert.string()});
  const auto odd = writer("gpt2", "no-such-pre").save(dir, "o.gguf");
  expect_error([&] { load_gguf_tokenizer(gguf::File::open(odd.string())); }, ErrorKind::kFormat,
               {"no-such-pre", odd.string()});
}

}  // namespace
}  // namespace opine::models
