#include "models/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <thread>

#include "core/error.h"
#include "models/gguf.h"
#include "models/tokenizer_bpe.h"
#include "models/tokenizer_llama2c.h"
#include "models/tokenizer_spm.h"
#include "models/tokenizer_wordpiece.h"
#include "models/tokenizer_xlmr.h"

namespace opine::models {

std::vector<std::vector<int64_t>> Tokenizer::encode_batch(const std::vector<std::string>& texts, bool add_special,
                                                          int threads) const {
  std::vector<std::vector<int64_t>> out(texts.size());
  const size_t n_threads = std::max<size_t>(
      1, std::min<size_t>(threads > 0 ? threads : std::thread::hardware_concurrency(), texts.size() / 64 + 1));
  std::vector<std::exception_ptr> errors(n_threads);
  std::vector<std::thread> pool;
  for (size_t t = 0; t < n_threads; ++t) {
    pool.emplace_back([&, t] {
      try {
        // Interleaved rows balance long and short texts across threads.
        for (size_t i = t; i < texts.size(); i += n_threads) out[i] = encode(texts[i], add_special);
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  }
  for (std::thread& th : pool) th.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
  return out;
}

void check_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = s[i];
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    }
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (s[i + k] & 0xC0) == 0x80;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    ok = ok && cp >= kMin[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    OPINE_CHECK(ok, "invalid UTF-8 at byte ", i, " of the text");
    i += len;
  }
}

namespace {
// Length of the longest prefix of `s` that does not end inside a UTF-8 character.
size_t complete_utf8_prefix(const std::string& s) {
  size_t end = s.size();
  // Look back at most 3 bytes for the lead byte of an unfinished character.
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const unsigned char c = static_cast<unsigned char>(s[s.size() - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte
    const size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    if (need > back) end = s.size() - back;
    break;
  }
  return end;
}
}  // namespace

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, std::vector<int64_t> context)
    : tokenizer_(tokenizer), ids_(std::move(context)), emitted_(tokenizer_.decode(ids_).size()) {}

std::string StreamDecoder::push(int64_t id) {
  ids_.push_back(id);
  const std::string text = tokenizer_.decode(ids_);
  // Decoders that replace an unfinished character with U+FFFD (SentencePiece) rewrite it once
  // the rest arrives: hold everything back until the text no longer ends with one.
  if (text.ends_with(kReplacement)) return {};
  const size_t end = complete_utf8_prefix(text);
  if (end <= emitted_) return {};
  std::string piece = text.substr(emitted_, end - emitted_);
  emitted_ = end;
  return piece;
}

std::string StreamDecoder::finish() {
  const std::string text = tokenizer_.decode(ids_);
  std::string rest = emitted_ < text.size() ? text.substr(emitted_) : std::string();
  emitted_ = text.size();
  // Bytes of a character that never completed.
  if (!rest.empty() && complete_utf8_prefix(rest) < rest.size())
    rest = rest.substr(0, complete_utf8_prefix(rest)) + std::string(kReplacement);
  return rest;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path, std::optional<int64_t> vocab_size) {
  namespace fs = std::filesystem;
  OPINE_CHECK_KIND(fs::exists(path), ErrorKind::kIo, "tokenizer not found: ", path);
  if (fs::is_directory(path)) {
    const fs::path dir(path);
    if (fs::exists(dir / "tokenizer.json")) return load_hf_tokenizer_json((dir / "tokenizer.json").string());
    if (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt"))
      return load_vocab_merges((dir / "vocab.json").string(), (dir / "merges.txt").string());
    if (fs::exists(dir / "tokenizer.model")) return std::make_unique<SentencePieceTokenizer>((dir / "tokenizer.model").string());
    if (fs::exists(dir / "sentencepiece.bpe.model"))
      return load_xlmr_tokenizer((dir / "sentencepiece.bpe.model").string());
    if (fs::exists(dir / "vocab.txt")) return load_wordpiece_vocab((dir / "vocab.txt").string());
    if (fs::exists(dir / "tokenizer.bin")) return load_tokenizer((dir / "tokenizer.bin").string(), vocab_size);
    throw Error(ErrorKind::kIo, path + ": no tokenizer.json, vocab.json + merges.txt, tokenizer.model, "
                                       "sentencepiece.bpe.model, vocab.txt or tokenizer.bin");
  }
  const fs::path file(path);
  const std::string name = file.filename().string();
  if (name == "sentencepiece.bpe.model") return load_xlmr_tokenizer(path);
  if (file.extension() == ".model") return std::make_unique<SentencePieceTokenizer>(path);
  if (file.extension() == ".txt") return load_wordpiece_vocab(path);
  if (file.extension() == ".json") return load_hf_tokenizer_json(path);
  if (file.extension() == ".gguf") return load_gguf_tokenizer(gguf::File::open(path));
  if (file.extension() == ".bin") {
    OPINE_CHECK(vocab_size.has_value(), path,
                ": a llama2.c tokenizer.bin does not store its vocabulary size; load it with its model");
    return std::make_unique<Llama2cTokenizer>(path, *vocab_size);
  }
  throw Error(ErrorKind::kUser, path + ": unknown tokenizer format (tokenizer.json, vocab.json + merges.txt folder, "
                                       "tokenizer.model, sentencepiece.bpe.model (XLM-R), vocab.txt (WordPiece), "
                                       ".gguf or llama2.c tokenizer.bin)");
}

}  // namespace opine::models
