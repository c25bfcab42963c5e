#include "launch/eval_report.h"

#include <cstdlib>
#include <iomanip>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"

namespace opine::launch {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string number(double v, int digits = 4) {
  if (std::isnan(v)) return "n/a";
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

std::string quoted_for_shell(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

json summarize(const EvalRecord& r, const EvalOptions& o, uint64_t seed) {
  OPINE_ASSERT(r.examples.size() == r.predictions.size(), "examples and predictions differ in count");
  OPINE_CHECK(!r.examples.empty(), "nothing to evaluate: the ", r.split, " split is empty");
  json out = r.info.is_object() ? r.info : json::object();
  out["strategy"] = r.strategy;
  out["split"] = r.split;
  out["examples"] = r.examples.size();
  out["seconds"] = r.seconds;
  out["examples_per_s"] = r.seconds > 0 ? double(r.examples.size()) / r.seconds : 0.0;
  json intervals = json::object();
  if (r.kind == data::LabelKind::kClass) {
    std::vector<int> truth, predicted;
    std::vector<std::vector<double>> probabilities;
    for (size_t i = 0; i < r.examples.size(); ++i) {
      OPINE_CHECK(r.examples[i].label >= 0, "example ", i, " of split ", r.split, " has no label");
      truth.push_back(r.examples[i].label);
      predicted.push_back(r.predictions[i].label);
      probabilities.push_back(r.predictions[i].probabilities);
    }
    const bool with_probs = !probabilities.empty() && probabilities[0].size() == r.classes.size();
    const metrics::ClassificationReport report = metrics::classify(
        truth, predicted, r.classes, with_probs ? probabilities : std::vector<std::vector<double>>{});
    out["metrics"] = report.to_json();
    // An interval for every scalar the report has (per-class values excepted).
    std::vector<std::string> names = {"accuracy",           "precision_macro", "recall_macro", "f1_macro",
                                      "precision_weighted", "recall_weighted", "f1_weighted"};
    if (report.semeval_f1) names.push_back("semeval_f1");
    if (report.roc_auc_ovr) names.push_back("roc_auc");
    for (const std::string& m : names)
      if (o.bootstrap > 0) {
        const metrics::Interval ci = metrics::bootstrap_classification(
            truth, predicted, r.classes, m, o.bootstrap, o.confidence, seed,
            with_probs ? probabilities : std::vector<std::vector<double>>{});
        intervals[m == "roc_auc" ? "roc_auc_ovr" : m] = {ci.low, ci.high};
      }
  } else {
    std::vector<double> truth, predicted;
    for (size_t i = 0; i < r.examples.size(); ++i) {
      truth.push_back(r.examples[i].target);
      predicted.push_back(r.predictions[i].score);
    }
    out["metrics"] = metrics::regress(truth, predicted).to_json();
    for (const char* m : {"mse", "rmse", "mae", "pearson", "spearman"})
      if (o.bootstrap > 0) {
        const metrics::Interval ci =
            metrics::bootstrap_regression(truth, predicted, m, o.bootstrap, o.confidence, seed);
        intervals[m] = {ci.low, ci.high};
      }
  }
  if (o.bootstrap > 0) {
    out["intervals"] = intervals;
    out["confidence"] = o.confidence;
    out["bootstrap_samples"] = o.bootstrap;
  }
  return out;
}

bool draw_plots(const std::string& mode, const fs::path& dir) {
  const char* python_env = std::getenv("OPINE_PYTHON");
  const char* script_env = std::getenv("OPINE_PLOTS_SCRIPT");
  const std::string python = python_env && *python_env ? python_env : OPINE_DEFAULT_PYTHON;
  const std::string script = script_env && *script_env ? script_env : OPINE_SOURCE_DIR "/launch/plots.py";
  if (!fs::exists(script)) {
    log::warn("no plots: ", script, " is missing (set OPINE_PLOTS_SCRIPT)");
    return false;
  }
  const std::string command = quoted_for_shell(python) + " " + quoted_for_shell(script) + " " + mode + " " +
                              quoted_for_shell(dir.string()) + " > /dev/null";
  const int status = std::system(command.c_str());
  if (status != 0) {
    log::warn("no plots: `", command, "` failed (status ", status,
              "); set OPINE_PYTHON to a Python with matplotlib, or eval.plots=false");
    return false;
  }
  return true;
}

void write_eval_outputs(const fs::path& dir, const EvalRecord& r, const json& summary, const EvalOptions& o) {
  fs::create_directories(dir);
  write_text_atomic(dir / "metrics.json", summary.dump(2) + "\n");
  const json& m = summary.at("metrics");
  const json intervals = summary.value("intervals", json::object());

  // metrics.csv: one scalar per line, with its interval where there is one.
  write_file_atomic(dir / "metrics.csv", [&](std::ostream& out) {
    out << "metric,value,low,high\n";
    for (auto& [key, value] : m.items()) {
      if (!value.is_number() && !value.is_null()) continue;
      out << key << "," << (value.is_null() ? "" : value.dump());
      if (intervals.contains(key))
        out << "," << intervals[key][0].dump() << "," << intervals[key][1].dump();
      else
        out << ",,";
      out << "\n";
    }
    if (r.kind == data::LabelKind::kClass)
      for (size_t c = 0; c < r.classes.size(); ++c)
        out << "f1[" << csv_field(r.classes[c]) << "]," << m["f1"][c].dump() << ",,\n";
  });

  // predictions.csv: the examples in order, with the source row they came from.
  const bool generative = r.strategy == "generate" || r.strategy == "vote";
  const bool loglik = r.strategy == "loglik";
  write_file_atomic(dir / "predictions.csv", [&](std::ostream& out) {
    out << "index,row,text";
    if (r.kind == data::LabelKind::kClass) {
      out << ",truth,predicted";
      for (const std::string& c : r.classes) out << "," << csv_field("p_" + c);
      if (loglik)
        for (const std::string& c : r.classes) out << "," << csv_field("logp_" + c);
    } else {
      out << ",truth,score";
    }
    if (generative) out << ",answer";
    out << "\n";
    for (size_t i = 0; i < r.examples.size(); ++i) {
      const data::Example& e = r.examples[i];
      const ExamplePrediction& p = r.predictions[i];
      out << i << "," << e.row << "," << csv_field(e.text);
      if (r.kind == data::LabelKind::kClass) {
        out << "," << csv_field(r.classes.at(size_t(e.label))) << ","
            << (p.label >= 0 ? csv_field(r.classes.at(size_t(p.label))) : std::string());
        for (size_t c = 0; c < r.classes.size(); ++c)
          out << "," << (c < p.probabilities.size() ? json(p.probabilities[c]).dump() : std::string());
        if (loglik)
          for (size_t c = 0; c < r.classes.size(); ++c)
            out << "," << (c < p.logprobs.size() ? json(p.logprobs[c]).dump() : std::string());
      } else {
        out << "," << json(e.target).dump() << "," << json(p.score).dump();
      }
      if (generative) out << "," << csv_field(p.answer);
      out << "\n";
    }
  });

  const bool plotted = o.plots && draw_plots("eval", dir);

  // report.md: what a person reads first.
  std::ostringstream md;
  md << "# " << r.strategy << " on " << r.split << "\n\n";
  for (const char* key : {"model", "adapter", "dataset", "shots", "shot_selection"})
    if (summary.contains(key) && !summary[key].is_null())
      md << "- " << key << ": `" << summary[key].dump() << "`\n";
  md << "- examples: " << r.examples.size() << ", " << number(summary.at("examples_per_s").get<double>(), 1)
     << " examples/s (" << number(r.seconds, 1) << " s)\n\n";
  md << "| metric | value |"
     << (intervals.empty() ? "" : " " + number(o.confidence * 100, 0) + "% interval |") << "\n";
  md << "|---|---|" << (intervals.empty() ? "" : "---|") << "\n";
  for (auto& [key, value] : m.items()) {
    if (!value.is_number() || key == "count") continue;
    md << "| " << key << " | " << number(value.get<double>()) << " |";
    if (!intervals.empty())
      md << (intervals.contains(key) ? " " + number(intervals[key][0].get<double>()) + " – " +
                                           number(intervals[key][1].get<double>()) + " |"
                                     : " |");
    md << "\n";
  }
  if (r.kind == data::LabelKind::kClass) {
    md << "\n| class | precision | recall | F1 | support |\n|---|---|---|---|---|\n";
    for (size_t c = 0; c < r.classes.size(); ++c)
      md << "| " << r.classes[c] << " | " << number(m["precision"][c].get<double>()) << " | "
         << number(m["recall"][c].get<double>()) << " | " << number(m["f1"][c].get<double>()) << " | "
         << m["support"][c].get<int64_t>() << " |\n";
    md << "\nConfusion matrix (rows: truth, columns: prediction)\n\n| |";
    for (const std::string& c : r.classes) md << " " << c << " |";
    md << "\n|---|" << [&] {
      std::string s;
      for (size_t c = 0; c < r.classes.size(); ++c) s += "---|";
      return s;
    }() << "\n";
    for (size_t t = 0; t < r.classes.size(); ++t) {
      md << "| " << r.classes[t] << " |";
      for (size_t p = 0; p < r.classes.size(); ++p) md << " " << m["confusion"][t][p].get<int64_t>() << " |";
      md << "\n";
    }
    if (m.value("invalid", 0) > 0)
      md << "\n" << m["invalid"].get<int64_t>() << " answers named no class (invalid).\n";
    if (plotted) md << "\n![confusion matrix](confusion.png)\n";
  } else if (plotted) {
    md << "\n![predicted vs true score](scatter.png)\n";
  }
  write_text_atomic(dir / "report.md", md.str());
}

}  // namespace opine::launch
