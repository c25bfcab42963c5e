// The pieces of the evaluation strategies: answer parsing, k-shot selection, UTF-8 repair of
// generated text, the rank split, and the Predictor API against transformers.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/utf8.h"
#include "launch/predictor.h"
#include "launch/shots.h"
#include "launch/strategies.h"
#include "test_util.h"

namespace opine::launch {
namespace {

TEST(ParseAnswer, EarliestWholeWordLabel) {
  const std::vector<std::string> labels = {"against", "favor", "none"};
  EXPECT_EQ(parse_answer("favor", labels), 1);
  EXPECT_EQ(parse_answer("  Against.", labels), 0);
  EXPECT_EQ(parse_answer("I'd say FAVOR, not against", labels), 1);
  EXPECT_EQ(parse_answer("favorable", labels), -1);     // not a whole word
  EXPECT_EQ(parse_answer("unfavor? none", labels), 2);  // "unfavor" is not "favor"
  EXPECT_EQ(parse_answer("", labels), -1);
  EXPECT_EQ(parse_answer("neutral", labels), -1);
  // At the same position the longer label wins.
  EXPECT_EQ(parse_answer("very positive", {"very", "very positive"}), 1);
}

TEST(ValidUtf8, ReplacesMaximalInvalidSubpartsAsTheStandardSays) {
  const std::string r = "\xEF\xBF\xBD";  // U+FFFD
  EXPECT_EQ(to_valid_utf8("plain"), "plain");
  EXPECT_EQ(to_valid_utf8("caf\xC3\xA9 \xF0\x9F\x98\x80"), "caf\xC3\xA9 \xF0\x9F\x98\x80");
  EXPECT_EQ(to_valid_utf8("a\xFF"
                          "b"),
            "a" + r + "b");
  EXPECT_EQ(to_valid_utf8("\xE2\x82"), r);  // a truncated 3-byte character: one
  EXPECT_EQ(to_valid_utf8("\xF0\x9F\x98"
                          "x"),
            r + "x");                                   // a truncated 4-byte character: one
  EXPECT_EQ(to_valid_utf8("\xC0\xAF"), r + r);          // overlong: two
  EXPECT_EQ(to_valid_utf8("\xED\xA0\x80"), r + r + r);  // a surrogate: three
}

data::Examples pool() {
  data::Examples out;
  const std::vector<std::pair<std::string, int>> rows = {
      {"ban it now", 0},        {"stop the ban", 0},      {"never again, ban", 0},  {"shame on them", 0},
      {"support choice", 1},    {"love this freedom", 1}, {"my body my choice", 1}, {"unlabelled", -1},
      {"we protect rights", 1}, {"illegal and wrong", 0},
  };
  for (const auto& [text, label] : rows) {
    data::Example e;
    e.text = text;
    e.label = label;
    out.push_back(e);
  }
  return out;
}

TEST(Shots, RandomIsSeededAndFixed) {
  const ShotSelector a(pool(), 4, "random", 1, 2), b(pool(), 4, "random", 1, 2), c(pool(), 4, "random", 2, 2);
  EXPECT_TRUE(a.fixed());
  data::Example q;
  const data::Examples sa = a.shots_for(q);
  ASSERT_EQ(sa.size(), 4u);
  std::set<std::string> texts;
  for (const data::Example& e : sa) {
    texts.insert(e.text);
    EXPECT_GE(e.label, 0);  // unlabelled examples are never shots
  }
  EXPECT_EQ(texts.size(), 4u);
  std::vector<std::string> ta, tb, tc;
  for (const auto& e : sa) ta.push_back(e.text);
  for (const auto& e : b.shots_for(q)) tb.push_back(e.text);
  for (const auto& e : c.shots_for(q)) tc.push_back(e.text);
  EXPECT_EQ(ta, tb);
  EXPECT_NE(ta, tc);
}

TEST(Shots, BalancedTakesEachClassEvenly) {
  for (const int k : {2, 3, 4, 5}) {
    const ShotSelector s(pool(), k, "balanced", 7, 2);
    int counts[2] = {0, 0};
    for (const data::Example& e : s.shots_for({})) ++counts[e.label];
    EXPECT_LE(std::abs(counts[0] - counts[1]), 1) << k;
    EXPECT_EQ(counts[0] + counts[1], k);
  }
}

TEST(Shots, SimilarPutsTheNearestLast) {
  const ShotSelector s(pool(), 2, "similar", 0, 2);
  EXPECT_FALSE(s.fixed());
  data::Example q;
  q.text = "My CHOICE, my body!";
  const data::Examples shots = s.shots_for(q);
  ASSERT_EQ(shots.size(), 2u);
  EXPECT_EQ(shots.back().text, "my body my choice");
  EXPECT_EQ(shots.front().text, "support choice");
  q.text = "ban ban ban";
  EXPECT_EQ(s.shots_for(q).back().label, 0);
}

TEST(Shots, TooFewExamplesIsAnError) {
  EXPECT_NE(opine::test::error_of([] { ShotSelector(pool(), 10, "random", 0, 2); }).find("only 9 labelled"),
            std::string::npos);
  EXPECT_NE(opine::test::error_of([] { ShotSelector(pool(), 1, "closest", 0, 2); }).find("shot_selection"),
            std::string::npos);
}

TEST(RankBlock, CoversEveryItemOnce) {
  for (int world : {1, 2, 3, 5})
    for (int64_t count : {0, 1, 7, 10}) {
      int64_t next = 0;
      for (int r = 0; r < world; ++r) {
        const auto [b, e] = rank_block(count, r, world);
        EXPECT_EQ(b, next);
        EXPECT_GE(e, b);
        EXPECT_LE(e - b, count / world + 1);
        next = e;
      }
      EXPECT_EQ(next, count);
    }
}

// The C++ API on the tiny trainer model: each label's answer log-probability as transformers
// computes it (tests/reference/strategy_reference.py), within 2e-4 (float32 sums).
TEST(PredictorParity, LoglikMatchesTransformers) {
  const auto dir = opine::test::reference_dir();
  std::ifstream in(dir / "strategy" / "expected.json");
  ASSERT_TRUE(in.good()) << "run the reference generators first";
  const nlohmann::json expected = nlohmann::json::parse(in);
  OpineOptions o;
  o.model.path = (dir / "trainer" / "model").string();
  o.data.chat = false;
  o.task.system = expected["system"];
  o.task.instruction = expected["instruction"];
  o.task.labels = expected["labels"].get<std::vector<std::string>>();
  o.eval.strategy = "loglik";
  const Predictor predictor(o, "");
  EXPECT_EQ(predictor.strategy(), "loglik");
  std::vector<std::string> texts;
  for (const auto& e : expected["examples"]) texts.push_back(e["text"]);
  int64_t progress_calls = 0;
  const auto predictions = predictor.predict(texts, 3, [&](int64_t, int64_t) { ++progress_calls; });
  ASSERT_EQ(predictions.size(), texts.size());
  EXPECT_EQ(progress_calls, 4);  // ceil(10 / 3) batches
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto want = expected["examples"][i]["loglik"].get<std::vector<double>>();
    ASSERT_EQ(predictions[i].logprobs.size(), 2u);
    for (size_t c = 0; c < 2; ++c) EXPECT_NEAR(predictions[i].logprobs[c], want[c], 2e-4) << i;
    EXPECT_EQ(predictions[i].label, want[1] > want[0] ? 1 : 0);
    EXPECT_NEAR(predictions[i].probabilities[0] + predictions[i].probabilities[1], 1.0, 1e-12);
  }
}

}  // namespace
}  // namespace opine::launch
