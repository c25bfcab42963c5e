// The merge models of the BPE tokenizers: Hugging Face's BPE (merges by rank, with unknown
// tokens, byte fallback and a shared word cache) and llama.cpp's SentencePiece-style merging by
// token score for GGUF "llama" vocabularies.
#include <algorithm>
#include <mutex>
#include <queue>

#include "core/error.h"
#include "models/tokenizer_bpe_internal.h"
#include "models/vocab_index.h"

namespace opine::models::bpe {
namespace {

// ---- Word cache ------------------------------------------------------------------------------

// Pre-token -> ids, shared by all threads: one mutex per shard keeps contention low when
// encode_batch runs many threads. A full shard stops taking words (the common ones come first).
class WordCache {
 public:
  static constexpr size_t kShards = 64;
  static constexpr size_t kPerShard = 2048;     // 128k words in all: ~15 MB at most
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
        if (const MergeInfo* m = merge_of(symbols[cur.prev].id, cur.id))
          queue.push({m->rank, cur.prev, m->result});
      }
      if (cur.next >= 0) {
        if (const MergeInfo* m = merge_of(cur.id, symbols[cur.next].id))
          queue.push({m->rank, top.pos, m->result});
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
  SpmModel(std::vector<std::string> vocab, std::vector<float> scores, std::optional<int32_t> unk_id,
           const std::vector<bool>& text_pieces)
      : vocab_(std::move(vocab)), scores_(std::move(scores)), unk_id_(unk_id) {
    OPINE_ASSERT(text_pieces.empty() || text_pieces.size() == vocab_.size(), "text_pieces does not match the vocabulary");
    for (size_t id = 0; id < vocab_.size(); ++id)
      if (text_pieces.empty() || text_pieces[id]) ids_.insert(vocab_[id], static_cast<int32_t>(id));
    // The byte tokens are not text pieces: they are looked up among all tokens.
    VocabIndex every;
    if (!text_pieces.empty())
      for (size_t id = 0; id < vocab_.size(); ++id) every.insert(vocab_[id], static_cast<int32_t>(id));
    const VocabIndex& names = text_pieces.empty() ? ids_ : every;
    static const char* kHex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      // <0xXX> first, else the byte as a one-character token (llama.cpp's byte_to_token).
      const std::string name = std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
      const int32_t* id = names.find(name);
      if (id == nullptr) id = ids_.find(std::string(1, static_cast<char>(b)));
      byte_ids_[b] = id != nullptr ? *id : unk_id_.value_or(-1);
    }
    // Merges only make vocabulary pieces, so none can cross a place where the text has ▁ after
    // another character unless some piece has such a pair. Without one, the text splits there into
    // words that merge alone, and a word seen before is taken from the cache.
    splits_at_words_ = std::none_of(vocab_.begin(), vocab_.end(), has_meta_after_other);
  }

  void tokenize(std::string_view text, std::vector<int64_t>& out) const override {
    if (!splits_at_words_) return merge(text, out);
    auto word = [&](std::string_view w) {
      if (w.empty() || cache_.get(w, out)) return;
      const size_t before = out.size();
      merge(w, out);
      cache_.put(w, out.data() + before, out.size() - before);
    };
    size_t start = 0;
    for (size_t i = 1; i < text.size(); ++i) {
      if (text.compare(i, kMetaspace.size(), kMetaspace) != 0 || ends_with_meta(text.substr(0, i))) continue;
      word(text.substr(start, i - start));
      start = i;
    }
    word(text.substr(start));
  }

 private:
  static bool ends_with_meta(std::string_view s) {
    return s.size() >= kMetaspace.size() && s.compare(s.size() - kMetaspace.size(), kMetaspace.size(), kMetaspace) == 0;
  }
  // Whether `piece` has ▁ right after a character that is not ▁.
  static bool has_meta_after_other(std::string_view piece) {
    for (size_t at = piece.find(kMetaspace, 1); at != std::string_view::npos; at = piece.find(kMetaspace, at + 1))
      if (!ends_with_meta(piece.substr(0, at))) return true;
    return false;
  }

  // llama.cpp's SentencePiece merge: the highest-scoring adjacent pair that is a piece, leftmost
  // first, until none is left.
  void merge(std::string_view text, std::vector<int64_t>& out) const {
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
      const int32_t* id = ids_.find(joined);
      if (id == nullptr) return;
      queue.push({left, right, scores_[*id], joined.size()});
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
      if (const int32_t* id = ids_.find(piece)) {
        out.push_back(*id);
        continue;
      }
      for (unsigned char c : piece)
        if (byte_ids_[c] >= 0) out.push_back(byte_ids_[c]);
    }
  }

  std::vector<std::string> vocab_;
  std::vector<float> scores_;
  std::optional<int32_t> unk_id_;
  VocabIndex ids_;
  std::array<int32_t, 256> byte_ids_;
  bool splits_at_words_ = false;
  WordCache cache_;
};

}  // namespace

std::unique_ptr<Model> make_bpe_model(std::vector<std::string> vocab, const std::vector<Merge>& merges,
                                      BpeOptions options, bool keep_first_duplicate) {
  return std::make_unique<BpeModel>(std::move(vocab), merges, std::move(options), keep_first_duplicate);
}

std::unique_ptr<Model> make_spm_model(std::vector<std::string> vocab, std::vector<float> scores,
                                      std::optional<int32_t> unk_id, std::vector<bool> text_pieces) {
  return std::make_unique<SpmModel>(std::move(vocab), std::move(scores), unk_id, text_pieces);
}

}  // namespace opine::models::bpe
