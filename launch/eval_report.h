// What an evaluation writes: metrics with bootstrap confidence intervals (metrics.json,
// metrics.csv), every example's prediction (predictions.csv), a short Markdown report
// (report.md) and PNG plots (confusion matrix or score scatter, drawn by launch/plots.py).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/batch.h"
#include "data/example.h"
#include "launch/eval_options.h"
#include "launch/strategies.h"

namespace opine::launch {

struct EvalRecord {
  std::string strategy;
  std::string split;
  std::vector<std::string> classes;  // empty for regression
  data::LabelKind kind = data::LabelKind::kClass;
  data::Examples examples;  // texts and truths, in the order of `predictions`
  std::vector<ExamplePrediction> predictions;
  double seconds = 0;   // prediction time, loading excluded
  nlohmann::json info;  // model, adapter, options ... (copied into metrics.json)
};

// {"strategy", "split", "examples", "seconds", "examples_per_s", "metrics": REPORT,
//  "intervals": {metric: [low, high]}, ...info}: REPORT as core/metrics.h makes it.
nlohmann::json summarize(const EvalRecord& record, const EvalOptions& options, uint64_t seed);

// Writes metrics.json, metrics.csv, predictions.csv and report.md into `dir` (atomically), then
// the plots when `options.plots` (a missing Python or matplotlib is a warning, not an error).
void write_eval_outputs(const std::filesystem::path& dir, const EvalRecord& record,
                        const nlohmann::json& summary, const EvalOptions& options);

// A CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
std::string csv_field(const std::string& text);

// Runs `python launch/plots.py MODE DIR`; false (with a warning) when it cannot.
bool draw_plots(const std::string& mode, const std::filesystem::path& dir);

}  // namespace opine::launch
