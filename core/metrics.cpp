// Evaluation metrics; see metrics.h for the conventions (scikit-learn's and scipy's).
#include "core/metrics.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "core/random.h"

namespace opine::metrics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const std::vector<std::string> kClassificationNames = {
    "accuracy",           "f1_macro",        "f1_weighted", "precision_macro", "recall_macro",
    "precision_weighted", "recall_weighted", "semeval_f1",  "roc_auc"};
const std::vector<std::string> kRegressionNames = {"mse", "rmse", "mae", "pearson", "spearman"};

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

void check_known(const std::string& name) {
  OPINE_CHECK(contains(metric_names(), name), "unknown metric '", name,
              "'; valid metrics: ", joined(metric_names()));
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// a / b, or 0 when b is 0 (sklearn's zero_division="warn" value).
double divide(double a, double b) { return b == 0 ? 0.0 : a / b; }

double mean(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
}

// Weighted mean as numpy.average; all-zero weights fall back to the plain mean (sklearn's
// _nanaverage). Weights are supports, so this happens only when no class has a true example.
double weighted_mean(const std::vector<double>& v, const std::vector<int64_t>& w) {
  double num = 0, den = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    num += v[i] * double(w[i]);
    den += double(w[i]);
  }
  return den == 0 ? mean(v) : num / den;
}

// 1-based ranks, ties sharing the mean of their ranks (scipy.stats.rankdata's "average").
std::vector<double> average_ranks(const std::vector<double>& x) {
  std::vector<size_t> order(x.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> ranks(x.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && x[order[j + 1]] == x[order[i]]) ++j;
    const double rank = 0.5 * double(i + j) + 1.0;  // mean of i+1 .. j+1
    for (size_t k = i; k <= j; ++k) ranks[order[k]] = rank;
    i = j + 1;
  }
  return ranks;
}

// scipy.stats.pearsonr's statistic: centred vectors scaled by their largest magnitude before the
// norm (no premature overflow), clipped to [-1, 1]; NaN for a constant input or n < 2, exactly
// +-1 for n == 2.
double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = x.size();
  if (n < 2) return kNaN;
  const bool const_x = std::all_of(x.begin(), x.end(), [&](double v) { return v == x[0]; });
  const bool const_y = std::all_of(y.begin(), y.end(), [&](double v) { return v == y[0]; });
  if (const_x || const_y) return kNaN;
  const double mx = mean(x), my = mean(y);
  std::vector<double> xm(n), ym(n);
  double xmax = 0, ymax = 0;
  for (size_t i = 0; i < n; ++i) {
    xm[i] = x[i] - mx;
    ym[i] = y[i] - my;
    xmax = std::max(xmax, std::abs(xm[i]));
    ymax = std::max(ymax, std::abs(ym[i]));
  }
  double sx = 0, sy = 0;
  for (size_t i = 0; i < n; ++i) {
    sx += (xm[i] / xmax) * (xm[i] / xmax);
    sy += (ym[i] / ymax) * (ym[i] / ymax);
  }
  const double nx = xmax * std::sqrt(sx), ny = ymax * std::sqrt(sy);
  double r = 0;
  for (size_t i = 0; i < n; ++i) r += (xm[i] / nx) * (ym[i] / ny);
  r = std::clamp(r, -1.0, 1.0);
  return n == 2 ? std::round(r) : r;
}

// Binary ROC-AUC with ties counted half, which is what sklearn's trapezoid over the ROC curve
// (one point per distinct score) amounts to: the Mann-Whitney U over positives times negatives.
// Integers and halves are exact in double, so there is a single rounding, in the last division.
double binary_auc(const std::vector<bool>& positive, const std::vector<double>& score) {
  std::vector<size_t> order(score.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  double pairs = 0;  // (positive, negative) pairs ranked right, ties as halves
  double negatives_below = 0, positives = 0;
  for (size_t i = 0; i < order.size();) {
    double p = 0, q = 0;
    size_t j = i;
    for (; j < order.size() && score[order[j]] == score[order[i]]; ++j) (positive[order[j]] ? p : q) += 1;
    pairs += p * negatives_below + 0.5 * p * q;
    negatives_below += q;
    positives += p;
    i = j;
  }
  if (positives == 0 || negatives_below == 0) return kNaN;
  return pairs / (positives * negatives_below);
}

std::optional<double> roc_auc(const std::vector<int>& truth,
                              const std::vector<std::vector<double>>& probabilities, size_t k) {
  const size_t n = truth.size();
  std::vector<bool> positive(n);
  std::vector<double> score(n);
  auto column = [&](size_t c) {
    for (size_t i = 0; i < n; ++i) {
      positive[i] = truth[i] == int(c);
      score[i] = probabilities[i][c];
    }
    return binary_auc(positive, score);
  };
  if (k == 2) return column(1);
  double sum = 0;
  for (size_t c = 0; c < k; ++c) sum += column(c);
  return sum / double(k);
}

// A metric of a report; an opine::Error when the report lacks it.
double classification_value(const ClassificationReport& r, const std::string& name) {
  if (name == "accuracy") return r.accuracy;
  if (name == "f1_macro") return r.f1_macro;
  if (name == "f1_weighted") return r.f1_weighted;
  if (name == "precision_macro") return r.precision_macro;
  if (name == "recall_macro") return r.recall_macro;
  if (name == "precision_weighted") return r.precision_weighted;
  if (name == "recall_weighted") return r.recall_weighted;
  if (name == "semeval_f1") {
    OPINE_CHECK(r.semeval_f1.has_value(),
                "metric semeval_f1 needs classes named favor and against; the classes are ",
                joined(r.classes));
    return *r.semeval_f1;
  }
  if (name == "roc_auc") {
    OPINE_CHECK(r.roc_auc_ovr.has_value(), "metric roc_auc needs class probabilities");
    return *r.roc_auc_ovr;
  }
  check_known(name);
  OPINE_CHECK(false, "metric '", name, "' is not a classification metric; choose one of ",
              joined(kClassificationNames));
  return kNaN;
}

double regression_value(const RegressionReport& r, const std::string& name) {
  if (name == "mse") return r.mse;
  if (name == "rmse") return r.rmse;
  if (name == "mae") return r.mae;
  if (name == "pearson") return r.pearson;
  if (name == "spearman") return r.spearman;
  check_known(name);
  OPINE_CHECK(false, "metric '", name, "' is not a regression metric; choose one of ",
              joined(kRegressionNames));
  return kNaN;
}

void check_bootstrap(size_t n, int samples, double confidence) {
  OPINE_CHECK(n > 0, "bootstrap of no examples");
  OPINE_CHECK(samples >= 1, "bootstrap samples must be at least 1, got ", samples);
  OPINE_CHECK(confidence > 0 && confidence < 1, "bootstrap confidence must be in (0, 1), got ", confidence);
}

// numpy.percentile's default (linear) at q in [0, 1] of sorted values.
double percentile(const std::vector<double>& sorted, double q) {
  const double h = double(sorted.size() - 1) * q;
  const size_t lo = size_t(std::floor(h));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (h - double(lo)) * (sorted[hi] - sorted[lo]);
}

// Draws `samples` resamples of n indices, evaluates `metric_of` on each, returns the interval.
template <class F>
Interval bootstrap(size_t n, int samples, double confidence, uint64_t seed, F&& metric_of) {
  Xoshiro256 rng(seed);
  std::vector<size_t> index(n);
  std::vector<double> values;
  values.reserve(size_t(samples));
  for (int s = 0; s < samples; ++s) {
    for (size_t& i : index) i = size_t(rng.below(n));
    const double v = metric_of(index);
    if (!std::isnan(v)) values.push_back(v);
  }
  if (values.empty()) return {kNaN, kNaN};
  std::sort(values.begin(), values.end());
  const double tail = (1 - confidence) / 2;
  return {percentile(values, tail), percentile(values, 1 - tail)};
}

// JSON of a double that may be NaN: null, as nlohmann's dump would write it anyway.
nlohmann::json number(double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }

}  // namespace

const std::vector<std::string>& metric_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> all = kClassificationNames;
    all.insert(all.end(), kRegressionNames.begin(), kRegressionNames.end());
    all.push_back("loss");
    return all;
  }();
  return names;
}

bool greater_is_better(const std::string& name) {
  check_known(name);
  return !(name == "loss" || name == "mse" || name == "rmse" || name == "mae");
}

ClassificationReport classify(const std::vector<int>& truth, const std::vector<int>& predicted,
                              const std::vector<std::string>& classes,
                              const std::vector<std::vector<double>>& probabilities) {
  const size_t n = truth.size(), k = classes.size();
  OPINE_CHECK(k >= 1, "classification metrics need at least one class");
  OPINE_CHECK(n > 0, "classification metrics of no examples");
  OPINE_CHECK(predicted.size() == n, "classification metrics: ", n, " true labels but ", predicted.size(),
              " predictions");
  for (size_t i = 0; i < n; ++i) {
    OPINE_CHECK(truth[i] >= 0 && size_t(truth[i]) < k, "true label ", truth[i], " of example ", i,
                " is not a class index in [0, ", k, ")");
    OPINE_CHECK(predicted[i] < 0 || size_t(predicted[i]) < k, "predicted label ", predicted[i],
                " of example ", i, " is not a class index in [0, ", k, ") nor invalid (< 0)");
  }
  if (!probabilities.empty()) {
    OPINE_CHECK(k >= 2, "ROC-AUC needs at least two classes");
    OPINE_CHECK(probabilities.size() == n, "classification metrics: ", n, " true labels but ",
                probabilities.size(), " probability rows");
    for (size_t i = 0; i < n; ++i) {
      OPINE_CHECK(probabilities[i].size() == k, "probability row ", i, " has ", probabilities[i].size(),
                  " values for ", k, " classes");
      for (double p : probabilities[i])
        OPINE_CHECK(std::isfinite(p), "probability row ", i, " holds a non-finite value");
    }
  }

  ClassificationReport r;
  r.classes = classes;
  r.count = int64_t(n);
  r.confusion.assign(k, std::vector<int64_t>(k, 0));
  r.support.assign(k, 0);
  std::vector<int64_t> predicted_count(k, 0);
  int64_t correct = 0;
  for (size_t i = 0; i < n; ++i) {
    ++r.support[size_t(truth[i])];
    if (predicted[i] < 0) {
      ++r.invalid;
      continue;
    }
    ++r.confusion[size_t(truth[i])][size_t(predicted[i])];
    ++predicted_count[size_t(predicted[i])];
    correct += truth[i] == predicted[i];
  }
  r.accuracy = double(correct) / double(n);
  r.invalid_rate = double(r.invalid) / double(n);
  r.precision.resize(k);
  r.recall.resize(k);
  r.f1.resize(k);
  for (size_t c = 0; c < k; ++c) {
    const double tp = double(r.confusion[c][c]);
    r.precision[c] = divide(tp, double(predicted_count[c]));
    r.recall[c] = divide(tp, double(r.support[c]));
    // sklearn's form, 2 tp / (2 tp + fp + fn), rather than the harmonic mean of the rounded
    // precision and recall.
    r.f1[c] = divide(2 * tp, double(r.support[c] + predicted_count[c]));
  }
  r.precision_macro = mean(r.precision);
  r.recall_macro = mean(r.recall);
  r.f1_macro = mean(r.f1);
  r.precision_weighted = weighted_mean(r.precision, r.support);
  r.recall_weighted = weighted_mean(r.recall, r.support);
  r.f1_weighted = weighted_mean(r.f1, r.support);

  std::optional<size_t> favor, against;
  for (size_t c = 0; c < k; ++c) {
    const std::string name = lower(classes[c]);
    if (name == "favor" && !favor) favor = c;
    if (name == "against" && !against) against = c;
  }
  if (favor && against) r.semeval_f1 = (r.f1[*favor] + r.f1[*against]) / 2;
  if (!probabilities.empty()) r.roc_auc_ovr = roc_auc(truth, probabilities, k);
  return r;
}

nlohmann::json ClassificationReport::to_json() const {
  nlohmann::json j;
  j["classes"] = classes;
  j["count"] = count;
  j["accuracy"] = accuracy;
  j["precision"] = precision;
  j["recall"] = recall;
  j["f1"] = f1;
  j["support"] = support;
  j["precision_macro"] = precision_macro;
  j["recall_macro"] = recall_macro;
  j["f1_macro"] = f1_macro;
  j["precision_weighted"] = precision_weighted;
  j["recall_weighted"] = recall_weighted;
  j["f1_weighted"] = f1_weighted;
  j["confusion"] = confusion;
  if (semeval_f1) j["semeval_f1"] = *semeval_f1;
  if (roc_auc_ovr) j["roc_auc_ovr"] = number(*roc_auc_ovr);
  j["invalid"] = invalid;
  j["invalid_rate"] = invalid_rate;
  return j;
}

RegressionReport regress(const std::vector<double>& truth, const std::vector<double>& predicted) {
  const size_t n = truth.size();
  OPINE_CHECK(n > 0, "regression metrics of no examples");
  OPINE_CHECK(predicted.size() == n, "regression metrics: ", n, " true values but ", predicted.size(),
              " predictions");
  for (size_t i = 0; i < n; ++i)
    OPINE_CHECK(std::isfinite(truth[i]) && std::isfinite(predicted[i]),
                "regression metrics: non-finite value at example ", i, " (true ", truth[i], ", predicted ",
                predicted[i], ")");
  RegressionReport r;
  r.count = int64_t(n);
  double squared = 0, absolute = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = truth[i] - predicted[i];
    squared += d * d;
    absolute += std::abs(d);
  }
  r.mse = squared / double(n);
  r.rmse = std::sqrt(r.mse);
  r.mae = absolute / double(n);
  r.pearson = pearson(truth, predicted);
  r.spearman = pearson(average_ranks(truth), average_ranks(predicted));
  return r;
}

nlohmann::json RegressionReport::to_json() const {
  return {{"count", count},
          {"mse", mse},
          {"rmse", rmse},
          {"mae", mae},
          {"pearson", number(pearson)},
          {"spearman", number(spearman)}};
}

double metric_value(const nlohmann::json& report, const std::string& name) {
  check_known(name);
  const std::string key = name == "roc_auc" ? "roc_auc_ovr" : name;
  const auto it = report.find(key);
  if (it != report.end() && it->is_number()) return it->get<double>();
  if (it != report.end() && it->is_null()) return kNaN;  // how to_json writes an undefined value
  OPINE_CHECK(name != "semeval_f1", "metric semeval_f1 needs classes named favor and against");
  OPINE_CHECK(name != "roc_auc", "metric roc_auc needs class probabilities");
  OPINE_CHECK(false, "the report has no metric '", name, "'");
  return kNaN;
}

Interval bootstrap_classification(const std::vector<int>& truth, const std::vector<int>& predicted,
                                  const std::vector<std::string>& classes, const std::string& metric,
                                  int samples, double confidence, uint64_t seed,
                                  const std::vector<std::vector<double>>& probabilities) {
  check_bootstrap(truth.size(), samples, confidence);
  // The full report validates the inputs and the metric (e.g. semeval_f1 without favor).
  const bool wants_probabilities = metric == "roc_auc";
  const std::vector<std::vector<double>> none;
  classification_value(classify(truth, predicted, classes, wants_probabilities ? probabilities : none),
                       metric);
  const size_t n = truth.size();
  std::vector<int> t(n), p(n);
  std::vector<std::vector<double>> prob(wants_probabilities ? n : 0);
  return bootstrap(n, samples, confidence, seed, [&](const std::vector<size_t>& index) {
    for (size_t i = 0; i < n; ++i) {
      t[i] = truth[index[i]];
      p[i] = predicted[index[i]];
      if (wants_probabilities) prob[i] = probabilities[index[i]];
    }
    return classification_value(classify(t, p, classes, prob), metric);
  });
}

Interval bootstrap_regression(const std::vector<double>& truth, const std::vector<double>& predicted,
                              const std::string& metric, int samples, double confidence, uint64_t seed) {
  check_bootstrap(truth.size(), samples, confidence);
  regression_value(regress(truth, predicted), metric);
  const size_t n = truth.size();
  std::vector<double> t(n), p(n);
  return bootstrap(n, samples, confidence, seed, [&](const std::vector<size_t>& index) {
    for (size_t i = 0; i < n; ++i) {
      t[i] = truth[index[i]];
      p[i] = predicted[index[i]];
    }
    return regression_value(regress(t, p), metric);
  });
}

}  // namespace opine::metrics
