// Training-set augmentation: reproducible for a seed, tweet-aware (protected tokens survive every
// operation), per-class counts as configured, synonyms as WordNet's data files list them.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/config.h"
#include "core/error.h"
#include "data/augment.h"
#include "data/wordnet.h"
#include "test_util.h"

namespace opine::data {
namespace {

const std::filesystem::path kWordNetDir = "/usr/share/wordnet";

#define REQUIRE_WORDNET()                                                                         \
  do {                                                                                            \
    if (!std::filesystem::exists(kWordNetDir / "data.noun"))                                      \
      GTEST_SKIP() << "WordNet is not installed in " << kWordNetDir << " (Debian's wordnet-base)"; \
  } while (0)

const Examples& tweets() {
  static const Examples rows = {
      {"@user Life is #precious & so are babies, mothers, & fathers. Please support life http://t.co/x1 #SemST", "abortion", 1},
      {"I am so happy today 😍😍 the weather is great", "", 2},
      {"Dogs and cats living together... what a strange world &amp; nobody cares @CNN", "", 0},
      {"Women deserve the right to choose! #ProChoice #SemST www.example.org", "abortion", 2},
      {"why would anyone vote for him ??? #election2016", "", 0},
      {"RT @someone: the quick brown fox jumps over the lazy dog 🦊", "", 1},
      {"Feeling blue, sad and tired of all the hate 💔 #lovewins", "", 0},
      {"Great game tonight! Proud of the team 🏀", "", 2},
  };
  return rows;
}

std::vector<std::string> protected_tokens(const std::string& text) {
  std::vector<std::string> out;
  for (const std::string& t : split_tokens(text))
    if (is_protected_token(t)) out.push_back(t);
  return out;
}

AugmentOptions only(AugmentOp op, double alpha) {
  AugmentOptions o;
  o.enabled = true;
  o.alpha_sr = op == AugmentOp::kSynonym ? alpha : 0;
  o.alpha_ri = op == AugmentOp::kInsert ? alpha : 0;
  o.alpha_rs = op == AugmentOp::kSwap ? alpha : 0;
  o.alpha_rd = op == AugmentOp::kDelete ? alpha : 0;
  return o;
}

// ---- raw WordNet data, read the simple way, to check the reader against ------------------------

// Words of every synset listed for `lemma` on its line of index.<pos> (no morphology).
std::vector<std::string> raw_synset_words(const std::string& pos, const std::string& lemma) {
  std::ifstream index(kWordNetDir / ("index." + pos));
  std::string line;
  std::vector<std::string> words;
  while (std::getline(index, line)) {
    if (line.rfind(lemma + " ", 0) != 0) continue;
    std::istringstream f(line);
    std::vector<std::string> fields;
    for (std::string s; f >> s;) fields.push_back(s);
    const size_t synsets = std::stoul(fields[2]);
    std::ifstream data(kWordNetDir / ("data." + pos));
    for (size_t i = fields.size() - synsets; i < fields.size(); ++i) {
      data.seekg(std::stol(fields[i]));
      std::string dline;
      std::getline(data, dline);
      std::istringstream d(dline);
      std::string offset, lex, type, count_hex;
      d >> offset >> lex >> type >> count_hex;
      EXPECT_EQ(std::stol(offset), std::stol(fields[i]));
      const int count = std::stoi(count_hex, nullptr, 16);
      for (int k = 0; k < count; ++k) {
        std::string w, lex_id;
        d >> w >> lex_id;
        words.push_back(w);
      }
    }
  }
  return words;
}

// EDA's clean-up of a lemma name, spelled out: "guardant(ip)" -> "guardant", "full-face" ->
// "full face", "st._john's_wort" -> "st johns wort".
std::string eda_clean(std::string w) {
  if (w.back() == ')') w = w.substr(0, w.rfind('('));
  std::string out;
  for (char c : w) {
    if (c == '_' || c == '-') c = ' ';
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if ((c >= 'a' && c <= 'z') || c == ' ') out.push_back(c);
  }
  std::string collapsed;
  for (char c : out)
    if (!(c == ' ' && (collapsed.empty() || collapsed.back() == ' '))) collapsed.push_back(c);
  while (!collapsed.empty() && collapsed.back() == ' ') collapsed.pop_back();
  return collapsed;
}

std::set<std::string> raw_synonyms(const std::vector<std::pair<std::string, std::string>>& pos_lemmas,
                                   const std::string& word) {
  std::set<std::string> out;
  for (const auto& [pos, lemma] : pos_lemmas)
    for (const std::string& w : raw_synset_words(pos, lemma)) out.insert(eda_clean(w));
  out.erase(word);
  return out;
}

std::set<std::string> as_set(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

TEST(Augment, ProtectedTokens) {
  for (const char* t : {"@user", ".@CNN:", "#SemST", "(#ProLife)", "http://t.co/abc", "https://x.y", "www.a.org",
                        "&amp;", "&#39;", "😍😍", "love😍", "❤️", "!!!", "...", "2016", "-", "’"})
    EXPECT_TRUE(is_protected_token(t)) << t;
  for (const char* t : {"life", "Life,", "(babies)", "don't", "pro-life", "café", "R&D", "2nite"})
    EXPECT_FALSE(is_protected_token(t)) << t;
  EXPECT_EQ(split_tokens("  a\tb\n\nc  "), (std::vector<std::string>{"a", "b", "c"}));
}

TEST(Augment, WordNetSynonymsMatchTheDataFiles) {
  REQUIRE_WORDNET();
  const auto wn = WordNet::shared(kWordNetDir);
  EXPECT_EQ(wn.get(), WordNet::shared(kWordNetDir).get()) << "loaded once";
  const auto happy = as_set(wn->synonyms("happy"));
  EXPECT_TRUE(happy.count("felicitous")) << "WordNet 3.0 lists felicitous for happy";
  EXPECT_TRUE(happy.count("glad"));
  EXPECT_FALSE(happy.count("happy")) << "the word itself is no synonym";
  EXPECT_EQ(happy, raw_synonyms({{"adj", "happy"}}, "happy"));
  EXPECT_EQ(as_set(wn->synonyms("Happy")), happy) << "lookups ignore case";
  // Nouns and verbs together; multiword lemmas with spaces.
  const auto dog = as_set(wn->synonyms("dog"));
  EXPECT_TRUE(dog.count("domestic dog"));
  EXPECT_EQ(dog, raw_synonyms({{"noun", "dog"}, {"verb", "dog"}}, "dog"));
  // Adjective markers are dropped: "galore(ip)".
  EXPECT_TRUE(as_set(wn->synonyms("guardant")).count("gardant"));
  EXPECT_TRUE(as_set(wn->synonyms("guardant")).count("full face"));
  EXPECT_TRUE(as_set(wn->synonyms("abounding")).count("galore"));
  // Morphology as NLTK's morphy: exception lists (geese -> goose, ran -> run) and suffix rules.
  EXPECT_EQ(wn->base_forms("geese", WordNet::kNoun), (std::vector<std::string>{"goose"}));
  EXPECT_EQ(as_set(wn->synonyms("ran")), raw_synonyms({{"verb", "run"}}, "ran"));
  EXPECT_EQ(wn->base_forms("dogs", WordNet::kNoun), (std::vector<std::string>{"dog"}));
  EXPECT_TRUE(as_set(wn->synonyms("dogs")).count("domestic dog"));
  EXPECT_TRUE(as_set(wn->synonyms("dogs")).count("dog")) << "as EDA: only the word itself is left out";
  EXPECT_TRUE(wn->synonyms("qwxzv").empty());
}

TEST(Augment, MissingWordNetIsAnErrorNamingTheFile) {
  AugmentOptions o = only(AugmentOp::kSynonym, 0.2);
  o.wordnet_dir = "/nonexistent/wordnet";
  try {
    augment(tweets(), o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/wordnet/index.noun"), std::string::npos) << e.what();
  }
  // Swap and deletion need no WordNet.
  o.alpha_sr = 0;
  o.alpha_rs = 0.2;
  EXPECT_EQ(augment(tweets(), o).size(), 2 * tweets().size());
}

TEST(Augment, SameSeedSameRowsOnAnyThreadCount) {
  REQUIRE_WORDNET();
  AugmentOptions o;
  o.enabled = true;
  o.num_aug = 3;
  o.seed = 7;
  const Examples a = augment(tweets(), o, {}, 1);
  const Examples b = augment(tweets(), o, {}, 1);
  const Examples c = augment(tweets(), o, {}, 3);
  ASSERT_EQ(a.size(), 4 * tweets().size());
  ASSERT_EQ(a.size(), b.size());
  ASSERT_EQ(a.size(), c.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].text, b[i].text);
    EXPECT_EQ(a[i].text, c[i].text) << "thread count changed row " << i;
  }
  o.seed = 8;
  const Examples d = augment(tweets(), o);
  size_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += a[i].text != d[i].text;
  EXPECT_GT(differ, tweets().size()) << "another seed gives other rows";
}

TEST(Augment, OriginalsFirstThenMarkedCopies) {
  AugmentOptions o = only(AugmentOp::kSwap, 0.3);
  o.num_aug = 2;
  Examples train = tweets();
  for (size_t i = 0; i < train.size(); ++i) {
    train[i].row = static_cast<int64_t>(i + 1);
    train[i].source = 3;
  }
  const Examples out = augment(train, o);
  ASSERT_EQ(out.size(), 3 * train.size());
  size_t changed = 0;
  for (size_t i = 0; i < train.size(); ++i) {
    EXPECT_EQ(out[i].text, train[i].text);
    EXPECT_FALSE(out[i].augmented);
  }
  for (size_t k = train.size(); k < out.size(); ++k) {
    const Example& orig = train[(k - train.size()) / 2];  // grouped by original, in order
    EXPECT_TRUE(out[k].augmented);
    EXPECT_EQ(out[k].row, orig.row);
    EXPECT_EQ(out[k].source, orig.source);
    EXPECT_EQ(out[k].label, orig.label);
    EXPECT_EQ(out[k].topic, orig.topic);
    auto sorted = [](std::vector<std::string> v) { return std::sort(v.begin(), v.end()), v; };
    EXPECT_EQ(sorted(split_tokens(out[k].text)), sorted(split_tokens(orig.text))) << "a swap keeps the words";
    changed += out[k].text != orig.text;
  }
  EXPECT_GT(changed, train.size()) << "most swaps change the text (two swaps may undo each other)";
  o.enabled = false;
  EXPECT_EQ(augment(train, o).size(), train.size());
}

Examples labelled(const std::vector<int>& counts) {
  Examples rows;
  for (size_t c = 0; c < counts.size(); ++c)
    for (int i = 0; i < counts[c]; ++i)
      rows.push_back({"the cat " + std::to_string(i) + " sat on a warm mat today", "", static_cast<int>(c)});
  return rows;
}

std::vector<int> class_counts(const Examples& rows, size_t classes) {
  std::vector<int> n(classes, 0);
  for (const Example& e : rows) ++n[static_cast<size_t>(e.label)];
  return n;
}

TEST(Augment, PerClassMultipliersAndBalance) {
  const Examples train = labelled({10, 4, 3});
  const std::vector<std::string> names = {"none", "against", "favor"};
  AugmentOptions o = only(AugmentOp::kSwap, 0.2);
  o.num_aug = 0;
  o.per_class = {{"favor", 3.0}, {"1", 2.5}};
  EXPECT_EQ(class_counts(augment(train, o, names), 3), (std::vector<int>{10, 10, 9}));
  o.per_class.clear();
  o.balance = true;
  EXPECT_EQ(class_counts(augment(train, o, names), 3), (std::vector<int>{10, 10, 10}));
  o.num_aug = 1;  // balanced, then doubled
  EXPECT_EQ(class_counts(augment(train, o, names), 3), (std::vector<int>{20, 20, 20}));
  o.per_class = {{"none", 1.0}};  // per_class wins over balance
  EXPECT_EQ(class_counts(augment(train, o, names), 3), (std::vector<int>{10, 20, 20}));
  o.balance = false;
  o.per_class.clear();
  o.num_aug = 0.5;  // half the rows of each class get one copy (rounded)
  EXPECT_EQ(class_counts(augment(train, o, names), 3), (std::vector<int>{15, 6, 5}));
  o.per_class = {{"neutral", 2.0}};
  try {
    augment(train, o, names);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(e.what()).find("neutral"), std::string::npos) << e.what();
  }
  // Fractional copies go to a seeded choice of rows: the same for a seed.
  o.per_class.clear();
  const Examples a = augment(train, o, names), b = augment(train, o, names);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].text, b[i].text);
}

TEST(Augment, OptionsFromYaml) {
  const auto o = config::from_yaml<AugmentOptions>(
      YAML::Load("enabled: true\nseed: 5\nper_class: {favor: 2}\nalpha_rd: 0.3\n"), "test.yaml");
  EXPECT_TRUE(o.enabled);
  EXPECT_EQ(o.seed, 5u);
  EXPECT_EQ(o.per_class.at("favor"), 2.0);
  EXPECT_EQ(o.alpha_rd, 0.3);
  EXPECT_EQ(o.alpha_sr, 0.1) << "EDA's default";
  EXPECT_TRUE(o.tweet_aware);
  EXPECT_EQ(o.stop_words, eda_stop_words());
  EXPECT_THROW(config::from_yaml<AugmentOptions>(YAML::Load("per_class: {favor: 0.5}"), "t.yaml"), Error);
  EXPECT_THROW(config::from_yaml<AugmentOptions>(YAML::Load("alpha_sr: 1.5"), "t.yaml"), Error);
  AugmentOptions off = only(AugmentOp::kSwap, 0);
  EXPECT_THROW(augment(tweets(), off), Error) << "every operation off";
}

TEST(Augment, SynonymReplacementUsesWordNetSynonyms) {
  REQUIRE_WORDNET();
  const auto wn = WordNet::shared(kWordNetDir);
  AugmentOptions o = only(AugmentOp::kSynonym, 1.0);  // every non-stop word
  const auto happy = wn->synonyms("happy");
  const auto today = wn->synonyms("today");
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const std::string out = augment_text("I am Happy today!", AugmentOp::kSynonym, o, wn.get(), seed);
    ASSERT_EQ(out.rfind("I am ", 0), 0u) << "stop words stay: " << out;
    bool found = false;
    for (const auto& h : happy)
      for (const auto& t : today) {
        std::string h_cased = h;
        h_cased[0] = static_cast<char>(std::toupper(h_cased[0]));  // keeps "Happy"'s capital
        found = found || out == "I am " + h_cased + " " + t + "!";
      }
    EXPECT_TRUE(found) << out;
  }
  // Only a stop word and protected tokens: nothing to replace.
  EXPECT_EQ(augment_text("@user I #SemST", AugmentOp::kSynonym, o, wn.get(), 1), "@user I #SemST");
}

TEST(Augment, InsertionAddsSynonymsOfWordsInTheText) {
  REQUIRE_WORDNET();
  const auto wn = WordNet::shared(kWordNetDir);
  AugmentOptions o = only(AugmentOp::kInsert, 0.5);
  const std::string text = "@user happy dog #SemST";  // 2 words: n = max(1, 0.5 * 2) = 1
  std::set<std::string> allowed = as_set(wn->synonyms("happy"));
  for (const auto& s : wn->synonyms("dog")) allowed.insert(s);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const std::string out = augment_text(text, AugmentOp::kInsert, o, wn.get(), seed);
    std::vector<std::string> before = split_tokens(text), after = split_tokens(out);
    // Remove the original tokens in order; what is left is the inserted synonym.
    std::string inserted;
    size_t j = 0;
    for (const std::string& t : after) {
      if (j < before.size() && t == before[j]) ++j;
      else inserted += (inserted.empty() ? "" : " ") + t;
    }
    EXPECT_EQ(j, before.size()) << out;
    EXPECT_TRUE(allowed.count(inserted)) << "'" << inserted << "' in " << out;
  }
}

TEST(Augment, DeletionNeverEmpties) {
  AugmentOptions o = only(AugmentOp::kDelete, 1.0);  // every word would go
  for (uint64_t seed = 0; seed < 50; ++seed) {
    for (const char* text : {"alone", "two words", "a b c d e", "@user only one #tag", "@user #tag 😍"}) {
      const std::string out = augment_text(text, AugmentOp::kDelete, o, nullptr, seed);
      ASSERT_FALSE(out.empty()) << text;
      size_t words = 0, words_before = 0;
      for (const auto& t : split_tokens(out)) words += !is_protected_token(t);
      for (const auto& t : split_tokens(text)) words_before += !is_protected_token(t);
      EXPECT_EQ(words, std::min<size_t>(words_before, 1)) << text << " -> " << out;
      EXPECT_EQ(protected_tokens(out), protected_tokens(text));
    }
  }
  EXPECT_EQ(augment_text("alone", AugmentOp::kDelete, o, nullptr, 3), "alone");
}

// Every operation, many seeds, strong rates: the protected tokens come out as they went in.
void check_protected_survive(const std::vector<std::string>& texts, const WordNet* wn) {
  for (AugmentOp op : {AugmentOp::kSynonym, AugmentOp::kInsert, AugmentOp::kSwap, AugmentOp::kDelete}) {
    const AugmentOptions o = only(op, 0.5);
    for (size_t i = 0; i < texts.size(); ++i) {
      for (uint64_t seed = 0; seed < 3; ++seed) {
        const std::string out = augment_text(texts[i], op, o, wn, seed * 1000 + i);
        ASSERT_EQ(protected_tokens(out), protected_tokens(texts[i]))
            << "op " << static_cast<int>(op) << ": " << texts[i] << " -> " << out;
        if (!split_tokens(texts[i]).empty()) {
          ASSERT_FALSE(out.empty()) << texts[i];
        }
      }
    }
  }
}

TEST(Augment, ProtectedTokensSurviveEveryOp) {
  REQUIRE_WORDNET();
  std::vector<std::string> texts;
  for (const Example& e : tweets()) texts.push_back(e.text);
  check_protected_survive(texts, WordNet::shared(kWordNetDir).get());
}

TEST(AugmentRealData, ProtectedTokensSurviveEveryOpOnStanceTweets) {
  REQUIRE_WORDNET();
  const auto path = test::data_root() / "tweeteval/datasets/stance/abortion/train_text.txt";
  OPINE_REQUIRE_FILE(path);
  std::ifstream in(path);
  std::vector<std::string> texts;
  for (std::string line; texts.size() < 300 && std::getline(in, line);) texts.push_back(line);
  ASSERT_GE(texts.size(), 100u);
  size_t with_protected = 0;
  for (const auto& t : texts) with_protected += !protected_tokens(t).empty();
  EXPECT_GT(with_protected, texts.size() / 2) << "stance tweets carry #SemST and @user";
  check_protected_survive(texts, WordNet::shared(kWordNetDir).get());
  // And through augment(), all operations together.
  Examples rows;
  for (const auto& t : texts) rows.push_back({t, "abortion", 0});
  AugmentOptions o;
  o.enabled = true;
  o.num_aug = 2;
  const Examples out = augment(rows, o, {}, 2);
  ASSERT_EQ(out.size(), 3 * rows.size());
  size_t changed = 0;
  for (size_t k = rows.size(); k < out.size(); ++k) {
    const Example& orig = rows[(k - rows.size()) / 2];
    EXPECT_EQ(protected_tokens(out[k].text), protected_tokens(orig.text));
    changed += out[k].text != orig.text;
  }
  EXPECT_GT(changed, rows.size()) << "most copies differ from their original";
}

}  // namespace
}  // namespace opine::data
