// XLM-R's tokenizer (models/tokenizer_xlmr.h): the sentencepiece.bpe.model read by the sentencepiece
// library, run through the tokenizers library's pipeline for it (Precompiled normalizer,
// WhitespaceSplit + Metaspace, Unigram), on the BPE tokenizers' special-token matching and
// decoding (models/tokenizer_bpe.cpp).
#include "models/tokenizer_xlmr.h"

#include <sentencepiece_processor.h>
#include <unicode/brkiter.h>
#include <unicode/utext.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "core/json_file.h"
#include "models/spm_proto.h"
#include "models/tokenizer_bpe_internal.h"

namespace opine::models {

using namespace bpe;
using nlohmann::json;

namespace {

// ---- The charsmap ----------------------------------------------------------------------------

// The tokenizers library's Precompiled normalizer: SentencePiece's charsmap (a darts-clone double
// array over UTF-8 bytes, then the replacement strings, NUL-terminated), looked up per extended
// grapheme cluster. A cluster under 6 bytes is replaced by the replacement of its SHORTEST prefix
// in the map when it has one (dropping the rest: that is the library's behaviour, kept for equal
// ids); otherwise each character is looked up alone.
class PrecompiledNormalizer final : public Normalizer {
 public:
  PrecompiledNormalizer(std::string_view charsmap, const std::string& where) {
    OPINE_CHECK_FORMAT(charsmap.size() >= 4, where, ": precompiled charsmap shorter than its header");
    uint32_t trie_bytes = 0;
    for (int k = 3; k >= 0; --k) trie_bytes = (trie_bytes << 8) | static_cast<uint8_t>(charsmap[k]);
    OPINE_CHECK_FORMAT(trie_bytes <= charsmap.size() - 4, where, ": precompiled charsmap's trie overruns it");
    units_.resize(trie_bytes / 4);
    for (size_t u = 0; u < units_.size(); ++u) {
      uint32_t v = 0;
      for (int k = 3; k >= 0; --k) v = (v << 8) | static_cast<uint8_t>(charsmap[4 + 4 * u + k]);
      units_[u] = v;
    }
    OPINE_CHECK_FORMAT(!units_.empty(), where, ": empty precompiled charsmap trie");
    replacements_ = std::string(charsmap.substr(4 + 4 * units_.size()));
  }

  void normalize(std::string& text) const override {
    if (text.empty()) return;
    std::string out;
    out.reserve(text.size() + text.size() / 4);
    const bool ascii =
        std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    if (ascii) {
      // In ASCII every character is a cluster of its own, except CR LF.
      for (size_t i = 0; i < text.size();) {
        const size_t len = text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n' ? 2 : 1;
        emit(std::string_view(text).substr(i, len), out);
        i += len;
      }
    } else {
      icu::BreakIterator& breaks = grapheme_breaks();
      UErrorCode status = U_ZERO_ERROR;
      UText* utext = utext_openUTF8(nullptr, text.data(), static_cast<int64_t>(text.size()), &status);
      OPINE_ASSERT(U_SUCCESS(status), "ICU UText: ", u_errorName(status));
      breaks.setText(utext, status);
      OPINE_ASSERT(U_SUCCESS(status), "ICU break iterator: ", u_errorName(status));
      // A UTF-8 UText's native indexes are byte offsets.
      for (int32_t start = breaks.first(), end = breaks.next(); end != icu::BreakIterator::DONE;
           start = end, end = breaks.next())
        emit(std::string_view(text).substr(start, end - start), out);
      utext_close(utext);
    }
    text = std::move(out);
  }

 private:
  static icu::BreakIterator& grapheme_breaks() {
    thread_local std::unique_ptr<icu::BreakIterator> it = [] {
      UErrorCode status = U_ZERO_ERROR;
      std::unique_ptr<icu::BreakIterator> b(
          icu::BreakIterator::createCharacterInstance(icu::Locale::getRoot(), status));
      OPINE_ASSERT(U_SUCCESS(status) && b, "ICU grapheme break iterator unavailable: ", u_errorName(status));
      return b;
    }();
    return *it;
  }

  void emit(std::string_view cluster, std::string& out) const {
    if (cluster.size() < 6) {
      if (const auto n = transform(cluster)) {
        out += *n;
        return;
      }
    }
    for (size_t i = 0; i < cluster.size();) {
      const size_t len = std::min(utf8_char_len(static_cast<unsigned char>(cluster[i])), cluster.size() - i);
      const std::string_view part = cluster.substr(i, len);
      if (const auto n = transform(part)) {
        out += *n;
      } else {
        out += part;
      }
      i += len;
    }
  }

  // The replacement of the shortest prefix of `chunk` the map has (darts-clone's
  // commonPrefixSearch, first result).
  std::optional<std::string_view> transform(std::string_view chunk) const {
    auto offset = [](uint32_t unit) { return (unit >> 10) << ((unit & (1u << 9)) >> 6); };
    size_t pos = offset(units_[0]);
    for (unsigned char c : chunk) {
      if (c == 0) break;
      pos ^= c;
      if (pos >= units_.size()) return std::nullopt;
      const uint32_t unit = units_[pos];
      if ((unit & ((1u << 31) | 0xFF)) != c) return std::nullopt;
      pos ^= offset(unit);
      if (pos >= units_.size()) return std::nullopt;
      if ((unit >> 8) & 1) {
        const size_t at = units_[pos] & ((1u << 31) - 1);
        if (at >= replacements_.size()) return std::nullopt;
        const size_t end = replacements_.find('\0', at);
        return std::string_view(replacements_)
            .substr(at, (end == std::string::npos ? replacements_.size() : end) - at);
      }
    }
    return std::nullopt;
  }

  std::vector<uint32_t> units_;
  std::string replacements_;
};

// ---- Pre-tokenizer and model -----------------------------------------------------------------

// WhitespaceSplit: pieces cut at Unicode whitespace, which is dropped.
class WhitespaceSplit final : public PreTokenizer {
 public:
  void split(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (const Piece& piece : pieces) {
      const std::string& s = piece.text;
      size_t start = 0;
      for (size_t i = 0; i <= s.size();) {
        const bool end = i == s.size();
        const size_t len = end ? 0 : utf8_char_len(static_cast<unsigned char>(s[i]));
        if (end || is_unicode_whitespace(utf8_decode(s, i))) {
          if (i > start) out.push_back({s.substr(start, i - start), piece.at_start && start == 0});
          start = i + len;
        }
        if (end) break;
        i += len;
      }
    }
    pieces = std::move(out);
  }
};

// The tokenizers library's Unigram (encode_optimized): best path over a byte trie of the
// vocabulary; a character no token covers alone costs min_score - 10 as the unknown token; on
// equal scores the path found first stays (so the last piece is the longest); runs of unknown
// characters are one unknown token.
class UnigramModel final : public Model {
 public:
  UnigramModel(const std::vector<std::string>& vocab, const std::vector<double>& scores, int64_t unk_id)
      : scores_(scores), unk_id_(unk_id) {
    double min_score = std::numeric_limits<double>::infinity();
    for (double s : scores) min_score = std::min(min_score, s);
    unk_score_ = min_score - 10.0;
    // A token listed twice keeps its last id (the library's hash map, filled in id order).
    for (size_t id = 0; id < vocab.size(); ++id) {
      if (vocab[id].empty()) continue;
      int32_t node = 0;
      for (unsigned char c : vocab[id]) {
        const uint64_t key = (static_cast<uint64_t>(node) << 8) | c;
        auto it = edges_.find(key);
        if (it == edges_.end()) {
          it = edges_.emplace(key, static_cast<int32_t>(terminal_.size())).first;
          terminal_.push_back(-1);
        }
        node = it->second;
      }
      terminal_[node] = static_cast<int64_t>(id);
    }
  }

  void tokenize(std::string_view word, std::vector<int64_t>& out) const override {
    struct Best {
      double score = 0;
      int64_t id = 0;
      int64_t start = -1;
    };
    const size_t n = word.size();
    std::vector<Best> best(n + 1);
    for (size_t start = 0; start < n;) {
      const size_t char_len = std::min(utf8_char_len(static_cast<unsigned char>(word[start])), n - start);
      const double here = best[start].score;
      bool single = false;
      int32_t node = 0;
      for (size_t i = start; i < n; ++i) {
        const auto it = edges_.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(word[i]));
        if (it == edges_.end()) break;
        node = it->second;
        const int64_t id = terminal_[node];
        if (id < 0) continue;
        Best& target = best[i + 1];
        const double candidate = scores_[id] + here;
        if (target.start < 0 || candidate > target.score)
          target = {candidate, id, static_cast<int64_t>(start)};
        if (i + 1 - start == char_len) single = true;
      }
      if (!single) {
        Best& target = best[start + char_len];
        const double candidate = unk_score_ + here;
        if (target.start < 0 || candidate > target.score)
          target = {candidate, unk_id_, static_cast<int64_t>(start)};
      }
      start += char_len;
    }
    const size_t first = out.size();
    for (int64_t end = static_cast<int64_t>(n); end > 0;) {
      const Best& b = best[end];
      // Consecutive unknown pieces fuse into one.
      if (!(b.id == unk_id_ && out.size() > first && out.back() == unk_id_)) out.push_back(b.id);
      end = b.start;
    }
    std::reverse(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
  }

 private:
  std::vector<double> scores_;
  int64_t unk_id_;
  double unk_score_;
  std::unordered_map<uint64_t, int32_t> edges_;
  std::vector<int64_t> terminal_ = {-1};
};

json read_json_if_there(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) return nullptr;
  return read_json_file(path);
}

}  // namespace

std::unique_ptr<Tokenizer> load_xlmr_tokenizer(const std::string& spm_model) {
  return load_xlmr_tokenizer(spm_model, json());
}

std::unique_ptr<Tokenizer> load_xlmr_tokenizer(const std::string& spm_model, const json& tokenizer_json) {
  OPINE_CHECK_KIND(std::filesystem::exists(spm_model), ErrorKind::kIo, "tokenizer not found: ", spm_model);
  sentencepiece::SentencePieceProcessor sp;
  const auto status = sp.Load(spm_model);
  OPINE_CHECK_FORMAT(status.ok(), spm_model, ": not a SentencePiece model: ", status.ToString());
  const int pieces = sp.GetPieceSize();
  OPINE_CHECK_FORMAT(
      pieces > 3 && sp.IsUnknown(0) && sp.IsControl(1) && sp.IsControl(2), spm_model,
      ": not laid out as XLM-R's sentencepiece.bpe.model (<unk>, <s>, </s> as pieces 0, 1, 2)");

  // transformers' XLMRobertaConverter: four fairseq specials, the pieces from 3 on, <mask>.
  std::vector<std::string> vocab = {"<s>", "<pad>", "</s>", "<unk>"};
  std::vector<double> scores = {0, 0, 0, 0};
  for (int i = 3; i < pieces; ++i) {
    vocab.push_back(sp.IdToPiece(i));
    scores.push_back(sp.GetScore(i));
  }
  vocab.push_back("<mask>");
  scores.push_back(0);
  const int64_t mask_id = static_cast<int64_t>(vocab.size()) - 1;

  PipelineSpec spec;
  spec.source = spm_model;
  spec.kind = "sentencepiece unigram (xlm-roberta)";
  const auto dir = std::filesystem::path(spm_model).parent_path();
  const std::string json_path = (dir / "tokenizer.json").string();
  try {
    if (tokenizer_json.is_object()) {
      const json& pairs = tokenizer_json.at("model").at("vocab");
      OPINE_CHECK_FORMAT(pairs.is_array() && pairs.size() == vocab.size(), json_path,
                         ": its Unigram vocabulary has ", pairs.size(), " pieces, ", spm_model, " makes ",
                         vocab.size());
      for (size_t id = 4; id + 1 < vocab.size(); ++id) {
        OPINE_CHECK_FORMAT(pairs[id].at(0).get<std::string>() == vocab[id], json_path, ": piece ", id,
                           " is '", pairs[id].at(0).get<std::string>(), "', ", spm_model, " makes it '",
                           vocab[id], "'");
        scores[id] = pairs[id].at(1).get<double>();
      }
      if (tokenizer_json.contains("added_tokens") && tokenizer_json["added_tokens"].is_array())
        for (const json& t : tokenizer_json["added_tokens"])
          spec.added.push_back(parse_added_token(t, t.at("id").get<int64_t>()));
    } else {
      // No tokenizer.json: the flags transformers saved in tokenizer_config.json, if any.
      const json config = read_json_if_there(dir / "tokenizer_config.json");
      if (config.is_object() && config.contains("added_tokens_decoder") &&
          config["added_tokens_decoder"].is_object())
        for (const auto& [key, value] : config["added_tokens_decoder"].items())
          spec.added.push_back(parse_added_token(value, std::stoll(key)));
    }
  } catch (const json::exception& e) {
    throw Error(ErrorKind::kFormat, json_path + " or tokenizer_config.json beside it: " + e.what());
  }
  for (const AddedToken& t : spec.added)
    OPINE_CHECK_FORMAT(t.id >= 0 && t.id < (int64_t{1} << 31), json_path, ": added token '", t.content,
                       "' has id ", t.id);
  // The five specials, as special tokens matched on the raw text, unless listed already.
  for (int64_t id : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{3}, mask_id}) {
    const bool listed =
        std::any_of(spec.added.begin(), spec.added.end(), [&](const AddedToken& t) { return t.id == id; });
    if (listed) continue;
    AddedToken t;
    t.id = id;
    t.content = vocab[id];
    t.special = true;
    spec.added.push_back(t);
  }
  spec.vocab = vocab;
  for (const AddedToken& t : spec.added) {
    if (static_cast<size_t>(t.id) >= spec.vocab.size()) spec.vocab.resize(t.id + 1);
    spec.vocab[t.id] = t.content;
  }

  const std::string proto = sp.serialized_model_proto();
  if (const auto normalizer_spec = spm_proto::bytes(proto, spm_proto::kModelNormalizerSpec, spm_model)) {
    if (const auto charsmap = spm_proto::bytes(*normalizer_spec, spm_proto::kNormalizerCharsmap, spm_model);
        charsmap && !charsmap->empty())
      spec.normalizer = std::make_unique<PrecompiledNormalizer>(*charsmap, spm_model);
  }
  std::vector<std::unique_ptr<PreTokenizer>> steps;
  steps.push_back(std::make_unique<WhitespaceSplit>());
  steps.push_back(make_metaspace(std::string(kMetaspace), PrependScheme::kAlways, /*split=*/true));
  spec.pre_tokenizer = make_sequence_pre_tokenizer(std::move(steps));
  spec.model = std::make_unique<UnigramModel>(vocab, scores, /*unk_id=*/3);
  spec.decoder = make_metaspace_decoder(std::string(kMetaspace), PrependScheme::kAlways);
  spec.prefix = {0};
  spec.suffix = {2};
  spec.bos = 0;
  spec.eos = 2;
  spec.pad = 1;
  spec.special_around = {1, 1};
  return make_bpe_tokenizer(std::move(spec));
}

}  // namespace opine::models
