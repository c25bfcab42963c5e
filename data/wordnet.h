// WordNet 3.0 synonyms, read straight from the Princeton data files (Debian's wordnet-base:
// /usr/share/wordnet/{index,data}.{noun,verb,adj,adv} and *.exc), for data/augment.
//
// A lookup behaves like EDA's get_synonyms over NLTK: the word is lowercased, reduced to its base
// forms per part of speech the way NLTK's morphy does (exception lists, then suffix rules), and
// every lemma of every synset of those forms is a synonym, lowercased, with '_' and '-' as
// spaces and only letters and spaces kept. The word itself is left out. Unlike EDA's Python set,
// the order is fixed: nouns, verbs, adjectives, adverbs; senses in WordNet's order; first
// appearance wins.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace opine {
class MappedFile;
}

namespace opine::data {

class WordNet {
 public:
  enum Pos { kNoun = 0, kVerb = 1, kAdj = 2, kAdv = 3 };
  static constexpr int kNumPos = 4;

  // Loads the index and exception files and maps the data files. A missing file is an
  // opine::Error (kIo) naming it; a malformed line is kFormat naming the file and line.
  explicit WordNet(const std::filesystem::path& dir);
  ~WordNet();
  WordNet(const WordNet&) = delete;
  WordNet& operator=(const WordNet&) = delete;

  // One instance per folder for the whole process (loading takes a fraction of a second).
  static std::shared_ptr<const WordNet> shared(const std::filesystem::path& dir);

  // Synonyms of `word` (any case); empty when WordNet does not know it. Thread-safe; cached.
  std::vector<std::string> synonyms(const std::string& word) const;

  // The base forms of a lowercase word for one part of speech, as NLTK's morphy finds them.
  std::vector<std::string> base_forms(const std::string& word, Pos pos) const;

  // Byte offsets (in data.<pos>) of the synsets of a base form, in sense order.
  const std::vector<uint32_t>* synset_offsets(const std::string& lemma, Pos pos) const;

  // The words of the synset at `offset` in data.<pos>, as the file spells them
  // ("domestic_dog", "galore(ip)" with the adjective marker removed).
  std::vector<std::string> synset_words(Pos pos, uint32_t offset) const;

  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::vector<std::string> compute_synonyms(const std::string& word) const;

  std::filesystem::path dir_;
  // lemma -> synset offsets, per part of speech.
  std::array<std::unordered_map<std::string, std::vector<uint32_t>>, kNumPos> index_;
  // inflected form -> base forms, per part of speech (noun.exc, verb.exc, adj.exc, adv.exc).
  std::array<std::unordered_map<std::string, std::vector<std::string>>, kNumPos> exceptions_;
  std::array<std::shared_ptr<MappedFile>, kNumPos> data_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<std::string>> cache_;
};

}  // namespace opine::data
