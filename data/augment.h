// Training-set augmentation: EDA (Wei & Zou 2019) made tweet-aware, seeded and reproducible.
//
//   augment:
//     enabled: true
//     seed: 13
//     num_aug: 2            # new rows per original row (fractions: that share of rows gets one)
//     alpha_sr: 0.1         # synonym replacement (WordNet): n = max(1, alpha * words) words
//     alpha_ri: 0.1         # random insertion of a synonym of a word: n times
//     alpha_rs: 0.1         # random swap of two words: n times
//     alpha_rd: 0.1         # random deletion: each word with probability alpha
//     balance: true         # every class ends with as many rows as the largest (times 1 + num_aug)
//     per_class: {favor: 3} # or a class index; the class ends with ~3x its rows
//
// Each new row is one original row with one operation applied (the operations take turns from a
// random start, as EDA draws one per sentence); 0 turns an operation off. Tweet-aware (the
// default): @mentions, #hashtags, URLs, HTML entities, emoji and tokens without letters are never
// replaced, deleted, swapped or used as insertion anchors, so they keep their relative order.
// Words keep surrounding punctuation ("life," -> "living,") and their capitalisation. Unlike EDA,
// the text is not lowercased or stripped of punctuation, stop words are never insertion anchors,
// and a deletion always leaves at least one word.
//
// The result is the same for a seed on any number of threads and any standard library: each row
// draws from its own generator, seeded from (seed, row index), with hand-written uniform draws.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "data/example.h"

namespace opine::data {

class WordNet;

// EDA's stop-word list (eda_nlp/code/eda.py): never replaced by synonyms.
const std::vector<std::string>& eda_stop_words();

struct AugmentOptions {
  bool enabled = false;
  uint64_t seed = 0;
  double num_aug = 1.0;
  double alpha_sr = 0.1;
  double alpha_ri = 0.1;
  double alpha_rs = 0.1;
  double alpha_rd = 0.1;
  std::map<std::string, double> per_class;
  bool balance = false;
  bool tweet_aware = true;
  std::filesystem::path wordnet_dir = "/usr/share/wordnet";
  std::vector<std::string> stop_words = eda_stop_words();

  template <class V>
  void visit(V& v) {
    v("enabled", enabled, "augment the training split (never validation or test)");
    v("seed", seed, "seed of every random choice; the same seed gives the same rows");
    v("num_aug", num_aug, "new rows per original row (0.5: every other row gets one)", config::at_least(0.0));
    v("alpha_sr", alpha_sr, "synonym replacement: share of words replaced (0: off)", config::in_range(0.0, 1.0));
    v("alpha_ri", alpha_ri, "random insertion: share of words inserted (0: off)", config::in_range(0.0, 1.0));
    v("alpha_rs", alpha_rs, "random swap: share of words swapped (0: off)", config::in_range(0.0, 1.0));
    v("alpha_rd", alpha_rd, "random deletion: probability of deleting each word (0: off)",
      config::in_range(0.0, 1.0));
    v("per_class", per_class, "class name or index -> rows it ends with, as a multiple of its rows",
      config::at_least(1.0));
    v("balance", balance, "multiply each class up to the largest one (per_class wins where given)");
    v("tweet_aware", tweet_aware, "never touch mentions, hashtags, URLs, emoji or symbols");
    v("wordnet_dir", wordnet_dir, "WordNet 3.0 data files (Debian's wordnet-base)");
    v("stop_words", stop_words, "words synonym replacement and insertion leave alone");
  }
};

enum class AugmentOp { kSynonym, kInsert, kSwap, kDelete };

// The original rows, then the new ones (augmented = true; label, topic, target, row and source
// of their original), grouped by original in its order. Unchanged when !options.enabled.
// `label_names` resolves per_class names; `threads` 0 means one per core. Throws opine::Error
// (kConfig) for an unknown per_class class or when every operation is off, (kIo) naming the
// file when WordNet is needed (alpha_sr or alpha_ri > 0) but missing.
Examples augment(const Examples& train, const AugmentOptions& options,
                 const std::vector<std::string>& label_names = {}, int threads = 1);

// How many rows each class ends with, multiplier per label index (labels 0..max seen); rows
// without a label (-1) use 1 + num_aug.
std::vector<double> class_multipliers(const Examples& train, const AugmentOptions& options,
                                      const std::vector<std::string>& label_names);

// One operation on one text with a generator seeded by `seed`. `wordnet` may be null when the
// operation needs none (swap, deletion). Returns the text unchanged when nothing applies.
std::string augment_text(std::string_view text, AugmentOp op, const AugmentOptions& options,
                         const WordNet* wordnet, uint64_t seed);

// A whitespace-separated token that tweet-aware augmentation leaves alone: an @mention or
// #hashtag, a URL, an HTML entity (&amp;), anything with an emoji, or a token without letters.
bool is_protected_token(std::string_view token);

// The text's tokens, split on ASCII whitespace.
std::vector<std::string> split_tokens(std::string_view text);

}  // namespace opine::data
