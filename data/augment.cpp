#include "data/augment.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "core/random.h"
#include "data/wordnet.h"

namespace opine::data {

const std::vector<std::string>& eda_stop_words() {
  static const std::vector<std::string> words = {
      "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "your", "yours", "yourself",
      "yourselves", "he", "him", "his", "himself", "she", "her", "hers", "herself", "it", "its", "itself",
      "they", "them", "their", "theirs", "themselves", "what", "which", "who", "whom", "this", "that",
      "these", "those", "am", "is", "are", "was", "were", "be", "been", "being", "have", "has", "had",
      "having", "do", "does", "did", "doing", "a", "an", "the", "and", "but", "if", "or", "because", "as",
      "until", "while", "of", "at", "by", "for", "with", "about", "against", "between", "into", "through",
      "during", "before", "after", "above", "below", "to", "from", "up", "down", "in", "out", "on", "off",
      "over", "under", "again", "further", "then", "once", "here", "there", "when", "where", "why", "how",
      "all", "any", "both", "each", "few", "more", "most", "other", "some", "such", "no", "nor", "not",
      "only", "own", "same", "so", "than", "too", "very", "s", "t", "can", "will", "just", "don",
      "should", "now", ""};
  return words;
}

namespace {

// Independent streams: the plan (which rows get copies) and one per row.
constexpr uint64_t kPlanStream = 0x706C616E;  // "plan"
constexpr uint64_t kRowStream = 0x726F77;     // "row"
using Rng = Xoshiro256;

struct Token {
  std::string text;
  bool locked = false;  // protected: never replaced, deleted, swapped or an insertion anchor
};

bool ascii_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// A token's word without surrounding punctuation ("(Life," -> "Life"), when WordNet could know
// it (ASCII letters, inner hyphens and apostrophes); `begin`/`end` locate it in the token.
struct Core {
  size_t begin = 0, end = 0;
  std::string lower;  // empty: nothing to look up
};
Core core_of(const std::string& t) {
  Core c;
  c.begin = 0;
  while (c.begin < t.size() && !ascii_letter(t[c.begin])) ++c.begin;
  c.end = t.size();
  while (c.end > c.begin && !ascii_letter(t[c.end - 1])) --c.end;
  for (size_t i = c.begin; i < c.end; ++i) {
    const char ch = t[i];
    if (!ascii_letter(ch) && ch != '-' && ch != '\'') return Core{};
    c.lower.push_back(ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch);
  }
  return c;
}

// The synonym in the word's capitalisation: "LIFE" -> "LIVING", "Life" -> "Living".
std::string cased_like(std::string_view word, std::string syn) {
  const bool first_upper = !word.empty() && word[0] >= 'A' && word[0] <= 'Z';
  bool all_upper = word.size() > 1;
  for (char ch : word) all_upper = all_upper && !(ch >= 'a' && ch <= 'z');
  for (size_t i = 0; i < syn.size(); ++i)
    if ((all_upper || (i == 0 && first_upper)) && syn[i] >= 'a' && syn[i] <= 'z') syn[i] = static_cast<char>(syn[i] - 'a' + 'A');
  return syn;
}

class TextAugmenter {
 public:
  TextAugmenter(const AugmentOptions& o, const WordNet* wn)
      : o_(o), wn_(wn), stop_(o.stop_words.begin(), o.stop_words.end()) {}

  std::vector<Token> tokens(std::string_view text) const {
    std::vector<Token> out;
    for (std::string& t : split_tokens(text)) {
      const bool locked = o_.tweet_aware && is_protected_token(t);
      out.push_back({std::move(t), locked});
    }
    return out;
  }

  static std::string join(const std::vector<Token>& tokens) {
    std::string s;
    for (const Token& t : tokens) {
      if (!s.empty()) s.push_back(' ');
      s += t.text;
    }
    return s;
  }

  void apply(std::vector<Token>& t, AugmentOp op, Rng& rng) const {
    size_t words = 0;
    for (const Token& x : t) words += x.locked ? 0 : 1;
    const auto count = [&](double alpha) { return std::max<size_t>(1, static_cast<size_t>(alpha * words)); };
    switch (op) {
      case AugmentOp::kSynonym: return replace(t, count(o_.alpha_sr), rng);
      case AugmentOp::kInsert: return insert(t, count(o_.alpha_ri), rng);
      case AugmentOp::kSwap: return swap(t, count(o_.alpha_rs), rng);
      case AugmentOp::kDelete: return remove(t, o_.alpha_rd, rng);
    }
  }

 private:
  const std::vector<std::string>& synonyms(const std::string& word) const {
    OPINE_ASSERT(wn_ != nullptr, "synonym operations need WordNet");
    auto it = local_cache_.find(word);
    if (it == local_cache_.end()) it = local_cache_.emplace(word, wn_->synonyms(word)).first;
    return it->second;
  }
  bool anchor(const Token& x, Core& c) const {
    if (x.locked) return false;
    c = core_of(x.text);
    return !c.lower.empty() && !stop_.count(c.lower);
  }

  // EDA: distinct non-stop words in random order; replace every occurrence of each word that has
  // synonyms with one random synonym, until n words were replaced.
  void replace(std::vector<Token>& t, size_t n, Rng& rng) const {
    std::vector<std::string> words;
    std::unordered_set<std::string> seen;
    for (const Token& x : t) {
      Core c;
      if (anchor(x, c) && seen.insert(c.lower).second) words.push_back(c.lower);
    }
    rng.shuffle(words);
    size_t replaced = 0;
    for (const std::string& w : words) {
      if (replaced >= n) break;
      const auto& syns = synonyms(w);
      if (syns.empty()) continue;
      const std::string& syn = syns[rng.below(syns.size())];
      for (Token& x : t) {
        Core c;
        if (!anchor(x, c) || c.lower != w) continue;
        const std::string word = x.text.substr(c.begin, c.end - c.begin);
        x.text = x.text.substr(0, c.begin) + cased_like(word, syn) + x.text.substr(c.end);
        x.locked = true;  // replaced once: not again for another word's turn
      }
      ++replaced;
    }
    for (Token& x : t) x.locked = o_.tweet_aware && is_protected_token(x.text);
  }

  // EDA: n times, a random word's random synonym at a random place (10 tries to find a word with
  // synonyms). Anchors are non-stop, unprotected words.
  void insert(std::vector<Token>& t, size_t n, Rng& rng) const {
    for (size_t k = 0; k < n; ++k) {
      std::vector<size_t> anchors;
      for (size_t i = 0; i < t.size(); ++i) {
        Core c;
        if (anchor(t[i], c)) anchors.push_back(i);
      }
      if (anchors.empty()) return;
      const std::vector<std::string>* syns = nullptr;
      for (int attempt = 0; attempt < 10 && (!syns || syns->empty()); ++attempt)
        syns = &synonyms(core_of(t[anchors[rng.below(anchors.size())]].text).lower);
      if (syns->empty()) return;
      std::string word = (*syns)[rng.below(syns->size())];
      const size_t at = rng.below(t.size() + 1);
      t.insert(t.begin() + static_cast<std::ptrdiff_t>(at), Token{std::move(word), false});
    }
  }

  // EDA: n times, exchange two different unprotected tokens (protected ones stay in place).
  static void swap(std::vector<Token>& t, size_t n, Rng& rng) {
    std::vector<size_t> free;
    for (size_t i = 0; i < t.size(); ++i)
      if (!t[i].locked) free.push_back(i);
    if (free.size() < 2) return;
    for (size_t k = 0; k < n; ++k) {
      const size_t a = rng.below(free.size());
      size_t b = rng.below(free.size() - 1);
      if (b >= a) ++b;
      std::swap(t[free[a]].text, t[free[b]].text);
    }
  }

  // EDA: each unprotected token goes with probability p; a lone word stays, and when every word
  // went, a random one comes back.
  static void remove(std::vector<Token>& t, double p, Rng& rng) {
    std::vector<size_t> free;
    for (size_t i = 0; i < t.size(); ++i)
      if (!t[i].locked) free.push_back(i);
    if (free.size() < 2) return;
    std::vector<bool> drop(t.size(), false);
    size_t dropped = 0;
    for (size_t i : free) {
      drop[i] = rng.unit() < p;
      dropped += drop[i] ? 1 : 0;
    }
    if (dropped == free.size()) drop[free[rng.below(free.size())]] = false;
    std::vector<Token> kept;
    for (size_t i = 0; i < t.size(); ++i)
      if (!drop[i]) kept.push_back(std::move(t[i]));
    t = std::move(kept);
  }

  const AugmentOptions& o_;
  const WordNet* wn_;
  std::unordered_set<std::string> stop_;
  mutable std::unordered_map<std::string, std::vector<std::string>> local_cache_;  // one thread's
};

std::vector<AugmentOp> enabled_ops(const AugmentOptions& o) {
  std::vector<AugmentOp> ops;
  if (o.alpha_sr > 0) ops.push_back(AugmentOp::kSynonym);
  if (o.alpha_ri > 0) ops.push_back(AugmentOp::kInsert);
  if (o.alpha_rs > 0) ops.push_back(AugmentOp::kSwap);
  if (o.alpha_rd > 0) ops.push_back(AugmentOp::kDelete);
  return ops;
}

std::shared_ptr<const WordNet> wordnet_for(const AugmentOptions& o) {
  if (o.alpha_sr <= 0 && o.alpha_ri <= 0) return nullptr;
  return WordNet::shared(o.wordnet_dir);
}

// `copies` new texts for one row: operations take turns from a random start; an operation that
// changes nothing hands over to the next one (the row is still made, to keep the counts).
std::vector<std::string> augment_row(const TextAugmenter& aug, std::string_view text, size_t copies,
                                     const std::vector<AugmentOp>& ops, Rng& rng) {
  const std::vector<Token> original = aug.tokens(text);
  const std::string plain = TextAugmenter::join(original);
  std::vector<std::string> out;
  const size_t start = rng.below(ops.size());
  for (size_t j = 0; j < copies; ++j) {
    std::string made = plain;
    for (size_t k = 0; k < ops.size() && made == plain; ++k) {
      std::vector<Token> t = original;
      aug.apply(t, ops[(start + j + k) % ops.size()], rng);
      made = TextAugmenter::join(t);
    }
    out.push_back(std::move(made));
  }
  return out;
}

}  // namespace

std::string augment_text(std::string_view text, AugmentOp op, const AugmentOptions& options,
                         const WordNet* wordnet, uint64_t seed) {
  const TextAugmenter aug(options, wordnet);
  std::vector<Token> t = aug.tokens(text);
  Rng rng(seed);
  aug.apply(t, op, rng);
  return TextAugmenter::join(t);
}

std::vector<double> class_multipliers(const Examples& train, const AugmentOptions& o,
                                      const std::vector<std::string>& label_names) {
  int max_label = static_cast<int>(label_names.size()) - 1;
  for (const Example& e : train) max_label = std::max(max_label, e.label);
  std::vector<size_t> counts(static_cast<size_t>(max_label + 1), 0);
  for (const Example& e : train)
    if (e.label >= 0) ++counts[static_cast<size_t>(e.label)];
  const size_t largest = counts.empty() ? 0 : *std::max_element(counts.begin(), counts.end());
  std::vector<double> m(counts.size(), 1.0 + o.num_aug);
  if (o.balance)
    for (size_t c = 0; c < counts.size(); ++c)
      if (counts[c] > 0) m[c] = (1.0 + o.num_aug) * static_cast<double>(largest) / static_cast<double>(counts[c]);
  for (const auto& [key, multiplier] : o.per_class) {
    int index = -1;
    for (size_t i = 0; i < label_names.size(); ++i)
      if (label_names[i] == key) index = static_cast<int>(i);
    if (index < 0 && !key.empty() && key.size() < 9 &&
        std::all_of(key.begin(), key.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
      index = std::stoi(key);
    std::string known;
    for (const std::string& n : label_names) known += (known.empty() ? "" : ", ") + n;
    OPINE_CHECK_KIND(index >= 0 && index < static_cast<int>(m.size()), ErrorKind::kConfig,
                     "augment.per_class: unknown class '", key, "' (classes: ",
                     known.empty() ? "indices 0 to " + std::to_string(static_cast<int>(m.size()) - 1) : known, ")");
    m[static_cast<size_t>(index)] = multiplier;
  }
  return m;
}

Examples augment(const Examples& train, const AugmentOptions& o, const std::vector<std::string>& label_names,
                 int threads) {
  if (!o.enabled) return train;
  const std::vector<double> multipliers = class_multipliers(train, o, label_names);

  // The plan: class c (and the unlabelled rows, as class -1) gains round((m - 1) * rows) rows,
  // spread evenly; the rows that get one more are a seeded draw.
  std::map<int, std::vector<size_t>> members;
  for (size_t i = 0; i < train.size(); ++i) members[std::max(train[i].label, -1)].push_back(i);
  std::vector<size_t> copies(train.size(), 0);
  size_t total = 0;
  for (auto& [label, rows] : members) {
    const double m = label >= 0 ? multipliers[static_cast<size_t>(label)] : 1.0 + o.num_aug;
    const auto extra = static_cast<size_t>(std::llround((m - 1.0) * static_cast<double>(rows.size())));
    Rng rng(derive_seed(o.seed, kPlanStream, static_cast<uint64_t>(label + 1)));
    rng.shuffle(rows);
    for (size_t k = 0; k < rows.size(); ++k)
      copies[rows[k]] = extra / rows.size() + (k < extra % rows.size() ? 1 : 0);
    total += extra;
  }
  Examples out = train;
  if (total == 0) return out;
  const std::vector<AugmentOp> ops = enabled_ops(o);
  OPINE_CHECK_KIND(!ops.empty(), ErrorKind::kConfig,
                   "augment: every operation is off (alpha_sr, alpha_ri, alpha_rs and alpha_rd are 0)");
  const std::shared_ptr<const WordNet> wn = wordnet_for(o);

  std::vector<std::vector<std::string>> texts(train.size());
  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto work = [&] {
    const TextAugmenter aug(o, wn.get());
    try {
      for (size_t i = next++; i < train.size(); i = next++) {
        if (copies[i] == 0) continue;
        Rng rng(derive_seed(o.seed, kRowStream, i));
        texts[i] = augment_row(aug, train[i].text, copies[i], ops, rng);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
      next = train.size();
    }
  };
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const size_t n_threads = std::min<size_t>(threads <= 0 ? hw : static_cast<size_t>(threads), train.size());
  std::vector<std::thread> pool;
  for (size_t k = 1; k < n_threads; ++k) pool.emplace_back(work);
  work();
  for (std::thread& th : pool) th.join();
  if (failure) std::rethrow_exception(failure);

  out.reserve(train.size() + total);
  for (size_t i = 0; i < train.size(); ++i) {
    for (std::string& text : texts[i]) {
      Example e = train[i];
      e.text = std::move(text);
      e.augmented = true;
      out.push_back(std::move(e));
    }
  }
  return out;
}

}  // namespace opine::data
