#include "data/wordnet.h"

#include <fstream>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "core/error.h"
#include "core/mapped_file.h"

namespace opine::data {
namespace {

constexpr std::array<const char*, WordNet::kNumPos> kPosNames = {"noun", "verb", "adj", "adv"};

// NLTK's MORPHOLOGICAL_SUBSTITUTIONS (WordNet's own morphy detachment rules), in its order.
using Rules = std::vector<std::pair<std::string_view, std::string_view>>;
const std::array<Rules, WordNet::kNumPos>& substitutions() {
  static const std::array<Rules, WordNet::kNumPos> rules = {
      Rules{{"s", ""}, {"ses", "s"}, {"ves", "f"}, {"xes", "x"}, {"zes", "z"}, {"ches", "ch"},
            {"shes", "sh"}, {"men", "man"}, {"ies", "y"}},
      Rules{{"s", ""}, {"ies", "y"}, {"es", "e"}, {"es", ""}, {"ed", "e"}, {"ed", ""}, {"ing", "e"}, {"ing", ""}},
      Rules{{"er", ""}, {"est", ""}, {"er", "e"}, {"est", "e"}},
      Rules{},
  };
  return rules;
}

std::vector<std::string_view> split_spaces(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

bool parse_uint(std::string_view s, uint64_t& out, int base = 10) {
  if (s.empty()) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (base == 16 && c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (base == 16 && c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return false;
    v = v * base + d;
    if (v > 0xFFFFFFFFull) return false;
  }
  out = v;
  return true;
}

std::filesystem::path require_file(const std::filesystem::path& dir, const std::string& name) {
  const std::filesystem::path p = dir / name;
  OPINE_CHECK_KIND(std::filesystem::is_regular_file(p), ErrorKind::kIo, "WordNet file ", p.string(),
                   " is missing (synonym replacement and random insertion need WordNet 3.0: install "
                   "Debian's wordnet-base, or set augment.wordnet_dir, or set augment.alpha_sr and "
                   "augment.alpha_ri to 0)");
  return p;
}

// index.<pos>: "lemma pos synset_cnt p_cnt [ptr_symbol]*p_cnt sense_cnt tagsense_cnt offset*synset_cnt".
// The license header lines start with spaces.
void read_index(const std::filesystem::path& path, std::unordered_map<std::string, std::vector<uint32_t>>& out) {
  std::ifstream in(path);
  OPINE_CHECK_KIND(in, ErrorKind::kIo, "cannot open ", path.string());
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line[0] == ' ') continue;
    const auto f = split_spaces(line);
    uint64_t synsets = 0, pointers = 0;
    bool ok = f.size() >= 4 && parse_uint(f[2], synsets) && parse_uint(f[3], pointers) &&
              f.size() == 4 + pointers + 2 + synsets;
    std::vector<uint32_t> offsets;
    for (size_t i = f.size() - (ok ? synsets : 0); ok && i < f.size(); ++i) {
      uint64_t off = 0;
      ok = parse_uint(f[i], off);
      offsets.push_back(static_cast<uint32_t>(off));
    }
    OPINE_CHECK_FORMAT(ok, path.string(), ":", number, ": not a WordNet index line");
    out.emplace(std::string(f[0]), std::move(offsets));
  }
}

// <pos>.exc: "inflected base [base...]".
void read_exceptions(const std::filesystem::path& path,
                     std::unordered_map<std::string, std::vector<std::string>>& out) {
  std::ifstream in(path);
  OPINE_CHECK_KIND(in, ErrorKind::kIo, "cannot open ", path.string());
  std::string line;
  while (std::getline(in, line)) {
    const auto f = split_spaces(line);
    if (f.size() < 2) continue;
    auto& bases = out[std::string(f[0])];
    for (size_t i = 1; i < f.size(); ++i) bases.emplace_back(f[i]);
  }
}

// EDA's clean-up of a lemma name: '_' and '-' are spaces, lowercase, letters and spaces only
// (runs of spaces collapsed, so that "st._john's_wort" becomes "st johns wort").
std::string clean_lemma(std::string_view name) {
  std::string out;
  bool space = false;
  for (char c : name) {
    if (c == '_' || c == '-' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c < 'a' || c > 'z') continue;
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

WordNet::WordNet(const std::filesystem::path& dir) : dir_(dir) {
  for (int p = 0; p < kNumPos; ++p) {
    const std::string pos = kPosNames[p];
    read_index(require_file(dir, "index." + pos), index_[p]);
    read_exceptions(require_file(dir, pos + ".exc"), exceptions_[p]);
    data_[p] = MappedFile::open(require_file(dir, "data." + pos).string());
  }
}

WordNet::~WordNet() = default;

std::shared_ptr<const WordNet> WordNet::shared(const std::filesystem::path& dir) {
  static std::mutex mutex;
  static std::unordered_map<std::string, std::shared_ptr<const WordNet>> loaded;
  const std::string key = std::filesystem::absolute(dir).lexically_normal().string();
  std::lock_guard<std::mutex> lock(mutex);
  auto it = loaded.find(key);
  if (it != loaded.end()) return it->second;
  auto wn = std::make_shared<const WordNet>(dir);
  loaded.emplace(key, wn);
  return wn;
}

const std::vector<uint32_t>* WordNet::synset_offsets(const std::string& lemma, Pos pos) const {
  auto it = index_[pos].find(lemma);
  return it == index_[pos].end() ? nullptr : &it->second;
}

std::vector<std::string> WordNet::base_forms(const std::string& word, Pos pos) const {
  std::vector<std::string> result;
  std::unordered_set<std::string> seen;
  auto keep_known = [&](const std::vector<std::string>& forms) {
    for (const std::string& f : forms)
      if (index_[pos].count(f) && seen.insert(f).second) result.push_back(f);
  };
  auto apply_rules = [&](const std::vector<std::string>& forms) {
    std::vector<std::string> out;
    for (const std::string& f : forms)
      for (const auto& [old_suffix, new_suffix] : substitutions()[pos])
        if (f.size() >= old_suffix.size() && f.ends_with(old_suffix))
          out.push_back(f.substr(0, f.size() - old_suffix.size()) + std::string(new_suffix));
    return out;
  };
  // As NLTK: an exception list entry decides alone; otherwise the word and one round of rules;
  // then further rounds only while nothing matched (each round shortens or keeps the forms, so
  // the loop ends).
  auto exc = exceptions_[pos].find(word);
  if (exc != exceptions_[pos].end()) {
    std::vector<std::string> forms{word};
    forms.insert(forms.end(), exc->second.begin(), exc->second.end());
    keep_known(forms);
    return result;
  }
  std::vector<std::string> forms = apply_rules({word});
  std::vector<std::string> first{word};
  first.insert(first.end(), forms.begin(), forms.end());
  keep_known(first);
  for (int round = 0; result.empty() && !forms.empty() && round < 16; ++round) {
    forms = apply_rules(forms);
    keep_known(forms);
  }
  return result;
}

// data.<pos> line: "offset lex_filenum ss_type w_cnt(hex) word lex_id [word lex_id]... p_cnt ...".
std::vector<std::string> WordNet::synset_words(Pos pos, uint32_t offset) const {
  const MappedFile& file = *data_[pos];
  const char* base = reinterpret_cast<const char*>(file.data());
  OPINE_CHECK_FORMAT(offset < file.size(), file.path(), ": synset offset ", offset, " is past the end");
  std::string_view rest(base + offset, file.size() - offset);
  const std::string_view line = rest.substr(0, rest.find('\n'));
  const auto f = split_spaces(line.substr(0, line.find(" | ")));
  uint64_t declared = 0, count = 0;
  bool ok = f.size() >= 4 && parse_uint(f[0], declared) && declared == offset && parse_uint(f[3], count, 16) &&
            f.size() >= 4 + 2 * count;
  OPINE_CHECK_FORMAT(ok, file.path(), ": no synset at byte offset ", offset);
  std::vector<std::string> words;
  for (uint64_t i = 0; i < count; ++i) {
    std::string_view w = f[4 + 2 * i];
    // Adjectives may carry a syntactic marker: "(a)", "(p)" or "(ip)".
    if (pos == kAdj && w.ends_with(')')) {
      const size_t open = w.rfind('(');
      if (open != std::string_view::npos) w = w.substr(0, open);
    }
    words.emplace_back(w);
  }
  return words;
}

std::vector<std::string> WordNet::compute_synonyms(const std::string& word) const {
  std::vector<std::string> out;
  std::unordered_set<std::string> seen{clean_lemma(word)};  // the word itself is no synonym
  for (int p = 0; p < kNumPos; ++p) {
    const Pos pos = static_cast<Pos>(p);
    for (const std::string& form : base_forms(word, pos)) {
      for (uint32_t offset : *synset_offsets(form, pos)) {
        for (const std::string& w : synset_words(pos, offset)) {
          std::string s = clean_lemma(w);
          if (!s.empty() && seen.insert(s).second) out.push_back(std::move(s));
        }
      }
    }
  }
  return out;
}

std::vector<std::string> WordNet::synonyms(const std::string& word) const {
  std::string key = word;
  for (char& c : key)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  // Index lemmas join words with '_'.
  for (char& c : key)
    if (c == ' ') c = '_';
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
  }
  std::vector<std::string> result = compute_synonyms(key);
  std::lock_guard<std::mutex> lock(cache_mutex_);
  return cache_.emplace(key, std::move(result)).first->second;
}

}  // namespace opine::data
