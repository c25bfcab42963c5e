#include "launch/shots.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "core/error.h"
#include "core/random.h"

namespace opine::launch {

std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  for (char ch : text) {
    const unsigned char u = static_cast<unsigned char>(ch);
    if (std::isalnum(u) || ch == '#' || ch == '@' || ch == '_' || u >= 0x80) {
      word += char(std::tolower(u));
    } else if (!word.empty()) {
      words.push_back(word);
      word.clear();
    }
  }
  if (!word.empty()) words.push_back(word);
  return words;
}

ShotSelector::ShotSelector(const data::Examples& pool, int k, const std::string& mode, uint64_t seed,
                           size_t num_classes)
    : k_(k), mode_(mode) {
  OPINE_CHECK(mode == "random" || mode == "balanced" || mode == "similar",
              "eval.shot_selection: unknown mode '", mode, "' (random, balanced or similar)");
  for (const data::Example& e : pool)
    if (e.label >= 0 && !e.augmented) pool_.push_back(e);
  if (k == 0) return;
  OPINE_CHECK(int64_t(pool_.size()) >= k, "task.shots = ", k, " but the shot split has only ", pool_.size(),
              " labelled examples");
  Xoshiro256 rng(derive_seed(seed, /*stream=*/0x5407));
  if (mode == "random") {
    std::vector<size_t> order(pool_.size());
    std::iota(order.begin(), order.end(), 0);
    rng.shuffle(order);
    for (int i = 0; i < k; ++i) fixed_.push_back(pool_[order[i]]);
  } else if (mode == "balanced") {
    std::vector<std::vector<size_t>> by_class(num_classes);
    for (size_t i = 0; i < pool_.size(); ++i)
      if (size_t(pool_[i].label) < num_classes) by_class[pool_[i].label].push_back(i);
    for (auto& members : by_class) rng.shuffle(members);
    std::vector<size_t> taken(num_classes, 0);
    while (int(fixed_.size()) < k) {
      bool any = false;
      for (size_t c = 0; c < num_classes && int(fixed_.size()) < k; ++c) {
        if (taken[c] >= by_class[c].size()) continue;
        fixed_.push_back(pool_[by_class[c][taken[c]++]]);
        any = true;
      }
      OPINE_ASSERT(any, "balanced shot selection ran out of examples");
    }
    rng.shuffle(fixed_);
  } else {
    std::vector<std::vector<std::string>> docs;
    std::map<std::string, int> df;
    for (const data::Example& e : pool_) {
      docs.push_back(words_of(e.text));
      std::vector<std::string> unique = docs.back();
      std::sort(unique.begin(), unique.end());
      unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
      for (const std::string& w : unique) ++df[w];
    }
    for (const auto& [word, count] : df) {
      word_ids_.emplace(word, int(idf_.size()));
      // Smoothed idf, as scikit-learn's TfidfVectorizer: ln((1 + n) / (1 + df)) + 1.
      idf_.push_back(std::log((1.0 + double(pool_.size())) / (1.0 + count)) + 1.0);
    }
    for (const data::Example& e : pool_) pool_vectors_.push_back(tfidf(e.text));
  }
}

ShotSelector::SparseVector ShotSelector::tfidf(const std::string& text) const {
  std::map<int, double> counts;
  for (const std::string& w : words_of(text)) {
    auto it = word_ids_.find(w);
    if (it != word_ids_.end()) counts[it->second] += 1.0;  // words unseen in the pool cannot match
  }
  SparseVector v;
  double norm = 0;
  for (const auto& [id, tf] : counts) {
    v.emplace_back(id, tf * idf_[id]);
    norm += v.back().second * v.back().second;
  }
  if (norm > 0)
    for (auto& entry : v) entry.second /= std::sqrt(norm);
  return v;
}

data::Examples ShotSelector::shots_for(const data::Example& query) const {
  if (fixed()) return fixed_;
  const SparseVector q = tfidf(query.text);
  std::vector<std::pair<double, size_t>> scored;
  for (size_t i = 0; i < pool_vectors_.size(); ++i) {
    const SparseVector& d = pool_vectors_[i];
    double dot = 0;
    for (size_t a = 0, b = 0; a < q.size() && b < d.size();) {
      if (q[a].first == d[b].first)
        dot += q[a++].second * d[b++].second;
      else if (q[a].first < d[b].first)
        ++a;
      else
        ++b;
    }
    scored.emplace_back(dot, i);
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& x, const auto& y) { return x.first > y.first; });
  data::Examples shots;
  for (int i = k_ - 1; i >= 0; --i) shots.push_back(pool_[scored[i].second]);
  return shots;
}

}  // namespace opine::launch
