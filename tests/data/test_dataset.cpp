// Readers, dataset specs and normalisation: unit cases for each rule, then every shipped dataset
// against an independent Python reading (tests/reference/data_reference.py).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data/dataset.h"
#include "data/normalize.h"
#include "data/readers.h"
#include "test_util.h"

namespace opine::data {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("opine-data-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++))) {
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path_ / name, std::ios::binary) << bytes;
    return path_ / name;
  }
  const fs::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(Readers, CsvQuotesCrlfEmbeddedNewlinesAndBom) {
  TempDir dir;
  const fs::path p = dir.write("a.csv", "\xEF\xBB\xBFtext,label\r\n\"hi, there\",pos\r\n\"say \"\"no\"\"\nnow\",neg\r\n\r\nplain \"q\" mid,neu\n");
  const Table t = read_delimited(p, ',', Encoding::kUtf8);
  ASSERT_EQ(t.columns, (std::vector<std::string>{"text", "label"}));
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(t.rows[0][0], "hi, there");
  EXPECT_EQ(t.rows[1][0], "say \"no\"\nnow");
  EXPECT_EQ(t.rows[2][0], "plain \"q\" mid");
  EXPECT_EQ(t.lines, (std::vector<int64_t>{2, 3, 6}));
}

TEST(Readers, TsvWithoutQuotingKeepsQuotes) {
  TempDir dir;
  const fs::path p = dir.write("a.tsv", "sentence\tlabel\n\"quoted\" start\t1\n");
  EXPECT_EQ(read_delimited(p, '\t', Encoding::kUtf8, false).rows[0][0], "\"quoted\" start");
}

TEST(Readers, WrongFieldCountAndOpenQuoteNameFileAndLine) {
  TempDir dir;
  const fs::path p = dir.write("bad.csv", "text,label\nok,1\ntoo,many,fields\n");
  const std::string msg = error_of([&] { read_delimited(p, ',', Encoding::kUtf8); });
  EXPECT_TRUE(contains(msg, "bad.csv:3: 3 fields, but the header has 2")) << msg;
  const fs::path q = dir.write("open.csv", "text,label\n\"never closed,1\n");
  EXPECT_TRUE(contains(error_of([&] { read_delimited(q, ',', Encoding::kUtf8); }), "open.csv:2: quoted field never closed"));
}

TEST(Readers, InvalidUtf8IsAnErrorUnlessAFallbackIsDeclared) {
  TempDir dir;
  const fs::path p = dir.write("w.txt", "fine\ncaf\xE9 \x93quoted\x94\n");
  const std::string msg = error_of([&] { read_lines(p, Encoding::kUtf8); });
  EXPECT_TRUE(contains(msg, "w.txt:2: invalid UTF-8 (byte 0xE9 at offset 3)")) << msg;
  EXPECT_TRUE(contains(msg, "utf-8-or-windows-1252")) << msg;
  const Lines lines = read_lines(p, Encoding::kUtf8OrCp1252);
  EXPECT_EQ(lines.lines[1], "caf\u00e9 \u201cquoted\u201d");
  EXPECT_EQ(lines.fallback_decoded, 1);
  EXPECT_EQ(read_lines(p, Encoding::kLatin1).lines[1], "caf\u00e9 \u0093quoted\u0094");
}

TEST(Readers, JsonLinesAndItsErrors) {
  TempDir dir;
  const fs::path p = dir.write("a.jsonl", "{\"text\": \"a\", \"score\": 0.5, \"ok\": true}\n\n{\"text\": \"b\", \"score\": null}\n");
  const Table t = read_jsonl(p, Encoding::kUtf8);
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0][t.column("score")], "0.5");
  EXPECT_EQ(t.rows[1][t.column("score")], "");
  EXPECT_EQ(t.lines[1], 3);
  EXPECT_TRUE(contains(error_of([&] { t.column("label"); }), "has no column 'label' (it has: text, score, ok)"));
  const fs::path q = dir.write("b.jsonl", "{\"text\": \"a\"}\n[1, 2]\n");
  EXPECT_TRUE(contains(error_of([&] { read_jsonl(q, Encoding::kUtf8); }), "b.jsonl:2: expected a JSON object"));
}

TEST(Readers, TolerantReadingKeepsBadRowsInPlace) {
  TempDir dir;
  // JSONL: a broken line and a line with a key the first object lacks.
  const fs::path j = dir.write("c.jsonl", "{bad\n{\"text\": \"a\"}\n{\"text\": \"b\", \"id\": 7}\n\"str\"\n");
  const Table t = read_jsonl(j, Encoding::kUtf8, /*tolerant=*/true);
  ASSERT_EQ(t.rows.size(), 4u);
  ASSERT_EQ(t.errors.size(), 4u);
  EXPECT_TRUE(contains(t.errors[0], "c.jsonl:1: not JSON")) << t.errors[0];
  EXPECT_EQ(t.errors[1], "");
  EXPECT_TRUE(contains(t.errors[3], "c.jsonl:4: expected a JSON object")) << t.errors[3];
  EXPECT_EQ(t.columns, (std::vector<std::string>{"text", "id"}));
  for (const auto& row : t.rows) EXPECT_EQ(row.size(), 2u);
  EXPECT_EQ(t.rows[1][t.column("id")], "");
  EXPECT_EQ(t.rows[2][t.column("id")], "7");
  // CSV: a row with too many fields keeps its place, empty.
  const fs::path c = dir.write("d.csv", "id,text\n1,a\n2,b,extra\n3,c\n");
  EXPECT_TRUE(contains(error_of([&] { read_delimited(c, ',', Encoding::kUtf8); }), "d.csv:3: 3 fields"));
  const Table d = read_delimited(c, ',', Encoding::kUtf8, true, /*tolerant=*/true);
  ASSERT_EQ(d.rows.size(), 3u);
  EXPECT_TRUE(contains(d.errors[1], "d.csv:3: 3 fields, but the header has 2")) << d.errors[1];
  EXPECT_EQ(d.rows[1], (std::vector<std::string>{"", ""}));
  EXPECT_EQ(d.rows[2][1], "c");
  EXPECT_EQ(d.lines[2], 4);
}

DatasetSpec csv_spec(const TempDir& dir) {
  DatasetSpec s;
  s.name = "toy";
  s.data_root = dir.path().string();
  s.splits["train"] = {"train.csv", ""};
  s.classes = {"neg", "pos"};
  return s;
}

TEST(Dataset, SpecProblemsAreReportedTogether) {
  TempDir dir;
  DatasetSpec s;
  s.name = "broken";
  s.data_root = dir.path().string();
  s.task = "binary";
  s.splits["train"] = {"missing.csv", "labels.txt"};
  s.label_map = {{"x", "y"}};
  s.validation.fraction = 0.1;
  s.splits["val"] = {"v.weird", ""};
  const std::string msg = error_of([&] { load_dataset(s); });
  for (const char* part : {"classes: give the class names", "no file", "cannot tell the format of 'v.weird'",
                           "the spec has a val split already", "classes: required with label_map",
                           "a binary task has 2 classes, got 0", "label_map.x: 'y' is not one of the classes"})
    EXPECT_TRUE(contains(msg, part)) << part << "\n" << msg;
}

TEST(Dataset, BadRowsAreCountedNamedAndBoundedByTheThreshold) {
  TempDir dir;
  dir.write("train.csv", "text,label\ngood,pos\n  ,neg\nalso good,neg\nodd,maybe\nfine,pos\n");
  DatasetSpec s = csv_spec(dir);
  const std::string msg = error_of([&] { load_dataset(s); });
  EXPECT_TRUE(contains(msg, "2 of 5 rows cannot be used")) << msg;
  EXPECT_TRUE(contains(msg, "train.csv:3: empty text")) << msg;
  EXPECT_TRUE(contains(msg, "train.csv:5: unknown label 'maybe'")) << msg;
  s.max_bad_fraction = 0.4;
  const Dataset d = load_dataset(s);
  ASSERT_EQ(d.splits.at("train").size(), 3u);
  EXPECT_EQ(d.reports[0].bad, 2);
  EXPECT_EQ(d.reports[0].per_class, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(d.splits.at("train")[1].row, 4);
  EXPECT_EQ(d.splits.at("train")[1].label, 0);
}

TEST(Dataset, LabelNamesMapDropAndFilter) {
  TempDir dir;
  dir.write("t.tsv", "Target\tTweet\tStance\nA\tx\t0\nB\ty\t1\nA\tz\t2\nA\tw\t1\n");
  DatasetSpec s;
  s.name = "stance";
  s.data_root = dir.path().string();
  s.task = "binary";
  s.splits["train"] = {"t.tsv", ""};
  s.text_column = "Tweet";
  s.label_column = "Stance";
  s.topic_column = "Target";
  s.filter = {{"Target", "A"}};
  s.label_names = {"none", "against", "favor"};
  s.label_map = {{"none", "drop"}, {"against", "against"}, {"favor", "favor"}};
  s.classes = {"favor", "against"};
  const Dataset d = load_dataset(s);
  const Examples& e = d.splits.at("train");
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].text, "z");
  EXPECT_EQ(e[0].label, 0);
  EXPECT_EQ(e[1].label, 1);
  EXPECT_EQ(e[1].topic, "A");
  EXPECT_EQ(d.reports[0].read, 3);
  EXPECT_EQ(d.reports[0].dropped, 1);
}

TEST(Dataset, RegressionTargetsAndTweetEvalLineCounts) {
  TempDir dir;
  dir.write("r.jsonl", "{\"text\": \"a\", \"label\": 0.25}\n{\"text\": \"b\", \"label\": \"x\"}\n");
  DatasetSpec s;
  s.name = "reg";
  s.task = "regression";
  s.data_root = dir.path().string();
  s.splits["train"] = {"r.jsonl", ""};
  s.max_bad_fraction = 0.5;
  const Dataset d = load_dataset(s);
  EXPECT_DOUBLE_EQ(d.splits.at("train")[0].target, 0.25);
  EXPECT_TRUE(contains(d.reports[0].bad_rows[0], "r.jsonl:2: label 'x' is not a number"));

  dir.write("a_text.txt", "one\ntwo\n");
  dir.write("a_labels.txt", "0\n");
  DatasetSpec t;
  t.name = "te";
  t.data_root = dir.path().string();
  t.splits["train"] = {"a_text.txt", "a_labels.txt"};
  t.label_names = {"neg", "pos"};
  EXPECT_TRUE(contains(error_of([&] { load_dataset(t); }), "a_text.txt has 2 lines but"));
}

TEST(Dataset, CarvedValidationIsSeededAndStratified) {
  Examples all;
  for (int i = 0; i < 1000; ++i) {
    Example e;
    e.text = std::to_string(i);
    e.label = i < 800 ? 0 : 1;
    all.push_back(e);
  }
  auto [train, val] = carve_split(all, 0.1, 7, true);
  ASSERT_EQ(val.size(), 100u);
  EXPECT_EQ(std::count_if(val.begin(), val.end(), [](const Example& e) { return e.label == 1; }), 20);
  auto [train2, val2] = carve_split(all, 0.1, 7, true);
  auto [train3, val3] = carve_split(all, 0.1, 8, true);
  auto texts = [](const Examples& x) {
    std::vector<std::string> t;
    for (const Example& e : x) t.push_back(e.text);
    return t;
  };
  EXPECT_EQ(texts(val), texts(val2));
  EXPECT_NE(texts(val), texts(val3));
  EXPECT_EQ(train.size() + val.size(), all.size());
}

TEST(Normalize, EachStepOnItsOwn) {
  EXPECT_EQ(decode_html_entities("a &amp; b &lt;3 &#39;x&#x1F600; &bogus; & alone"), "a & b <3 'x\U0001F600 &bogus; & alone");
  EXPECT_EQ(replace_mentions_and_urls("@bob: see https://t.co/x @ now", true, true), "@user see http @ now");
  EXPECT_EQ(segment_hashtags("#BlackLivesMatter #COVID19 #NASAData #a_b x#y", false),
            "Black Lives Matter COVID 19 NASA Data a b x#y");
  EXPECT_EQ(segment_hashtags("#SemST rocks", true), "SemST rocks");
  EXPECT_EQ(collapse_whitespace(" a\t\u00a0 b\u3000c \n"), "a b c");
  NormalizeOptions o;
  o.lowercase = true;
  EXPECT_EQ(normalize("  RT @Someone: Love it &amp; more http://x.co  #Yes", o), "rt @user love it & more http #yes");
}

// ---- the shipped data --------------------------------------------------------------------------

nlohmann::json reference(const std::string& name) {
  const fs::path p = test::reference_dir() / "data" / name;
  if (!fs::exists(p)) return nullptr;
  return nlohmann::json::parse(std::ifstream(p));
}

TEST(DatasetRealData, EveryShippedSpecMatchesAnIndependentReading) {
  OPINE_REQUIRE_FILE(test::data_root() / "tweeteval");
  const nlohmann::json counts = reference("counts.json");
  ASSERT_FALSE(counts.is_null()) << "reference counts.json missing";
  int specs = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(OPINE_SOURCE_DIR) / "experiments" / "datasets")) {
    const std::string name = entry.path().stem().string();
    SCOPED_TRACE(name);
    DatasetSpec spec = config::load<DatasetSpec>(entry.path().string(), {"data_root=" + test::data_root().string()});
    const Dataset d = load_dataset(spec);
    const nlohmann::json& want = counts.at(name);
    for (const SplitReport& r : d.reports) {
      const nlohmann::json& w = want.at(r.split);
      EXPECT_EQ(r.dropped, w.at("dropped").get<int64_t>()) << r.split;
      EXPECT_EQ(r.bad, w.at("bad").get<int64_t>()) << r.split;
      for (size_t c = 0; c < d.classes.size(); ++c)
        EXPECT_EQ(r.per_class[c], w.at("classes").at(d.classes[c]).get<int64_t>()) << r.split << " " << d.classes[c];
    }
    if (want.contains("carved")) {
      for (const char* split : {"train", "val"})
        for (size_t c = 0; c < d.classes.size(); ++c)
          EXPECT_EQ(std::count_if(d.splits.at(split).begin(), d.splits.at(split).end(),
                                  [&](const Example& e) { return e.label == int(c); }),
                    want["carved"][split][d.classes[c]].get<int64_t>())
              << split << " " << d.classes[c];
    }
    ++specs;
  }
  EXPECT_EQ(specs, int(counts.size()));
}

TEST(DatasetRealData, Semeval2016FileNeedsAndUsesTheWindows1252Fallback) {
  OPINE_REQUIRE_FILE(test::data_root() / "semeval2016-task6");
  DatasetSpec spec = config::load<DatasetSpec>((fs::path(OPINE_SOURCE_DIR) / "experiments/datasets/semeval2016-stance.yaml").string(),
                                               {"data_root=" + test::data_root().string()});
  const Dataset d = load_dataset(spec);
  EXPECT_GT(d.reports[0].fallback_decoded, 0);
  EXPECT_EQ(d.reports[0].read, 2814);
  spec.encoding = "utf-8";
  EXPECT_TRUE(contains(error_of([&] { load_dataset(spec); }), "semeval2016-task6-trainingdata.txt:"));
}

TEST(DatasetRealData, NormalisationMatchesTheCardiffnlpPreprocessing) {
  const nlohmann::json rows = reference("normalize.json");
  if (rows.is_null()) GTEST_SKIP() << "no shipped data";
  NormalizeOptions keep_spaces;
  keep_spaces.whitespace = false;
  const NormalizeOptions defaults;
  size_t mismatches = 0;
  for (const nlohmann::json& row : rows) {
    const std::string text = row["text"];
    const bool a = normalize(text, keep_spaces) == row["cardiff"].get<std::string>();
    const bool b = normalize(text, defaults) == row["collapsed"].get<std::string>();
    if ((!a || !b) && ++mismatches <= 5) ADD_FAILURE() << row["file"] << ": " << text;
  }
  EXPECT_EQ(mismatches, 0u) << "of " << rows.size();
  EXPECT_GT(rows.size(), 20000u);
}

}  // namespace
}  // namespace opine::data
