// Internals of the BPE tokenizers (models/tokenizer_bpe.h): the pipeline a tokenizer.json, a
// vocab.json + merges.txt pair or a GGUF vocabulary is turned into. Shared by the loaders
// (tokenizer_hf_json.cpp, tokenizer_gguf.cpp), the text utilities (tokenizer_unicode.cpp), the
// stages (pretokenize.cpp, tokenizer_decoders.cpp), the models (tokenizer_bpe_models.cpp) and the
// tokenizer itself (tokenizer_bpe.cpp); the encoders' WordPiece (tokenizer_wordpiece.cpp) and
// XLM-R (tokenizer_xlmr.cpp) tokenizers run on the same pipeline. Not part of the public interface.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "models/tokenizer.h"
#include "models/tokenizer_wordpiece.h"

struct pcre2_real_code_8;  // PCRE2's compiled pattern; pcre2.h stays inside pretokenize.cpp

namespace opine::models::bpe {

// ---- Strings ---------------------------------------------------------------------------------

// Hash and equality that accept std::string_view, so look-ups never build a std::string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;
using StringSet = std::unordered_set<std::string, StringHash, std::equal_to<>>;

// SentencePiece's ▁ (U+2581), which stands for a space in pieces.
inline constexpr std::string_view kMetaspace = "\xE2\x96\x81";

// Bytes in the UTF-8 character that starts with `lead` (1 for a stray continuation byte).
inline size_t utf8_char_len(unsigned char lead) {
  return lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 1;
}
// The code point at `pos` of valid UTF-8.
char32_t utf8_decode(std::string_view s, size_t pos);
void utf8_append(std::string& out, char32_t cp);
// Invalid sequences become U+FFFD, one per maximal invalid subpart (Rust's from_utf8_lossy, which
// Hugging Face's decoders use).
std::string utf8_lossy(std::string_view bytes);
// Unicode White_Space (Rust's char::is_whitespace and regex \s).
bool is_unicode_whitespace(char32_t cp);

// GPT-2's byte-level alphabet: every byte is spelled as one printable character.
struct ByteAlphabet {
  std::array<std::string, 256> spelling;          // byte -> UTF-8 of its character
  std::unordered_map<char32_t, uint8_t> byte_of;  // character -> byte
};
const ByteAlphabet& byte_alphabet();

// ---- Regular expressions ---------------------------------------------------------------------

// A PCRE2 pattern compiled in UTF + UCP mode (so \p{L}, \s, \w are Unicode-aware) and JIT-compiled.
// Matching is thread-safe: the per-match state is thread-local.
class Regex {
 public:
  // `where` names the file or component for the error a bad pattern raises.
  Regex(const std::string& pattern, const std::string& where);
  // Non-overlapping matches, left to right, as [start, end) byte ranges; empty matches are skipped.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  std::shared_ptr<pcre2_real_code_8> code_;
};

// Unicode normalization forms through ICU.
enum class UnicodeForm { kNfc, kNfd, kNfkc, kNfkd };
void unicode_normalize(UnicodeForm form, std::string& text);

// Every occurrence of `from` (left to right, not overlapping), or every match of `regex`,
// replaced by `to`.
void replace_all(std::string& text, std::string_view from, std::string_view to);
void replace_all(std::string& text, const Regex& regex, std::string_view to);

// ---- Pipeline stages -------------------------------------------------------------------------

// A pre-token: a piece of (normalized) text and whether it starts at the beginning of the input,
// which Metaspace's prepend_scheme "first" asks.
struct Piece {
  std::string text;
  bool at_start = false;
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits every piece further (or rewrites it, like ByteLevel's byte spelling).
  virtual void split(std::vector<Piece>& pieces) const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Hugging Face's decode_chain: token strings in, token strings out; the caller joins them.
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of one pre-token.
  virtual void tokenize(std::string_view word, std::vector<int64_t>& out) const = 0;
};

// Hugging Face's SplitDelimiterBehavior.
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
// "always", "first", "never" (Metaspace).
enum class PrependScheme { kAlways, kFirst, kNever };

// Normalizers.
std::unique_ptr<Normalizer> make_unicode_normalizer(UnicodeForm form);
std::unique_ptr<Normalizer> make_prepend_normalizer(std::string prepend);
// `regex` set: replace its matches; otherwise replace every occurrence of `literal`.
std::unique_ptr<Normalizer> make_replace_normalizer(std::string literal, std::shared_ptr<const Regex> regex,
                                                    std::string content);
std::unique_ptr<Normalizer> make_strip_normalizer(bool left, bool right);
std::unique_ptr<Normalizer> make_sequence_normalizer(std::vector<std::unique_ptr<Normalizer>> steps);

// Pre-tokenizers.
std::unique_ptr<PreTokenizer> make_split(std::string literal, std::shared_ptr<const Regex> regex,
                                         SplitBehavior behavior, bool invert);
std::unique_ptr<PreTokenizer> make_byte_level(bool add_prefix_space, bool use_regex);
std::unique_ptr<PreTokenizer> make_metaspace(std::string replacement, PrependScheme scheme, bool split);
std::unique_ptr<PreTokenizer> make_digits(bool individual_digits);
std::unique_ptr<PreTokenizer> make_sequence_pre_tokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps);
// GPT-2's pre-tokenizer regex (what ByteLevel's use_regex splits with).
const std::string& gpt2_pattern();

// Decoders.
std::unique_ptr<Decoder> make_byte_level_decoder();
std::unique_ptr<Decoder> make_replace_decoder(std::string literal, std::shared_ptr<const Regex> regex,
                                              std::string content);
std::unique_ptr<Decoder> make_byte_fallback_decoder();
std::unique_ptr<Decoder> make_fuse_decoder();
std::unique_ptr<Decoder> make_strip_decoder(std::string content, size_t start, size_t stop);
std::unique_ptr<Decoder> make_metaspace_decoder(std::string replacement, PrependScheme scheme);
std::unique_ptr<Decoder> make_sequence_decoder(std::vector<std::unique_ptr<Decoder>> steps);

// ---- Models ----------------------------------------------------------------------------------

struct BpeOptions {
  std::optional<int32_t> unk_id;
  bool byte_fallback = false;
  bool fuse_unk = false;
  bool ignore_merges = false;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
};

// A merge as ids: left, right and the token they make, in rank order.
struct Merge {
  int32_t left, right, result;
};

// Hugging Face's BPE model: characters (or byte-fallback / unknown tokens) merged by rank with a
// priority queue, whole words cached in a sharded, locked map.
// `vocab`: the model's own tokens by id (empty strings for ids it does not have).
// `keep_first_duplicate`: a pair listed twice keeps its first rank (llama.cpp) instead of its
// last (Hugging Face).
std::unique_ptr<Model> make_bpe_model(std::vector<std::string> vocab, const std::vector<Merge>& merges,
                                      BpeOptions options, bool keep_first_duplicate);

// llama.cpp's SentencePiece-style tokenizer for GGUF "llama" vocabularies, and SentencePiece's
// own BPE encoding (models/tokenizer_spm.cpp): adjacent symbols merged while their concatenation
// is a token, the best score first, leftover characters spelled as <0xXX> byte tokens.
// `text_pieces`, when given, says which tokens merges may make: SentencePiece never spells its
// control, unknown and byte pieces from text, llama.cpp matches every token.
std::unique_ptr<Model> make_spm_model(std::vector<std::string> vocab, std::vector<float> scores,
                                      std::optional<int32_t> unk_id, std::vector<bool> text_pieces = {});

// ---- WordPiece (tokenizer_wordpiece.cpp) -----------------------------------------------------

// BertNormalizer: clean_text, handle_chinese_chars, strip_accents, lowercase.
std::unique_ptr<Normalizer> make_bert_normalizer(const BertNormalizerOptions& options);
// BertPreTokenizer: whitespace split (removed), every punctuation character a piece of its own.
std::unique_ptr<PreTokenizer> make_bert_pre_tokenizer();
// WordPiece's decoder: "##" pieces join the token before them, others get a space; `cleanup`
// removes the space before . ? ! , and inside English contractions, token by token.
std::unique_ptr<Decoder> make_wordpiece_decoder(std::string prefix, bool cleanup);
// Greedy longest-match-first WordPiece: a word longer than `max_input_chars_per_word`
// characters, or one that cannot be spelled from the vocabulary, is the unknown token.
// `vocab`: the model's tokens by id (empty strings for ids it does not have).
std::unique_ptr<Model> make_wordpiece_model(const std::vector<std::string>& vocab, int64_t unk_id,
                                            std::string continuing_subword_prefix,
                                            size_t max_input_chars_per_word);

// ---- The tokenizer ---------------------------------------------------------------------------

struct AddedToken {
  std::string content;
  int64_t id = 0;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;
};

// An added token as tokenizer.json's "added_tokens" and tokenizer_config.json's
// "added_tokens_decoder" write one (content, special, lstrip, rstrip, single_word, normalized).
AddedToken parse_added_token(const nlohmann::json& j, int64_t id);

struct PipelineSpec;
// The special tokens a tokenizer's files name (unk, pad, cls, ...) but do not list as added, added
// as transformers adds them: special, with their vocabulary id, else a new id past every other.
void add_named_specials(PipelineSpec& spec, const std::vector<std::string>& names, const StringMap<int64_t>& vocab);

// How special tokens written in the text are found.
enum class SpecialMatching {
  // Hugging Face: leftmost-longest over the raw text for normalized=false tokens, then over each
  // normalized piece for normalized=true ones; lstrip/rstrip/single_word with Unicode classes.
  kHuggingFace,
  // llama.cpp: one token at a time, longest first, over the raw text; lstrip/rstrip with ASCII
  // spaces.
  kLlama,
};

// Everything a loader decides; BpeTokenizer runs it.
struct PipelineSpec {
  std::string kind;                // Tokenizer::kind()
  std::string source;              // the file, for messages
  std::vector<std::string> vocab;  // id -> token string (model tokens and added tokens)
  std::vector<AddedToken> added;
  SpecialMatching matching = SpecialMatching::kHuggingFace;
  std::unique_ptr<Normalizer> normalizer;       // may be null
  std::unique_ptr<PreTokenizer> pre_tokenizer;  // may be null
  std::unique_ptr<Model> model;
  std::unique_ptr<Decoder> decoder;  // null: tokens joined with spaces, as HF does
  // llama.cpp SentencePiece: a space before the first text fragment and after each special token.
  bool space_prefix_after_special = false;
  std::vector<int64_t> prefix, suffix;  // what add_special puts around a text
  std::optional<int64_t> bos, eos, pad;
  // Ids decode(skip_special = true) drops; unset: the special added tokens (HF rule).
  std::optional<std::vector<bool>> skip_on_decode;
  // Tokenizer::special_around(): {0, 0} for decoders, the frame's sizes for encoders.
  std::pair<int, int> special_around = {0, 0};
};

std::unique_ptr<Tokenizer> make_bpe_tokenizer(PipelineSpec spec);

}  // namespace opine::models::bpe
