// Evaluation metrics: hand-checked small cases, error cases, bootstrap intervals, and parity with
// scikit-learn / scipy (tests/reference/metrics_reference.py).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/metrics.h"
#include "core/random.h"
#include "test_util.h"

namespace opine::metrics {
namespace {

// Same formulas in double as sklearn / scipy; only the summation order differs (numpy's pairwise
// sums): the largest difference seen is 3.3e-16 (counts-based values and ROC-AUC match exactly).
// Relative to the value where it exceeds 1 (an MSE).
constexpr double kTol = 1e-12;

void expect_close(double actual, double expected, const std::string& what) {
  EXPECT_NEAR(actual, expected, kTol * std::max(1.0, std::abs(expected))) << what;
}

using opine::test::error_of;

TEST(Metrics, ThreeClassByHand) {
  // confusion [[1,1,0],[0,2,0],[1,0,1]]; predicted counts 2, 3, 1.
  const auto r = classify({0, 0, 1, 1, 2, 2}, {0, 1, 1, 1, 2, 0}, {"a", "b", "c"});
  EXPECT_EQ(r.count, 6);
  EXPECT_DOUBLE_EQ(r.accuracy, 4.0 / 6);
  EXPECT_EQ(r.confusion, (std::vector<std::vector<int64_t>>{{1, 1, 0}, {0, 2, 0}, {1, 0, 1}}));
  EXPECT_EQ(r.support, (std::vector<int64_t>{2, 2, 2}));
  EXPECT_DOUBLE_EQ(r.precision[0], 0.5);
  EXPECT_DOUBLE_EQ(r.precision[1], 2.0 / 3);
  EXPECT_DOUBLE_EQ(r.precision[2], 1.0);
  EXPECT_DOUBLE_EQ(r.recall[0], 0.5);
  EXPECT_DOUBLE_EQ(r.recall[1], 1.0);
  EXPECT_DOUBLE_EQ(r.recall[2], 0.5);
  EXPECT_DOUBLE_EQ(r.f1[0], 0.5);
  EXPECT_DOUBLE_EQ(r.f1[1], 0.8);
  EXPECT_DOUBLE_EQ(r.f1[2], 2.0 / 3);
  EXPECT_DOUBLE_EQ(r.f1_macro, (0.5 + 0.8 + 2.0 / 3) / 3);
  EXPECT_DOUBLE_EQ(r.f1_weighted, r.f1_macro);  // equal supports
  EXPECT_DOUBLE_EQ(r.precision_macro, (0.5 + 2.0 / 3 + 1.0) / 3);
  EXPECT_DOUBLE_EQ(r.recall_macro, 2.0 / 3);
  EXPECT_FALSE(r.semeval_f1.has_value());
  EXPECT_FALSE(r.roc_auc_ovr.has_value());
  EXPECT_EQ(r.invalid, 0);
}

TEST(Metrics, WeightedAverageUsesSupport) {
  // Class 0: 3 true, all right; class 1: 1 true, predicted 0.
  const auto r = classify({0, 0, 0, 1}, {0, 0, 0, 0}, {"x", "y"});
  EXPECT_DOUBLE_EQ(r.precision[0], 0.75);
  EXPECT_DOUBLE_EQ(r.f1[0], 6.0 / 7);
  EXPECT_DOUBLE_EQ(r.f1[1], 0.0);
  EXPECT_DOUBLE_EQ(r.f1_weighted, 0.75 * 6.0 / 7);
  EXPECT_DOUBLE_EQ(r.precision_weighted, 0.75 * 0.75);
  EXPECT_DOUBLE_EQ(r.recall_weighted, 0.75);  // = accuracy, always
}

TEST(Metrics, ZeroDivisionGivesZeroAndAbsentClassesCountInMacro) {
  // Class 1 never predicted; class 2 neither true nor predicted.
  const auto r = classify({0, 1}, {0, 0}, {"a", "b", "c"});
  EXPECT_DOUBLE_EQ(r.precision[1], 0.0);
  EXPECT_DOUBLE_EQ(r.recall[1], 0.0);
  EXPECT_DOUBLE_EQ(r.precision[2], 0.0);
  EXPECT_DOUBLE_EQ(r.recall[2], 0.0);
  EXPECT_DOUBLE_EQ(r.f1[2], 0.0);
  EXPECT_DOUBLE_EQ(r.f1[0], 2.0 / 3);
  EXPECT_DOUBLE_EQ(r.f1_macro, (2.0 / 3) / 3);
  EXPECT_EQ(r.support[2], 0);
}

TEST(Metrics, InvalidPredictionsAreWrongLabelsOutsideTheSet) {
  const auto r = classify({0, 1, 1, 1}, {0, -1, 1, -3}, {"a", "b"});
  EXPECT_EQ(r.invalid, 2);
  EXPECT_DOUBLE_EQ(r.invalid_rate, 0.5);
  EXPECT_DOUBLE_EQ(r.accuracy, 0.5);
  EXPECT_EQ(r.support, (std::vector<int64_t>{1, 3}));  // still counted as true examples
  EXPECT_DOUBLE_EQ(r.recall[1], 1.0 / 3);              // a miss for their true class
  EXPECT_DOUBLE_EQ(r.precision[1], 1.0);               // no false positive anywhere
  EXPECT_DOUBLE_EQ(r.precision[0], 1.0);
  EXPECT_EQ(r.confusion, (std::vector<std::vector<int64_t>>{{1, 0}, {0, 1}}));  // no cell
}

TEST(Metrics, SemEvalF1IsMeanOfFavorAndAgainst) {
  const auto r = classify({0, 1, 2, 0, 1, 2}, {0, 1, 2, 1, 1, 0}, {"AGAINST", "FAVOR", "NONE"});
  ASSERT_TRUE(r.semeval_f1.has_value());
  EXPECT_DOUBLE_EQ(*r.semeval_f1, (r.f1[0] + r.f1[1]) / 2);
  const auto lower = classify({0, 1}, {0, 1}, {"none", "favor", "against"});
  ASSERT_TRUE(lower.semeval_f1.has_value());
  EXPECT_DOUBLE_EQ(*lower.semeval_f1, 0.5);  // favor 1, against 0 (no examples)
  EXPECT_FALSE(classify({0}, {0}, {"favor", "none"}).semeval_f1.has_value());
}

TEST(Metrics, RocAucByHand) {
  // sklearn's documented example: 0.75.
  std::vector<std::vector<double>> p = {{0.9, 0.1}, {0.6, 0.4}, {0.65, 0.35}, {0.2, 0.8}};
  auto r = classify({0, 0, 1, 1}, {0, 1, 0, 1}, {"n", "p"}, p);
  ASSERT_TRUE(r.roc_auc_ovr.has_value());
  EXPECT_DOUBLE_EQ(*r.roc_auc_ovr, 0.75);
  // A tie between a positive and a negative counts half.
  r = classify({0, 1, 1}, {0, 1, 1}, {"n", "p"}, {{0.5, 0.5}, {0.5, 0.5}, {0.1, 0.9}});
  EXPECT_DOUBLE_EQ(*r.roc_auc_ovr, 0.75);
  // Three classes: the mean of the one-vs-rest AUCs.
  r = classify({0, 1, 2, 2}, {0, 1, 2, 2}, {"a", "b", "c"}, {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {0.5, 0, 0}});
  // Column c: positives score 1 and 0, negatives 0 and 0: 2 pairs right, 2 tied -> 3/4.
  EXPECT_DOUBLE_EQ(*r.roc_auc_ovr, (1.0 + 1.0 + 0.75) / 3);
  // A class without a true example: undefined, NaN (null in JSON) as sklearn's.
  r = classify({0, 0, 1}, {0, 0, 1}, {"a", "b", "c"}, {{1, 0, 0}, {1, 0, 0}, {0, 1, 0}});
  EXPECT_TRUE(std::isnan(*r.roc_auc_ovr));
  EXPECT_TRUE(r.to_json().at("roc_auc_ovr").is_null());
  EXPECT_TRUE(std::isnan(metric_value(r.to_json(), "roc_auc")));
}

TEST(Metrics, ClassificationErrors) {
  const std::vector<std::string> ab = {"a", "b"};
  EXPECT_THROW(classify({}, {}, ab), Error);
  EXPECT_THROW(classify({0}, {0}, {}), Error);
  EXPECT_NE(error_of([&] { classify({0, 1}, {0}, ab); }).find("1 predictions"), std::string::npos);
  EXPECT_NE(error_of([&] { classify({2}, {0}, ab); }).find("true label 2"), std::string::npos);
  EXPECT_THROW(classify({-1}, {0}, ab), Error);
  EXPECT_NE(error_of([&] { classify({0}, {2}, ab); }).find("predicted label 2"), std::string::npos);
  EXPECT_THROW(classify({0}, {0}, ab, {{0.5, 0.5}, {0.5, 0.5}}), Error);
  EXPECT_THROW(classify({0}, {0}, ab, {{1.0}}), Error);
  EXPECT_THROW(classify({0}, {0}, ab, {{NAN, 0.5}}), Error);
  EXPECT_THROW(classify({0}, {0}, {"only"}, {{1.0}}), Error);
}

TEST(Metrics, RegressionByHand) {
  auto r = regress({1, 2, 3}, {1, 2, 4});
  EXPECT_EQ(r.count, 3);
  EXPECT_DOUBLE_EQ(r.mse, 1.0 / 3);
  EXPECT_DOUBLE_EQ(r.rmse, std::sqrt(1.0 / 3));
  EXPECT_DOUBLE_EQ(r.mae, 1.0 / 3);
  EXPECT_NEAR(r.pearson, 9 / std::sqrt(84.0), 1e-15);
  EXPECT_DOUBLE_EQ(r.spearman, 1.0);  // monotone
  // Ties share the mean rank: x ranks 1, 2.5, 2.5, 4 against 1..4 -> 4.5 / sqrt(4.5 * 5).
  r = regress({1, 2, 2, 3}, {1, 2, 3, 4});
  EXPECT_NEAR(r.spearman, 4.5 / std::sqrt(22.5), 1e-15);
  EXPECT_DOUBLE_EQ(regress({0, 1, 2}, {2, 1, 0}).pearson, -1.0);
  // Undefined correlations are NaN (null in JSON), the errors still defined.
  r = regress({1, 2, 3}, {5, 5, 5});
  EXPECT_TRUE(std::isnan(r.pearson));
  EXPECT_TRUE(std::isnan(r.spearman));
  EXPECT_DOUBLE_EQ(r.mse, (16 + 9 + 4) / 3.0);
  EXPECT_TRUE(r.to_json().at("pearson").is_null());
  EXPECT_TRUE(std::isnan(regress({1}, {2}).pearson));
}

TEST(Metrics, RegressionErrors) {
  EXPECT_THROW(regress({}, {}), Error);
  EXPECT_THROW(regress({1, 2}, {1}), Error);
  EXPECT_THROW(regress({1, NAN}, {1, 2}), Error);
  EXPECT_THROW(regress({1, 2}, {INFINITY, 2}), Error);
}

TEST(Metrics, MetricValueReadsEitherReportAfterARoundTrip) {
  const auto c = classify({0, 1, 2, 1}, {0, 1, 1, 1}, {"against", "favor", "none"},
                          {{0.8, 0.1, 0.1}, {0.1, 0.8, 0.1}, {0.2, 0.5, 0.3}, {0.3, 0.4, 0.3}});
  const auto cj = nlohmann::json::parse(c.to_json().dump());
  EXPECT_DOUBLE_EQ(metric_value(cj, "accuracy"), c.accuracy);
  EXPECT_DOUBLE_EQ(metric_value(cj, "f1_macro"), c.f1_macro);
  EXPECT_DOUBLE_EQ(metric_value(cj, "f1_weighted"), c.f1_weighted);
  EXPECT_DOUBLE_EQ(metric_value(cj, "semeval_f1"), *c.semeval_f1);
  EXPECT_DOUBLE_EQ(metric_value(cj, "roc_auc"), *c.roc_auc_ovr);
  EXPECT_EQ(cj.at("confusion").get<std::vector<std::vector<int64_t>>>(), c.confusion);
  EXPECT_EQ(cj.at("classes").get<std::vector<std::string>>(), c.classes);

  const auto r = regress({1, 2, 3, 4}, {1.5, 2, 2.5, 5});
  const auto rj = nlohmann::json::parse(r.to_json().dump());
  for (const char* name : {"mse", "rmse", "mae", "pearson", "spearman"})
    EXPECT_DOUBLE_EQ(metric_value(rj, name), rj.at(name).get<double>()) << name;
  EXPECT_DOUBLE_EQ(metric_value(rj, "pearson"), r.pearson);

  nlohmann::json with_loss = rj;
  with_loss["loss"] = 0.25;
  EXPECT_DOUBLE_EQ(metric_value(with_loss, "loss"), 0.25);
}

TEST(Metrics, MetricValueErrors) {
  const auto plain = classify({0, 1}, {0, 1}, {"a", "b"}).to_json();
  const std::string unknown = error_of([&] { metric_value(plain, "f2"); });
  EXPECT_NE(unknown.find("unknown metric 'f2'"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("accuracy, f1_macro"), std::string::npos) << unknown;  // lists them
  EXPECT_NE(unknown.find("spearman"), std::string::npos) << unknown;
  EXPECT_NE(error_of([&] { metric_value(plain, "semeval_f1"); }).find("favor and against"),
            std::string::npos);
  EXPECT_NE(error_of([&] { metric_value(plain, "roc_auc"); }).find("probabilities"), std::string::npos);
  EXPECT_NE(error_of([&] { metric_value(plain, "mse"); }).find("no metric 'mse'"), std::string::npos);
  EXPECT_THROW(metric_value(plain, "loss"), Error);
}

TEST(Metrics, GreaterIsBetter) {
  for (const char* name : {"accuracy", "f1_macro", "f1_weighted", "semeval_f1", "roc_auc", "pearson",
                           "spearman", "precision_macro", "recall_weighted"})
    EXPECT_TRUE(greater_is_better(name)) << name;
  for (const char* name : {"loss", "mse", "rmse", "mae"}) EXPECT_FALSE(greater_is_better(name)) << name;
  EXPECT_THROW(greater_is_better("acc"), Error);
  for (const auto& name : metric_names()) EXPECT_NO_THROW(greater_is_better(name)) << name;
}

// n examples whose prediction is right with probability ~0.8, from a fixed stream.
void noisy_labels(size_t n, uint64_t seed, std::vector<int>& truth, std::vector<int>& predicted) {
  Xoshiro256 rng(seed);
  truth.resize(n);
  predicted.resize(n);
  for (size_t i = 0; i < n; ++i) {
    truth[i] = int(rng.below(3));
    predicted[i] = rng.unit() < 0.8 ? truth[i] : int(rng.below(3));
  }
}

TEST(Metrics, BootstrapClassification) {
  const std::vector<std::string> classes = {"against", "favor", "none"};
  std::vector<int> t, p;
  noisy_labels(200, 1, t, p);
  const auto point = classify(t, p, classes);
  for (const char* metric : {"accuracy", "f1_macro", "f1_weighted", "semeval_f1"}) {
    const Interval ci = bootstrap_classification(t, p, classes, metric, 500, 0.95, 7);
    const double v = metric_value(point.to_json(), metric);
    EXPECT_LT(ci.low, v) << metric;
    EXPECT_GT(ci.high, v) << metric;
  }
  // Same seed, same interval; another seed, another one.
  const Interval a = bootstrap_classification(t, p, classes, "accuracy", 300, 0.9, 3);
  const Interval b = bootstrap_classification(t, p, classes, "accuracy", 300, 0.9, 3);
  const Interval c = bootstrap_classification(t, p, classes, "accuracy", 300, 0.9, 4);
  EXPECT_EQ(a.low, b.low);
  EXPECT_EQ(a.high, b.high);
  EXPECT_TRUE(a.low != c.low || a.high != c.high);
  // A lower confidence gives a narrower interval inside the wider one (same resamples).
  const Interval wide = bootstrap_classification(t, p, classes, "accuracy", 300, 0.99, 3);
  EXPECT_LE(wide.low, a.low);
  EXPECT_GE(wide.high, a.high);
  // More data, narrower interval (width ~ 1/sqrt(n): 20x the data, ~4.5x narrower).
  std::vector<int> t_big, p_big;
  noisy_labels(4000, 2, t_big, p_big);
  const Interval big = bootstrap_classification(t_big, p_big, classes, "accuracy", 300, 0.95, 3);
  const Interval small = bootstrap_classification(t, p, classes, "accuracy", 300, 0.95, 3);
  EXPECT_LT(big.high - big.low, 0.4 * (small.high - small.low));
  // ROC-AUC resamples the probability rows with their examples.
  std::vector<std::vector<double>> prob;
  for (int y : t) prob.push_back({y == 0 ? 0.6 : 0.2, y == 1 ? 0.6 : 0.2, y == 2 ? 0.6 : 0.2});
  prob[0] = {0.1, 0.1, 0.8};
  const Interval auc = bootstrap_classification(t, p, classes, "roc_auc", 200, 0.95, 1, prob);
  const double auc_point = *classify(t, p, classes, prob).roc_auc_ovr;
  EXPECT_LE(auc.low, auc_point);
  EXPECT_GE(auc.high, auc_point);
  EXPECT_LE(auc.high, 1.0);
}

TEST(Metrics, BootstrapRegression) {
  Xoshiro256 rng(11);
  auto sample = [&](size_t n, std::vector<double>& t, std::vector<double>& p) {
    t.resize(n);
    p.resize(n);
    for (size_t i = 0; i < n; ++i) {
      t[i] = rng.unit();
      p[i] = t[i] + 0.3 * (rng.unit() - 0.5);
    }
  };
  std::vector<double> t, p, tb, pb;
  sample(100, t, p);
  sample(3000, tb, pb);
  const auto point = regress(t, p);
  for (const char* metric : {"mse", "rmse", "mae", "pearson", "spearman"}) {
    const Interval ci = bootstrap_regression(t, p, metric, 400, 0.95, 5);
    const double v = metric_value(point.to_json(), metric);
    EXPECT_LT(ci.low, v) << metric;
    EXPECT_GT(ci.high, v) << metric;
    const Interval big = bootstrap_regression(tb, pb, metric, 400, 0.95, 5);
    EXPECT_LT(big.high - big.low, 0.5 * (ci.high - ci.low)) << metric;
  }
  const Interval a = bootstrap_regression(t, p, "pearson", 100, 0.95, 9);
  const Interval b = bootstrap_regression(t, p, "pearson", 100, 0.95, 9);
  EXPECT_EQ(a.low, b.low);
  EXPECT_EQ(a.high, b.high);
  // Every resample of a constant prediction has an undefined correlation.
  const Interval nan = bootstrap_regression({1, 2, 3}, {4, 4, 4}, "pearson", 50);
  EXPECT_TRUE(std::isnan(nan.low) && std::isnan(nan.high));
}

TEST(Metrics, BootstrapErrors) {
  const std::vector<std::string> ab = {"a", "b"};
  EXPECT_THROW(bootstrap_classification({0, 1}, {0, 1}, ab, "accuracy", 0), Error);
  EXPECT_THROW(bootstrap_classification({0, 1}, {0, 1}, ab, "accuracy", 10, 1.0), Error);
  EXPECT_THROW(bootstrap_classification({0, 1}, {0, 1}, ab, "accuracy", 10, 0.0), Error);
  EXPECT_THROW(bootstrap_classification({}, {}, ab, "accuracy"), Error);
  EXPECT_THROW(bootstrap_classification({0, 1}, {0, 1}, ab, "mse"), Error);
  EXPECT_THROW(bootstrap_classification({0, 1}, {0, 1}, ab, "semeval_f1"), Error);
  EXPECT_THROW(bootstrap_classification({0, 1}, {0, 1}, ab, "roc_auc"), Error);
  EXPECT_THROW(bootstrap_classification({0, 1}, {0, 1}, ab, "nope"), Error);
  EXPECT_THROW(bootstrap_regression({1, 2}, {1, 2}, "accuracy"), Error);
  EXPECT_THROW(bootstrap_regression({1, 2}, {1, 2}, "loss"), Error);
}

// ---- Parity with scikit-learn / scipy ---------------------------------------------------------

nlohmann::json reference() {
  std::ifstream in(test::reference_dir() / "metrics" / "metrics.json");
  if (!in.good()) return nullptr;
  return nlohmann::json::parse(in);
}

TEST(MetricsParity, ClassificationAsScikitLearn) {
  const auto ref = reference();
  ASSERT_FALSE(ref.is_null()) << "run ctest, which generates the references";
  ASSERT_GE(ref.at("classification").size(), 7u);
  int with_auc = 0, with_semeval = 0, with_invalid = 0;
  for (const auto& c : ref.at("classification")) {
    const std::string name = c.at("name");
    std::vector<std::vector<double>> prob;
    if (c.contains("probabilities")) prob = c.at("probabilities").get<std::vector<std::vector<double>>>();
    const auto r = classify(c.at("truth").get<std::vector<int>>(), c.at("predicted").get<std::vector<int>>(),
                            c.at("classes").get<std::vector<std::string>>(), prob);
    expect_close(r.accuracy, c.at("accuracy"), name + " accuracy");
    for (const char* key : {"precision", "recall", "f1"}) {
      const auto expected = c.at(key).get<std::vector<double>>();
      const auto& actual = key == std::string("precision") ? r.precision
                           : key == std::string("recall")  ? r.recall
                                                           : r.f1;
      ASSERT_EQ(actual.size(), expected.size()) << name;
      for (size_t i = 0; i < actual.size(); ++i)
        expect_close(actual[i], expected[i], name + " " + key + "[" + std::to_string(i) + "]");
    }
    EXPECT_EQ(r.support, c.at("support").get<std::vector<int64_t>>()) << name;
    EXPECT_EQ(r.confusion, c.at("confusion").get<std::vector<std::vector<int64_t>>>()) << name;
    EXPECT_EQ(r.invalid, c.at("invalid").get<int64_t>()) << name;
    with_invalid += r.invalid > 0;
    const auto j = r.to_json();
    for (const char* key : {"precision_macro", "recall_macro", "f1_macro", "precision_weighted",
                            "recall_weighted", "f1_weighted"})
      expect_close(j.at(key), c.at(key), name + " " + key);
    ASSERT_EQ(r.semeval_f1.has_value(), c.contains("semeval_f1")) << name;
    if (r.semeval_f1) {
      expect_close(*r.semeval_f1, c.at("semeval_f1"), name + " semeval_f1");
      ++with_semeval;
    }
    ASSERT_EQ(r.roc_auc_ovr.has_value(), c.contains("roc_auc")) << name;
    if (r.roc_auc_ovr) {
      expect_close(*r.roc_auc_ovr, c.at("roc_auc"), name + " roc_auc");
      ++with_auc;
    }
  }
  EXPECT_GE(with_auc, 5);
  EXPECT_GE(with_semeval, 2);
  EXPECT_GE(with_invalid, 1);
}

TEST(MetricsParity, RegressionAsScikitLearnAndScipy) {
  const auto ref = reference();
  ASSERT_FALSE(ref.is_null()) << "run ctest, which generates the references";
  ASSERT_GE(ref.at("regression").size(), 5u);
  for (const auto& c : ref.at("regression")) {
    const std::string name = c.at("name");
    const auto r =
        regress(c.at("truth").get<std::vector<double>>(), c.at("predicted").get<std::vector<double>>());
    expect_close(r.mse, c.at("mse"), name + " mse");
    expect_close(r.rmse, c.at("rmse"), name + " rmse");
    expect_close(r.mae, c.at("mae"), name + " mae");
    for (const char* key : {"pearson", "spearman"}) {
      const double v = key == std::string("pearson") ? r.pearson : r.spearman;
      if (c.at(key).is_null())
        EXPECT_TRUE(std::isnan(v)) << name << " " << key;
      else
        expect_close(v, c.at(key), name + " " + key);
    }
  }
}

}  // namespace
}  // namespace opine::metrics
