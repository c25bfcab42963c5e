// k-shot examples for in-context learning, chosen from a labelled pool (the train split):
//  random:   k examples drawn with the seed, the same for every query;
//  balanced: as even a share of each class as k allows (round robin over the classes, each
//            class's examples drawn with the seed), shuffled; the same for every query;
//  similar:  per query, the k pool examples nearest by TF-IDF cosine over lower-cased words,
//            the most similar placed last (next to the query); ties keep pool order.
// Fixed shots let the whole k-shot block be a prefix every prompt shares (models/scoring.h).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/example.h"

namespace opine::launch {

class ShotSelector {
 public:
  // `pool`: labelled examples (unlabelled ones are skipped). An error if it holds fewer than k.
  ShotSelector(const data::Examples& pool, int k, const std::string& mode, uint64_t seed, size_t num_classes);

  // The same shots for every query (random, balanced, or k = 0).
  bool fixed() const { return mode_ != "similar" || k_ == 0; }
  data::Examples shots_for(const data::Example& query) const;

 private:
  using SparseVector = std::vector<std::pair<int, double>>;  // (word id, weight), sorted by id, unit norm
  SparseVector tfidf(const std::string& text) const;

  int k_;
  std::string mode_;
  data::Examples pool_;
  data::Examples fixed_;
  std::unordered_map<std::string, int> word_ids_;
  std::vector<double> idf_;
  std::vector<SparseVector> pool_vectors_;
};

// Lower-cased words: runs of letters, digits, '#', '@', '_' and any non-ASCII byte.
std::vector<std::string> words_of(const std::string& text);

}  // namespace opine::launch
