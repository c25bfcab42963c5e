// Evaluation metrics on plain vectors: classification (accuracy, per-class and averaged
// precision/recall/F1, confusion matrix, SemEval stance F1, one-vs-rest ROC-AUC) and regression
// (MSE, RMSE, MAE, Pearson, Spearman), their JSON form, the scalar the trainer stops on, and
// percentile bootstrap intervals. Values follow scikit-learn 1.9 / scipy 1.17 (checked by the
// MetricsParity tests against tests/reference/metrics_reference.py).
//
// Classification conventions, as sklearn's precision_recall_fscore_support(labels=range(K)):
//   - every one of the K classes counts in the macro average, even one absent from truth and
//     predictions (its precision, recall and F1 are 0);
//   - a division by zero (no predicted / no true samples of a class) gives 0.0;
//   - a prediction < 0 is an invalid answer (a generated text that names no class): it is a
//     wrong label outside the set, so it lowers accuracy and its true class's recall, adds no
//     false positive to any class, and stays in the support. As in sklearn's confusion_matrix
//     with labels=, it has no cell in `confusion` (a row of `confusion` then sums to that class's
//     support minus its invalid answers); `invalid` counts them.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace opine::metrics {

struct ClassificationReport {
  std::vector<std::string> classes;
  int64_t count = 0;  // examples
  double accuracy = 0;
  // Per class, in the order of `classes`.
  std::vector<double> precision, recall, f1;
  std::vector<int64_t> support;  // true examples of the class
  double precision_macro = 0, recall_macro = 0, f1_macro = 0;
  double precision_weighted = 0, recall_weighted = 0, f1_weighted = 0;  // weighted by support
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted], valid predictions only
  // Mean F1 of the classes named favor and against (any case) when both exist: the SemEval-2016
  // task 6 stance score.
  std::optional<double> semeval_f1;
  // One-vs-rest macro ROC-AUC when probabilities are given (two classes: the AUC of class 1's
  // score). NaN, as sklearn's, when some class has no positive or no negative example in truth.
  std::optional<double> roc_auc_ovr;
  int64_t invalid = 0;      // predictions < 0
  double invalid_rate = 0;  // invalid / count

  // Keys are the field names; an absent optional is left out, a NaN is null.
  nlohmann::json to_json() const;
};

// `truth` in [0, K); `predicted` in [0, K) or < 0 (invalid); K = classes.size() >= 1; not empty.
// `probabilities`, when given, is one row of K scores per example (higher = more likely that
// class). Rows need not sum to 1 (AUC only ranks each column), unlike sklearn, which refuses
// unnormalised multiclass scores.
ClassificationReport classify(const std::vector<int>& truth, const std::vector<int>& predicted,
                              const std::vector<std::string>& classes,
                              const std::vector<std::vector<double>>& probabilities = {});

struct RegressionReport {
  double mse = 0, rmse = 0, mae = 0;
  // NaN, as scipy's, when an input is constant or there are fewer than two examples.
  double pearson = 0, spearman = 0;
  int64_t count = 0;
  nlohmann::json to_json() const;  // a NaN is null
};

// Same non-zero length, finite values.
RegressionReport regress(const std::vector<double>& truth, const std::vector<double>& predicted);

// The metric names metric_value and greater_is_better know, for messages and config rules.
const std::vector<std::string>& metric_names();

// A named scalar from either report's JSON (or from a JSON that also holds "loss"); NaN where
// the JSON holds null (an undefined value):
// accuracy, f1_macro, f1_weighted, precision_macro, recall_macro, precision_weighted,
// recall_weighted, semeval_f1, roc_auc, mse, rmse, mae, pearson, spearman, loss.
// An unknown name, or one the report lacks (semeval_f1 without favor/against classes, roc_auc
// without probabilities, a regression metric of a classification report), is an opine::Error.
double metric_value(const nlohmann::json& report, const std::string& name);

// False for loss, mse, rmse and mae; an unknown name is an opine::Error.
bool greater_is_better(const std::string& name);

// Percentile bootstrap interval: `samples` resamples of the examples with replacement, drawn by
// Xoshiro256(seed); the metric of each; the (1 - confidence) / 2 and (1 + confidence) / 2
// percentiles (linear interpolation, as numpy.percentile). Resamples where the metric is
// undefined (NaN: a constant resample's Pearson, a class missing for ROC-AUC) are left out; if
// all are, the interval is NaN.
struct Interval {
  double low, high;
};
Interval bootstrap_classification(const std::vector<int>& truth, const std::vector<int>& predicted,
                                  const std::vector<std::string>& classes, const std::string& metric,
                                  int samples = 1000, double confidence = 0.95, uint64_t seed = 0,
                                  const std::vector<std::vector<double>>& probabilities = {});
Interval bootstrap_regression(const std::vector<double>& truth, const std::vector<double>& predicted,
                              const std::string& metric, int samples = 1000, double confidence = 0.95,
                              uint64_t seed = 0);

}  // namespace opine::metrics
