// The BPE tokenizer that runs a PipelineSpec: special tokens found in the text, normalizer,
// pre-tokenizer, model, the add_special frame, and the decoder.
#include "models/tokenizer_bpe.h"

#include <algorithm>

#include "core/error.h"
#include "models/tokenizer_bpe_internal.h"

namespace opine::models::bpe {
namespace {

// ---- Special-token matching ------------------------------------------------------------------

// Leftmost-longest matching of many literal patterns with a byte trie (what the tokenizers
// library's Aho-Corasick with LeftmostLongest finds).
class LiteralMatcher {
 public:
  void add(std::string_view pattern, int32_t index) {
    if (pattern.empty()) return;
    int32_t node = 0;
    for (unsigned char c : pattern) {
      const uint64_t key = (static_cast<uint64_t>(node) << 8) | c;
      auto it = edges_.find(key);
      if (it == edges_.end()) {
        it = edges_.emplace(key, static_cast<int32_t>(terminal_.size())).first;
        terminal_.push_back(-1);
      }
      node = it->second;
    }
    terminal_[node] = index;
    first_[static_cast<unsigned char>(pattern[0])] = true;
  }
  bool empty() const { return terminal_.size() == 1; }

  struct Match {
    size_t start, end;
    int32_t index;
  };
  std::optional<Match> find(std::string_view text, size_t from) const {
    for (size_t start = from; start < text.size(); ++start) {
      if (!first_[static_cast<unsigned char>(text[start])]) continue;
      int32_t node = 0;
      std::optional<Match> best;
      for (size_t i = start; i < text.size(); ++i) {
        const auto it = edges_.find((static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(text[i]));
        if (it == edges_.end()) break;
        node = it->second;
        if (terminal_[node] >= 0) best = Match{start, i + 1, terminal_[node]};
      }
      if (best) return best;
    }
    return std::nullopt;
  }

 private:
  std::unordered_map<uint64_t, int32_t> edges_;
  std::vector<int32_t> terminal_ = {-1};
  std::array<bool, 256> first_{};
};

// A stretch of text, or a special token found in it.
struct Segment {
  size_t start, end;
  int64_t id;  // -1: text
};

bool is_word_char(char32_t cp) {
  static const Regex word(R"(^\w$)", "word-boundary check");
  std::string s;
  utf8_append(s, cp);
  std::vector<std::pair<size_t, size_t>> m;
  word.find_all(s, m);
  return !m.empty();
}

size_t prev_char_start(std::string_view s, size_t end) {
  size_t i = end - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

// ---- The tokenizer ---------------------------------------------------------------------------

class BpeTokenizer final : public Tokenizer {
 public:
  explicit BpeTokenizer(PipelineSpec spec) : spec_(std::move(spec)) {
    OPINE_ASSERT(spec_.model != nullptr, "BPE pipeline without a model");
    for (size_t id = 0; id < spec_.vocab.size(); ++id)
      if (!spec_.vocab[id].empty()) token_ids_.emplace(spec_.vocab[id], static_cast<int64_t>(id));
    StringSet special_contents;
    for (size_t i = 0; i < spec_.added.size(); ++i) {
      const AddedToken& t = spec_.added[i];
      OPINE_ASSERT(t.id >= 0 && static_cast<size_t>(t.id) < spec_.vocab.size(),
                   "added token id out of range");
      token_ids_[t.content] = t.id;
      if (t.special) special_contents.insert(t.content);
      if (spec_.matching == SpecialMatching::kLlama) continue;
      // A normalized token is looked for, and decodes, in its normalized spelling.
      std::string spelled = t.content;
      if (t.normalized && spec_.normalizer) spec_.normalizer->normalize(spelled);
      (t.normalized ? normalized_matcher_ : raw_matcher_).add(spelled, static_cast<int32_t>(i));
      decode_text_[t.id] = spelled;
    }
    if (spec_.matching == SpecialMatching::kLlama) {
      for (size_t i = 0; i < spec_.added.size(); ++i) llama_order_.push_back(i);
      std::stable_sort(llama_order_.begin(), llama_order_.end(), [&](size_t a, size_t b) {
        return spec_.added[a].content.size() > spec_.added[b].content.size();
      });
    }
    if (spec_.skip_on_decode) {
      skip_ = *spec_.skip_on_decode;
    } else {
      skip_.assign(spec_.vocab.size(), false);
      for (size_t id = 0; id < spec_.vocab.size(); ++id) {
        const auto it = decode_text_.find(static_cast<int64_t>(id));
        skip_[id] = special_contents.count(it != decode_text_.end() ? it->second : spec_.vocab[id]) != 0;
      }
    }
  }

  std::vector<int64_t> encode(std::string_view text, bool add_special) const override {
    check_utf8(text);
    std::vector<int64_t> out;
    out.reserve(text.size() / 3 + spec_.prefix.size() + spec_.suffix.size() + 1);
    if (add_special) out = spec_.prefix;
    if (spec_.matching == SpecialMatching::kLlama) {
      encode_llama(text, out);
    } else {
      encode_hf(text, out);
    }
    if (add_special) out.insert(out.end(), spec_.suffix.begin(), spec_.suffix.end());
    return out;
  }

  std::string decode(const std::vector<int64_t>& ids, bool skip_special) const override {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int64_t id : ids) {
      OPINE_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " is outside the vocabulary (", vocab_size(),
                  " tokens) of ", spec_.source);
      if (skip_special && skip_[id]) continue;
      const auto it = decode_text_.find(id);
      tokens.push_back(it != decode_text_.end() ? it->second : spec_.vocab[id]);
    }
    if (!spec_.decoder) {
      std::string joined;
      for (size_t i = 0; i < tokens.size(); ++i) joined += (i ? " " : "") + tokens[i];
      return joined;
    }
    spec_.decoder->decode_chain(tokens);
    std::string joined;
    for (const std::string& t : tokens) joined += t;
    return joined;
  }

  int64_t vocab_size() const override { return static_cast<int64_t>(spec_.vocab.size()); }
  std::optional<int64_t> bos_id() const override { return spec_.bos; }
  std::optional<int64_t> eos_id() const override { return spec_.eos; }
  std::optional<int64_t> pad_id() const override { return spec_.pad; }
  std::optional<int64_t> token_to_id(std::string_view token) const override {
    const auto it = token_ids_.find(token);
    if (it == token_ids_.end()) return std::nullopt;
    return it->second;
  }
  std::string id_to_token(int64_t id) const override {
    OPINE_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " is outside the vocabulary (", vocab_size(),
                " tokens) of ", spec_.source);
    return spec_.vocab[id];
  }
  std::string kind() const override { return spec_.kind; }
  std::pair<int, int> special_around() const override { return spec_.special_around; }

 private:
  // Normalizer, pre-tokenizer and model over one stretch of text without special tokens.
  void encode_text(std::string_view text, bool at_start, std::vector<int64_t>& out) const {
    if (text.empty()) return;
    std::vector<Piece> pieces;
    pieces.push_back({std::string(text), at_start});
    if (spec_.pre_tokenizer) spec_.pre_tokenizer->split(pieces);
    for (const Piece& p : pieces) spec_.model->tokenize(p.text, out);
  }

  // The tokenizers library's AddedVocabulary::find_matches.
  std::vector<Segment> split_added(std::string_view text, const LiteralMatcher& matcher) const {
    std::vector<Segment> segments;
    size_t start_offset = 0;
    if (!matcher.empty()) {
      for (size_t from = 0; from < text.size();) {
        const auto m = matcher.find(text, from);
        if (!m) break;
        const AddedToken& token = spec_.added[m->index];
        size_t start = m->start, stop = m->end;
        from = m->end;
        if (token.single_word) {
          const bool start_space =
              start == 0 || !is_word_char(utf8_decode(text, prev_char_start(text, start)));
          const bool stop_space = stop == text.size() || !is_word_char(utf8_decode(text, stop));
          if (!start_space || !stop_space) continue;
        }
        if (token.lstrip) {
          size_t s = start;
          while (s > 0) {
            const size_t p = prev_char_start(text, s);
            if (!is_unicode_whitespace(utf8_decode(text, p))) break;
            s = p;
          }
          start = std::max(s, start_offset);
        }
        if (token.rstrip) {
          while (stop < text.size() && is_unicode_whitespace(utf8_decode(text, stop)))
            stop += utf8_char_len(static_cast<unsigned char>(text[stop]));
        }
        if (start_offset < start) segments.push_back({start_offset, start, -1});
        segments.push_back({start, stop, token.id});
        start_offset = stop;
        from = std::max(from, stop);
      }
    }
    if (start_offset < text.size()) segments.push_back({start_offset, text.size(), -1});
    return segments;
  }

  void encode_hf(std::string_view text, std::vector<int64_t>& out) const {
    for (const Segment& seg : split_added(text, raw_matcher_)) {
      if (seg.id >= 0) {
        out.push_back(seg.id);
        continue;
      }
      std::string normalized(text.substr(seg.start, seg.end - seg.start));
      if (spec_.normalizer) spec_.normalizer->normalize(normalized);
      for (const Segment& inner : split_added(normalized, normalized_matcher_)) {
        if (inner.id >= 0) {
          out.push_back(inner.id);
        } else {
          encode_text(std::string_view(normalized).substr(inner.start, inner.end - inner.start),
                      seg.start == 0 && inner.start == 0, out);
        }
      }
    }
  }

  // llama.cpp's tokenizer_st_partition: each special token in turn, longest first, cuts every
  // text fragment it occurs in.
  void encode_llama(std::string_view text, std::vector<int64_t>& out) const {
    std::vector<Segment> fragments;
    if (!text.empty()) fragments.push_back({0, text.size(), -1});
    auto is_space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
    for (size_t order : llama_order_) {
      const AddedToken& token = spec_.added[order];
      std::vector<Segment> next;
      for (const Segment& f : fragments) {
        if (f.id >= 0) {
          next.push_back(f);
          continue;
        }
        size_t base = f.start, end = f.end;
        while (base < end) {
          const size_t hit = text.substr(0, end).find(token.content, base);
          if (hit == std::string_view::npos) {
            next.push_back({base, end, -1});
            break;
          }
          size_t left_end = hit;
          if (token.lstrip)
            while (left_end > base && is_space(text[left_end - 1])) --left_end;
          if (left_end > base) next.push_back({base, left_end, -1});
          next.push_back({hit, hit + token.content.size(), token.id});
          base = hit + token.content.size();
          if (token.rstrip)
            while (base < end && is_space(text[base])) ++base;
        }
      }
      fragments = std::move(next);
    }
    bool prev_special = true;
    for (const Segment& f : fragments) {
      if (f.id >= 0) {
        out.push_back(f.id);
        prev_special = true;
        continue;
      }
      std::string piece = spec_.space_prefix_after_special && prev_special ? " " : "";
      piece.append(text.substr(f.start, f.end - f.start));
      if (spec_.normalizer) spec_.normalizer->normalize(piece);
      encode_text(piece, f.start == 0, out);
      prev_special = false;
    }
  }

  PipelineSpec spec_;
  StringMap<int64_t> token_ids_;
  std::unordered_map<int64_t, std::string> decode_text_;  // added tokens' decoded spelling
  std::vector<bool> skip_;
  LiteralMatcher raw_matcher_, normalized_matcher_;
  std::vector<size_t> llama_order_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_bpe_tokenizer(PipelineSpec spec) {
  return std::make_unique<BpeTokenizer>(std::move(spec));
}

}  // namespace opine::models::bpe
