// WordPiece's pipeline stages with the tokenizers library's semantics (BertNormalizer,
// BertPreTokenizer, the WordPiece model and decoder), and the vocab.txt loader.
#include "models/tokenizer_wordpiece.h"

#include <unicode/uchar.h>
#include <unicode/ustring.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "core/json_file.h"
#include "models/tokenizer_bpe_internal.h"

namespace opine::models {

using namespace bpe;

namespace {

// ---- Unicode as the tokenizers library sees it -----------------------------------------------

// The library takes character categories from the unicode_categories crate, whose tables are
// Unicode 8.0: a character assigned later has none of its categories, and a few characters have
// changed category since. ICU answers for its own, newer Unicode, so this corrects for both
// (WordPieceNormalizerParity checks every code point against the library).
int8_t category_v8(char32_t cp) {
  switch (cp) {
    case 0x111C9:  // SHARADA SANDHI MARK: Po in 8.0, Mn later
    case 0x166D:   // CANADIAN SYLLABICS CHI SIGN: Po in 8.0, So later
      return U_OTHER_PUNCTUATION;
    case 0x1734:  // HANUNOO SIGN PAMUDPOD: Mn in 8.0, Mc later
      return U_NON_SPACING_MARK;
    case 0x1885:  // MONGOLIAN LETTER ALI GALI BALUDA / THREE BALUDA: Lo in 8.0, Mn later
    case 0x1886:
      return U_OTHER_LETTER;
    case 0xA9BD:  // JAVANESE CONSONANT SIGN KERET: Mc in 8.0, Mn later
      return U_COMBINING_SPACING_MARK;
    default:
      break;
  }
  UVersionInfo age;
  u_charAge(static_cast<UChar32>(cp), age);
  if (age[0] > 8 || (age[0] == 8 && age[1] > 0)) return U_UNASSIGNED;
  return u_charType(static_cast<UChar32>(cp));
}

// BertNormalizer's whitespace: \t \n \r and Unicode White_Space (Rust's char::is_whitespace).
bool is_bert_whitespace(char32_t cp) { return is_unicode_whitespace(cp); }

// BertNormalizer's control characters: the crate's "other" categories it fills (Cc, Cf, Co),
// except \t \n \r, which count as whitespace. Unassigned code points are kept.
bool is_bert_control(char32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  if (cp < 0x80) return cp < 0x20 || cp == 0x7F;
  const int8_t c = category_v8(cp);
  return c == U_CONTROL_CHAR || c == U_FORMAT_CHAR || c == U_PRIVATE_USE_CHAR;
}

// The CJK Unified Ideographs blocks, as the library lists them.
bool is_chinese_char(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// NFD with the library's normalization tables (the unicode-normalization-alignments crate, older
// than Unicode 13): a character assigned since is left as it is and decomposes nothing around it,
// so the runs between such characters are decomposed apart.
bool in_nfd_tables(char32_t cp) {
  if (cp < 0x80) return true;
  UVersionInfo age;
  u_charAge(static_cast<UChar32>(cp), age);
  return age[0] < 13;
}

std::string nfd_as_library(const std::string& text) {
  std::string out, run;
  for (size_t i = 0; i < text.size();) {
    const size_t len = utf8_char_len(static_cast<unsigned char>(text[i]));
    if (in_nfd_tables(utf8_decode(text, i))) {
      run.append(text, i, len);
    } else {
      unicode_normalize(UnicodeForm::kNfd, run);
      out += run;
      run.clear();
      out.append(text, i, len);
    }
    i += len;
  }
  unicode_normalize(UnicodeForm::kNfd, run);
  return out + run;
}

bool is_nonspacing_mark(char32_t cp) { return cp >= 0x300 && category_v8(cp) == U_NON_SPACING_MARK; }

// Rust's char::to_lowercase, one character at a time (so no final-sigma context), through ICU's
// full case mapping.
void append_lowercase(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
    return;
  }
  if (!u_hasBinaryProperty(static_cast<UChar32>(cp), UCHAR_CHANGES_WHEN_LOWERCASED)) {
    utf8_append(out, cp);
    return;
  }
  UChar src[2];
  int32_t n = 0;
  U16_APPEND_UNSAFE(src, n, static_cast<UChar32>(cp));
  UChar lower[8];
  UErrorCode status = U_ZERO_ERROR;
  const int32_t m = u_strToLower(lower, 8, src, n, "", &status);
  OPINE_ASSERT(U_SUCCESS(status), "ICU lowercase failed: ", u_errorName(status));
  for (int32_t i = 0; i < m;) {
    UChar32 c;
    U16_NEXT(lower, i, m, c);
    utf8_append(out, static_cast<char32_t>(c));
  }
}

// ---- Stages ----------------------------------------------------------------------------------

class BertNormalizer final : public Normalizer {
 public:
  explicit BertNormalizer(const BertNormalizerOptions& options) : options_(options) {}
  void normalize(std::string& text) const override { text = bert_normalize(text, options_); }

 private:
  BertNormalizerOptions options_;
};

class BertPreTokenizer final : public PreTokenizer {
 public:
  void split(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (const Piece& piece : pieces) {
      const std::string& s = piece.text;
      size_t word_start = 0;
      auto flush = [&](size_t end) {
        if (end > word_start)
          out.push_back({s.substr(word_start, end - word_start), piece.at_start && word_start == 0});
      };
      for (size_t i = 0; i < s.size();) {
        const size_t len = utf8_char_len(static_cast<unsigned char>(s[i]));
        const char32_t cp = utf8_decode(s, i);
        if (is_unicode_whitespace(cp)) {
          flush(i);
          word_start = i + len;
        } else if (is_bert_punctuation(cp)) {
          flush(i);
          out.push_back({s.substr(i, len), piece.at_start && i == 0});
          word_start = i + len;
        }
        i += len;
      }
      flush(s.size());
    }
    pieces = std::move(out);
  }
};

class WordPieceModel final : public Model {
 public:
  WordPieceModel(const std::vector<std::string>& vocab, int64_t unk_id, std::string prefix, size_t max_chars)
      : unk_id_(unk_id), prefix_(std::move(prefix)), max_chars_(max_chars) {
    // A token listed twice keeps its last id (the library builds a hash map in id order).
    for (size_t id = 0; id < vocab.size(); ++id) {
      if (vocab[id].empty()) continue;
      ids_[vocab[id]] = static_cast<int64_t>(id);
      longest_ = std::max(longest_, vocab[id].size());
    }
  }

  void tokenize(std::string_view word, std::vector<int64_t>& out) const override {
    size_t chars = 0;
    for (unsigned char c : word) chars += (c & 0xC0) != 0x80;
    if (chars > max_chars_) {
      out.push_back(unk_id_);
      return;
    }
    const size_t first = out.size();
    std::string key;
    for (size_t start = 0; start < word.size();) {
      // The longest piece from `start` that is in the vocabulary; no token is longer than
      // `longest_` bytes, so the search starts there (on a character boundary).
      size_t end = std::min(word.size(), start + longest_);
      while (end < word.size() && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) --end;
      bool found = false;
      while (end > start) {
        key.assign(start > 0 ? prefix_ : std::string());
        key.append(word.substr(start, end - start));
        const auto it = ids_.find(key);
        if (it != ids_.end()) {
          out.push_back(it->second);
          found = true;
          break;
        }
        do {
          --end;
        } while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
      }
      if (!found) {
        out.resize(first);
        out.push_back(unk_id_);
        return;
      }
      start = end;
    }
  }

 private:
  StringMap<int64_t> ids_;
  int64_t unk_id_;
  std::string prefix_;
  size_t max_chars_;
  size_t longest_ = 0;
};

class WordPieceDecoder final : public Decoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      if (i != 0) {
        if (!prefix_.empty() && t.compare(0, prefix_.size(), prefix_) == 0) {
          t.erase(0, prefix_.size());
        } else {
          t.insert(0, " ");
        }
      }
      if (cleanup_) {
        // The library's replacements, in its order.
        static const std::pair<std::string_view, std::string_view> kCleanup[] = {
            {" .", "."},   {" ?", "?"},     {" !", "!"},    {" ,", ","},
            {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},  {" do not", " don't"},
            {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
        for (const auto& [from, to] : kCleanup) replace_all(t, from, to);
      }
    }
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

// ---- vocab.txt -------------------------------------------------------------------------------

// Rust's str::trim_end: trailing Unicode whitespace.
std::string trim_end(std::string line) {
  size_t end = line.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(line[start]) & 0xC0) == 0x80) --start;
    if (!is_unicode_whitespace(utf8_decode(line, start))) break;
    end = start;
  }
  line.resize(end);
  return line;
}

// "unk_token": "[UNK]" or {"content": "[UNK]", ...}.
std::string config_token(const nlohmann::json& config, const char* key, const std::string& fallback) {
  if (!config.is_object() || !config.contains(key)) return fallback;
  const nlohmann::json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return fallback;
}

}  // namespace

std::string bert_normalize(std::string_view text, const BertNormalizerOptions& options) {
  std::string out;
  out.reserve(text.size() + 8);
  for (size_t i = 0; i < text.size();) {
    const char32_t cp = utf8_decode(text, i);
    i += utf8_char_len(static_cast<unsigned char>(text[i]));
    if (options.clean_text) {
      if (cp == 0 || cp == 0xFFFD || is_bert_control(cp)) continue;
      if (cp == ' ' || is_bert_whitespace(cp)) {
        out += ' ';
        continue;
      }
    }
    if (options.handle_chinese_chars && is_chinese_char(cp)) {
      out += ' ';
      utf8_append(out, cp);
      out += ' ';
      continue;
    }
    utf8_append(out, cp);
  }
  if (options.strip_accents.value_or(options.lowercase)) {
    out = nfd_as_library(out);
    std::string kept;
    kept.reserve(out.size());
    for (size_t i = 0; i < out.size();) {
      const size_t len = utf8_char_len(static_cast<unsigned char>(out[i]));
      if (!is_nonspacing_mark(utf8_decode(out, i))) kept.append(out, i, len);
      i += len;
    }
    out = std::move(kept);
  }
  if (options.lowercase) {
    std::string lower;
    lower.reserve(out.size());
    for (size_t i = 0; i < out.size();) {
      append_lowercase(lower, utf8_decode(out, i));
      i += utf8_char_len(static_cast<unsigned char>(out[i]));
    }
    out = std::move(lower);
  }
  return out;
}

bool is_bert_punctuation(char32_t cp) {
  if (cp < 0x80)
    return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
           (cp >= 123 && cp <= 126);
  switch (category_v8(cp)) {
    case U_DASH_PUNCTUATION:
    case U_START_PUNCTUATION:
    case U_END_PUNCTUATION:
    case U_CONNECTOR_PUNCTUATION:
    case U_OTHER_PUNCTUATION:
    case U_INITIAL_PUNCTUATION:
    case U_FINAL_PUNCTUATION:
      return true;
    default:
      return false;
  }
}

namespace bpe {

std::unique_ptr<Normalizer> make_bert_normalizer(const BertNormalizerOptions& options) {
  return std::make_unique<BertNormalizer>(options);
}
std::unique_ptr<PreTokenizer> make_bert_pre_tokenizer() { return std::make_unique<BertPreTokenizer>(); }
std::unique_ptr<Decoder> make_wordpiece_decoder(std::string prefix, bool cleanup) {
  return std::make_unique<WordPieceDecoder>(std::move(prefix), cleanup);
}
std::unique_ptr<Model> make_wordpiece_model(const std::vector<std::string>& vocab, int64_t unk_id,
                                            std::string continuing_subword_prefix,
                                            size_t max_input_chars_per_word) {
  return std::make_unique<WordPieceModel>(vocab, unk_id, std::move(continuing_subword_prefix),
                                          max_input_chars_per_word);
}

}  // namespace bpe

std::unique_ptr<Tokenizer> load_wordpiece_vocab(const std::string& vocab_txt) {
  namespace fs = std::filesystem;
  std::ifstream in(vocab_txt, std::ios::binary);
  OPINE_CHECK_KIND(in.good(), ErrorKind::kIo, "cannot open ", vocab_txt);
  const fs::path config_path = fs::path(vocab_txt).parent_path() / "tokenizer_config.json";
  nlohmann::json config;
  if (fs::exists(config_path)) {
    config = read_json_file(config_path);
  }

  PipelineSpec spec;
  spec.source = vocab_txt;
  spec.kind = "wordpiece";
  // The library's WordPiece::read_file: one token a line, trailing whitespace trimmed.
  for (std::string line; std::getline(in, line);) {
    std::string token = trim_end(std::move(line));
    try {
      check_utf8(token);
    } catch (const Error&) {
      throw Error(ErrorKind::kFormat, detail::concat(vocab_txt, ":", spec.vocab.size() + 1, ": not UTF-8"));
    }
    spec.vocab.push_back(std::move(token));
  }
  OPINE_CHECK_FORMAT(!spec.vocab.empty(), vocab_txt, ": empty vocabulary");
  try {
    // transformers' BertTokenizer defaults, then what the config says.
    const std::string unk = config_token(config, "unk_token", "[UNK]");
    const std::string sep = config_token(config, "sep_token", "[SEP]");
    const std::string pad = config_token(config, "pad_token", "[PAD]");
    const std::string cls = config_token(config, "cls_token", "[CLS]");
    const std::string mask = config_token(config, "mask_token", "[MASK]");
    BertNormalizerOptions options;
    if (config.is_object()) {
      options.lowercase = config.value("do_lower_case", true);
      options.handle_chinese_chars = config.value("tokenize_chinese_chars", true);
      if (config.contains("strip_accents") && config["strip_accents"].is_boolean())
        options.strip_accents = config["strip_accents"].get<bool>();
    }
    StringMap<int64_t> ids;
    for (size_t id = 0; id < spec.vocab.size(); ++id) ids[spec.vocab[id]] = static_cast<int64_t>(id);
    const auto unk_it = ids.find(unk);
    OPINE_CHECK_FORMAT(unk_it != ids.end(), vocab_txt, ": the unknown token '", unk,
                       "' is not in the vocabulary");
    const std::vector<std::string> model_vocab = spec.vocab;

    // The config's added_tokens_decoder states ids and flags; the special tokens it does not list
    // are added as transformers adds them (their vocabulary id, else a new one past the end).
    if (config.is_object() && config.contains("added_tokens_decoder") &&
        config["added_tokens_decoder"].is_object()) {
      for (const auto& [key, value] : config["added_tokens_decoder"].items())
        spec.added.push_back(parse_added_token(value, std::stoll(key)));
    }
    add_named_specials(spec, {pad, unk, cls, sep, mask}, ids);
    for (const AddedToken& t : spec.added) {
      OPINE_CHECK_FORMAT(t.id >= 0 && t.id < (int64_t{1} << 31), config_path.string(), ": added token '",
                         t.content, "' has id ", t.id);
      if (static_cast<size_t>(t.id) >= spec.vocab.size()) spec.vocab.resize(t.id + 1);
      spec.vocab[t.id] = t.content;
    }
    auto id_of = [&](const std::string& s) -> int64_t {
      for (const AddedToken& t : spec.added)
        if (t.content == s) return t.id;
      return -1;
    };
    spec.normalizer = make_bert_normalizer(options);
    spec.pre_tokenizer = make_bert_pre_tokenizer();
    spec.model = make_wordpiece_model(model_vocab, unk_it->second, "##", 100);
    spec.decoder = make_wordpiece_decoder("##", true);
    spec.prefix = {id_of(cls)};
    spec.suffix = {id_of(sep)};
    spec.pad = id_of(pad);
    spec.special_around = {1, 1};
    return make_bpe_tokenizer(std::move(spec));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::kFormat, config_path.string() + ": " + e.what());
  }
}

}  // namespace opine::models
