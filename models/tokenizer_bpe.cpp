// The BPE tokenizer that runs a PipelineSpec: special tokens, normalizer, pre-tokenizer, model,
// post-processing frame and decoder; and the two merge models (Hugging Face BPE by rank,
// llama.cpp SentencePiece by score).
#include <algorithm>
#include <queue>

#include "core/error.h"
#include "models/tokenizer_bpe.h"
#include "models/tokenizer_bpe_internal.h"

namespace opine::models::bpe {
namespace {

// ---- Word cache ------------------------------------------------------------------------------

// Pre-token -> ids, shared by all threads: one mutex per shard keeps contention low when
// encode_batch runs many threads. A full shard stops taking words (the common ones come first).
class WordCache {
 public:
  static constexpr size_t kShards = 64;
  static constexpr size_t kPerShard = 4096;
  static constexpr size_t kMaxWordBytes = 128;  // longer words are rare; not worth the memory

  bool get(std::string_view word, std::vector<int64_t>& out) const {
    if (word.size() > kMaxWordBytes) return false;
    const size_t h = StringHash{}(word);
    Shard& shard = shards_[h % kShards];
    std::lock_guard lock(shard.mutex);
    const auto it = shard.map.find(word);
    if (it == shard.map.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }
  void put(std::string_view word, const int64_t* ids, size_t n) const {
    if (word.size() > kMaxWordBytes) return;
    const size_t h = StringHash{}(word);
    Shard& shard = shards_[h % kShards];
    std::lock_guard lock(shard.mutex);
    if (shard.map.size() >= kPerShard) return;
    shard.map.emplace(std::string(word), std::vector<int32_t>(ids, ids + n));
  }

 private:
  struct Shard {
    std::mutex mutex;
    StringMap<std::vector<int32_t>> map;
  };
  mutable std::array<Shard, kShards> shards_;
};

// ---- Hugging Face BPE ------------------------------------------------------------------------

class BpeModel final : public Model {
 public:
  BpeModel(std::vector<std::string> vocab, const std::vector<Merge>& merges, BpeOptions options,
           bool keep_first_duplicate)
      : options_(std::move(options)) {
    for (size_t id = 0; id < vocab.size(); ++id)
      if (!vocab[id].empty()) ids_.emplace(vocab[id], static_cast<int32_t>(id));
    // Single characters resolve without building a string (the common case without affixes).
    for (size_t id = 0; id < vocab.size(); ++id) {
      const std::string& t = vocab[id];
      if (!t.empty() && utf8_char_len(static_cast<unsigned char>(t[0])) == t.size())
        char_ids_.emplace(utf8_decode(t, 0), static_cast<int32_t>(id));
    }
    byte_ids_.fill(-1);
    if (options_.byte_fallback) {
      static const char* kHex = "0123456789ABCDEF";
      for (int b = 0; b < 256; ++b) {
        const std::string name = std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
        if (const auto it = ids_.find(name); it != ids_.end()) byte_ids_[b] = it->second;
      }
    }
    merges_.reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const Merge& m = merges[rank];
      const uint64_t key = pair_key(m.left, m.right);
      const MergeInfo info{static_cast<int32_t>(rank), m.result};
      if (keep_first_duplicate) {
        merges_.emplace(key, info);
      } else {
        merges_[key] = info;
      }
    }
  }

  void tokenize(std::string_view word, std::vector<int64_t>& out) const override {
    if (word.empty()) return;
    if (options_.ignore_merges) {
      if (const auto it = ids_.find(word); it != ids_.end()) {
        out.push_back(it->second);
        return;
      }
    }
    if (cache_.get(word, out)) return;
    const size_t before = out.size();
    merge_word(word, out);
    cache_.put(word, out.data() + before, out.size() - before);
  }

 private:
  struct MergeInfo {
    int32_t rank;
    int32_t result;
  };
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    size_t len;  // 0 once merged into its left neighbour
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  std::optional<int32_t> lookup_char(std::string_view ch, bool first, bool last) const {
    if (options_.continuing_subword_prefix.empty() && options_.end_of_word_suffix.empty()) {
      const auto it = char_ids_.find(utf8_decode(ch, 0));
      if (it == char_ids_.end()) return std::nullopt;
      return it->second;
    }
    std::string s;
    if (!first) s += options_.continuing_subword_prefix;
    s += ch;
    if (last) s += options_.end_of_word_suffix;
    const auto it = ids_.find(s);
    if (it == ids_.end()) return std::nullopt;
    return it->second;
  }

  // The tokenizers library's BPE::merge_word and Word::merge_all, step for step, so unknown
  // characters, byte fallback and stale queue entries behave the same.
  void merge_word(std::string_view w, std::vector<int64_t>& out) const {
    std::vector<Symbol> symbols;
    symbols.reserve(w.size());
    auto add = [&](int32_t id, size_t len) {
      const int32_t index = static_cast<int32_t>(symbols.size());
      if (index > 0) symbols.back().next = index;
      symbols.push_back({id, index - 1, -1, len});
    };
    // A pending unknown token and its byte length (fused with the next unknown character).
    bool unk_pending = false;
    int32_t unk_id = 0;
    size_t unk_len = 0;
    auto flush_unk = [&] {
      if (unk_pending) add(unk_id, unk_len);
      unk_pending = false;
    };
    for (size_t i = 0; i < w.size();) {
      const size_t len = std::min(utf8_char_len(static_cast<unsigned char>(w[i])), w.size() - i);
      const std::string_view ch = w.substr(i, len);
      const bool first = i == 0, last = i + len == w.size();
      i += len;
      if (const auto id = lookup_char(ch, first, last)) {
        flush_unk();
        add(*id, len);
        continue;
      }
      if (options_.byte_fallback) {
        // The library looks up the bytes of the affixed string; affixes with byte fallback do not
        // occur in real tokenizers, so the bare character's bytes stand in for it.
        bool all = true;
        for (unsigned char b : ch) all = all && byte_ids_[b] >= 0;
        if (all) {
          for (unsigned char b : ch) add(byte_ids_[b], 1);
          continue;  // a pending unknown token stays pending, as in the library
        }
      }
      if (options_.unk_id) {
        if (unk_pending && options_.fuse_unk) {
          unk_len += len;
        } else {
          flush_unk();
          unk_pending = true, unk_id = *options_.unk_id, unk_len = len;
        }
      }
    }
    flush_unk();

    struct Candidate {
      int32_t rank, pos, result;
      // Lowest rank first, then leftmost.
      bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Candidate> queue;
    auto merge_of = [&](int32_t a, int32_t b) -> const MergeInfo* {
      const auto it = merges_.find(pair_key(a, b));
      return it == merges_.end() ? nullptr : &it->second;
    };
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      if (const MergeInfo* m = merge_of(symbols[i].id, symbols[i + 1].id))
        queue.push({m->rank, static_cast<int32_t>(i), m->result});
    }
    while (!queue.empty()) {
      const Candidate top = queue.top();
      queue.pop();
      Symbol& cur = symbols[top.pos];
      if (cur.len == 0 || cur.next == -1) continue;
      const int32_t next_pos = cur.next;
      const Symbol right = symbols[next_pos];
      const MergeInfo* still = merge_of(cur.id, right.id);
      if (still == nullptr || still->result != top.result) continue;  // a stale entry
      cur.id = top.result;
      cur.len += right.len;
      cur.next = right.next;
      symbols[next_pos].len = 0;
      if (right.next >= 0) symbols[right.next].prev = top.pos;
      if (cur.prev >= 0) {
        if (const MergeInfo* m = merge_of(symbols[cur.prev].id, cur.id)) queue.push({m->rank, cur.prev, m->result});
      }
      if (cur.next >= 0) {
        if (const MergeInfo* m = merge_of(cur.id, symbols[cur.next].id)) queue.push({m->rank, top.pos, m->result});
      }
    }
    for (const Symbol& s : symbols)
      if (s.len != 0) out.push_back(s.id);
  }

  BpeOptions options_;
  StringMap<int32_t> ids_;
  std::unordered_map<char32_t, int32_t> char_ids_;
  std::array<int32_t, 256> byte_ids_;
  std::unordered_map<uint64_t, MergeInfo> merges_;
  WordCache cache_;
};

// ---- llama.cpp SentencePiece -----------------------------------------------------------------

class SpmModel final : public Model {
 public:
  SpmModel(std::vector<std::string> vocab, std::vector<float> scores, std::optional<int32_t> unk_id)
      : vocab_(std::move(vocab)), scores_(std::move(scores)), unk_id_(unk_id) {
    for (size_t id = 0; id < vocab_.size(); ++id) ids_.emplace(vocab_[id], static_cast<int32_t>(id));
    static const char* kHex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      // <0xXX> first, else the byte as a one-character token (llama.cpp's byte_to_token).
      const std::string name = std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
      auto it = ids_.find(name);
      if (it == ids_.end()) it = ids_.find(std::string(1, static_cast<char>(b)));
      byte_ids_[b] = it != ids_.end() ? it->second : unk_id_.value_or(-1);
    }
  }

  void tokenize(std::string_view text, std::vector<int64_t>& out) const override {
    struct Symbol {
      int32_t prev, next;
      size_t start, n;
    };
    std::vector<Symbol> symbols;
    for (size_t offs = 0; offs < text.size();) {
      const size_t len = std::min(utf8_char_len(static_cast<unsigned char>(text[offs])), text.size() - offs);
      const int32_t index = static_cast<int32_t>(symbols.size());
      symbols.push_back({index - 1, offs + len == text.size() ? -1 : index + 1, offs, len});
      offs += len;
    }
    struct Bigram {
      int32_t left, right;
      float score;
      size_t size;
      // Highest score first, then leftmost.
      bool operator<(const Bigram& o) const { return score != o.score ? score < o.score : left > o.left; }
    };
    std::priority_queue<Bigram> queue;
    auto try_add = [&](int32_t left, int32_t right) {
      if (left < 0 || right < 0) return;
      const std::string_view joined = text.substr(symbols[left].start, symbols[left].n + symbols[right].n);
      const auto it = ids_.find(joined);
      if (it == ids_.end()) return;
      queue.push({left, right, scores_[it->second], joined.size()});
    };
    for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);
    while (!queue.empty()) {
      const Bigram b = queue.top();
      queue.pop();
      Symbol& left = symbols[b.left];
      Symbol& right = symbols[b.right];
      if (left.n == 0 || right.n == 0 || left.n + right.n != b.size) continue;
      left.n += right.n;
      right.n = 0;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = b.left;
      try_add(left.prev, b.left);
      try_add(b.left, left.next);
    }
    // Every merged symbol is a token; a character that is not is spelled as byte tokens.
    for (int32_t i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) {
      const std::string_view piece = text.substr(symbols[i].start, symbols[i].n);
      if (const auto it = ids_.find(piece); it != ids_.end()) {
        out.push_back(it->second);
        continue;
      }
      for (unsigned char c : piece)
        if (byte_ids_[c] >= 0) out.push_back(byte_ids_[c]);
    }
  }

 private:
  std::vector<std::string> vocab_;
  std::vector<float> scores_;
  std::optional<int32_t> unk_id_;
  StringMap<int32_t> ids_;
  std::array<int32_t, 256> byte_ids_;
};

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
      OPINE_ASSERT(t.id >= 0 && static_cast<size_t>(t.id) < spec_.vocab.size(), "added token id out of range");
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
          const bool start_space = start == 0 || !is_word_char(utf8_decode(text, prev_char_start(text, start)));
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

std::unique_ptr<Model> make_bpe_model(std::vector<std::string> vocab, const std::vector<Merge>& merges,
                                      BpeOptions options, bool keep_first_duplicate) {
  return std::make_unique<BpeModel>(std::move(vocab), merges, std::move(options), keep_first_duplicate);
}

std::unique_ptr<Model> make_spm_model(std::vector<std::string> vocab, std::vector<float> scores,
                                      std::optional<int32_t> unk_id) {
  return std::make_unique<SpmModel>(std::move(vocab), std::move(scores), unk_id);
}

std::unique_ptr<Tokenizer> make_bpe_tokenizer(PipelineSpec spec) { return std::make_unique<BpeTokenizer>(std::move(spec)); }

}  // namespace opine::models::bpe
