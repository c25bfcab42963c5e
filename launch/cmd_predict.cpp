// `opine predict`: labels for every row of a CSV / TSV / JSONL file, written in input order. Rows
// go through in chunks; under mpirun each chunk is split over the ranks and rank 0 writes the
// merged rows. A row that cannot be read or has no text is reported and written with its error;
// the others are unaffected.
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/runtime.h"
#include "data/dataset.h"
#include "data/readers.h"
#include "launch/commands.h"
#include "launch/eval_report.h"
#include "launch/predictor.h"
#include "launch/progress.h"
#include "launch/resolve.h"

namespace opine::launch {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::vector<FlagSpec> kPredictFlags = {
    {"model", "PATH", "base model (model.path)"},
    {"adapter", "DIR", "adapter folder a run saved; its run's configuration is the default --config"},
    {"input", "FILE", "CSV, TSV or JSONL file of texts"},
    {"text-column", "NAME", "the column (JSONL: key) holding the text (default text)"},
    {"output", "FILE", "where the labelled rows go (.csv, .tsv or .jsonl)"},
    {"batch-size", "N", "texts per forward pass (eval.batch_size)"},
    {"strategy", "NAME", "head | loglik | generate | vote | auto (eval.strategy)"},
    {"chunk", "N", "rows read, predicted and written at a time (default 4096)"},
    {"encoding", "NAME", "input encoding: utf-8-or-windows-1252 (default), utf-8, windows-1252, latin-1"},
    {"config", "FILE", "YAML configuration (without an adapter: the task template and labels)"},
    {"help", "", "show this help"},
};

enum class FileKind { kCsv, kTsv, kJsonl };

FileKind kind_of(const fs::path& path, const char* flag) {
  const std::string format = data::format_from_extension(path);
  OPINE_CHECK(!format.empty(), flag, " ", path.string(),
              ": the extension says the format: .csv, .tsv or .jsonl");
  return format == "csv" ? FileKind::kCsv : format == "tsv" ? FileKind::kTsv : FileKind::kJsonl;
}

int64_t count_words(const std::string& text) {
  int64_t words = 0;
  bool in_word = false;
  for (char c : text) {
    const bool space = std::isspace(static_cast<unsigned char>(c));
    if (!space && !in_word) ++words;
    in_word = !space;
  }
  return words;
}

// Writes rows in the output's format.
class RowWriter {
 public:
  RowWriter(std::ostream& out, FileKind kind, const std::vector<std::string>& input_columns,
            const std::vector<std::string>& classes, data::LabelKind labels, bool answers)
      : out_(out), kind_(kind), input_(input_columns), classes_(classes), labels_(labels), answers_(answers) {
    for (const std::string& c : input_)
      OPINE_CHECK(c.rfind("pred_", 0) != 0, "the input has a column '", c,
                  "': opine predict's own columns start with pred_; rename it");
    if (kind_ == FileKind::kJsonl) return;
    std::vector<std::string> header = input_;
    header.push_back("pred_line");
    if (labels_ == data::LabelKind::kClass) {
      header.push_back("pred_label");
      for (const std::string& c : classes_) header.push_back("pred_prob_" + c);
    } else {
      header.push_back("pred_score");
    }
    if (answers_) header.push_back("pred_answer");
    header.push_back("pred_error");
    write_fields(header);
  }

  void write(const std::vector<std::string>& fields, int64_t line, const ExamplePrediction* p,
             const std::string& error) {
    if (kind_ == FileKind::kJsonl) {
      json o = json::object();
      for (size_t c = 0; c < input_.size(); ++c) o[input_[c]] = fields[c];
      o["pred_line"] = line;
      if (p && labels_ == data::LabelKind::kClass) {
        o["pred_label"] = p->label >= 0 ? json(classes_[size_t(p->label)]) : json();
        json probs = json::object();
        for (size_t c = 0; c < classes_.size() && c < p->probabilities.size(); ++c)
          probs[classes_[c]] = p->probabilities[c];
        o["pred_probabilities"] = probs;
      } else if (p) {
        o["pred_score"] = p->score;
      }
      if (p && answers_) o["pred_answer"] = p->answer;
      if (!error.empty()) o["pred_error"] = error;
      out_ << o.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
      return;
    }
    std::vector<std::string> row = fields;
    row.push_back(std::to_string(line));
    if (labels_ == data::LabelKind::kClass) {
      row.push_back(p && p->label >= 0 ? classes_[size_t(p->label)] : "");
      for (size_t c = 0; c < classes_.size(); ++c)
        row.push_back(p && c < p->probabilities.size() ? json(p->probabilities[c]).dump() : "");
    } else {
      row.push_back(p ? json(p->score).dump() : "");
    }
    if (answers_) row.push_back(p ? p->answer : "");
    row.push_back(error);
    write_fields(row);
  }

 private:
  void write_fields(const std::vector<std::string>& fields) {
    for (size_t i = 0; i < fields.size(); ++i) {
      if (i) out_ << (kind_ == FileKind::kTsv ? '\t' : ',');
      if (kind_ == FileKind::kTsv) {
        std::string f = fields[i];
        for (char& c : f)
          if (c == '\t' || c == '\n' || c == '\r') c = ' ';
        out_ << f;
      } else {
        out_ << csv_field(fields[i]);
      }
    }
    out_ << "\n";
  }

  std::ostream& out_;
  FileKind kind_;
  std::vector<std::string> input_, classes_;
  data::LabelKind labels_;
  bool answers_;
};

}  // namespace

int run_predict(const std::vector<std::string>& argv) {
  Args args(kPredictFlags, argv);
  if (args.has("help")) {
    std::cout << "usage: opine predict --model M --adapter RUN/adapter --input in.csv --output out.csv\n"
                 "       [--text-column text] [--batch-size 32]    (mpirun -np N: the rows split over the "
                 "ranks)\n\n"
                 "Labels every row, in input order: the input's columns, then pred_line, pred_label and\n"
                 "pred_prob_CLASS per class (or pred_score), and pred_error for a row that could not be\n"
                 "read. Prints throughput.\n\n"
              << format_flags(kPredictFlags);
    return 0;
  }
  OPINE_CHECK(args.positionals().empty(), "unexpected argument '", args.positionals().front(), "'");
  const std::unique_ptr<dist::Runtime> runtime = dist::Runtime::start(nullptr, nullptr);
  log::set_rank(runtime->rank(), runtime->world_size());
  const bool lead = runtime->rank() == 0;
  const std::string adapter = normalized_adapter_path(args.get("adapter").value_or(""));
  const std::string default_config =
      args.has("config") || adapter.empty() ? "" : adapter_config_file(adapter);

  const OpineOptions o = resolve_options(
      args, {{"model", "model.path"}, {"batch-size", "eval.batch_size"}, {"strategy", "eval.strategy"}},
      default_config);
  const std::optional<std::string> input = args.get("input");
  const std::optional<std::string> output = args.get("output");
  OPINE_CHECK(input && output, "opine predict needs --input FILE and --output FILE");
  const FileKind in_kind = kind_of(*input, "--input");
  const FileKind out_kind = kind_of(*output, "--output");
  int64_t chunk = 4096;
  if (auto c = args.get("chunk")) {
    try {
      chunk = std::stoll(*c);
    } catch (const std::exception&) {
      chunk = 0;
    }
    OPINE_CHECK(chunk >= 1, "--chunk: '", *c, "' is not a positive number");
  }
  const data::Encoding encoding =
      data::parse_encoding(args.get("encoding").value_or("utf-8-or-windows-1252"));

  // Every rank reads the file (a shared file system, as on any cluster) and takes its share.
  const data::Table table =
      in_kind == FileKind::kJsonl
          ? data::read_jsonl(*input, encoding, /*tolerant=*/true)
          : data::read_delimited(*input, in_kind == FileKind::kTsv ? '\t' : ',', encoding,
                                 /*quoting=*/true, /*tolerant=*/true);
  const size_t text_column = table.column(args.get("text-column").value_or("text"));
  std::vector<std::string> errors = table.errors;
  errors.resize(table.rows.size());
  std::vector<size_t> good;  // rows to predict
  for (size_t i = 0; i < table.rows.size(); ++i) {
    if (errors[i].empty() && table.rows[i][text_column].find_first_not_of(" \t\r\n") == std::string::npos)
      errors[i] = input->c_str() + (":" + std::to_string(table.lines[i])) + ": empty text";
    if (errors[i].empty()) good.push_back(i);
  }
  int64_t bad = int64_t(table.rows.size() - good.size());
  if (lead) {
    int shown = 0;
    for (const std::string& e : errors)
      if (!e.empty() && shown++ < 20) log::warn("skipped row: ", e);
    if (bad > 20) log::warn("... ", bad - 20, " more rows skipped");
  }

  Predictor predictor(o, adapter, runtime.get());
  const bool answers = predictor.strategy() == "generate" || predictor.strategy() == "vote";
  const fs::path out_path = *output;
  if (!out_path.parent_path().empty()) fs::create_directories(out_path.parent_path());
  const fs::path tmp = out_path.string() + ".tmp." + std::to_string(::getpid());
  std::ofstream out;
  // A failed run leaves no temporary behind (the output's name only ever holds a whole file).
  struct RemoveOnFailure {
    fs::path path;
    bool armed = false;
    ~RemoveOnFailure() {
      std::error_code ignored;
      if (armed) fs::remove(path, ignored);
    }
  } cleanup{tmp, lead};
  std::unique_ptr<RowWriter> writer;
  if (lead) {
    out.open(tmp, std::ios::binary);
    OPINE_CHECK_KIND(out.good(), ErrorKind::kIo, "cannot write ", tmp.string());
    writer = std::make_unique<RowWriter>(out, out_kind, table.columns, predictor.classes(), predictor.kind(),
                                         answers);
  }
  ProgressBar bar(int64_t(good.size()), "tweets", lead);
  int64_t words = 0;
  size_t next_row = 0;  // next input row to write
  for (size_t start = 0;; start += size_t(chunk)) {
    const size_t stop = std::min(good.size(), start + size_t(chunk));
    std::vector<ExamplePrediction> merged;
    if (start < stop) {
      const auto [begin, end] = rank_block(int64_t(stop - start), runtime->rank(), runtime->world_size());
      std::vector<std::string> texts;
      for (int64_t k = begin; k < end; ++k) texts.push_back(table.rows[good[start + size_t(k)]][text_column]);
      const std::vector<ExamplePrediction> local = predictor.predict(
          texts, o.eval.batch_size,
          [&](int64_t done, int64_t) { bar.update(int64_t(start) + done * runtime->world_size()); },
          uint64_t(start) + uint64_t(begin));
      merged = all_gather_predictions(runtime->world(), local);
      OPINE_ASSERT(merged.size() == stop - start, "merged predictions do not cover the chunk");
    }
    const bool final_chunk = stop >= good.size();
    if (lead) {
      // Every input row up to the chunk's last predicted one (bad rows in between included);
      // after the last chunk, the rest.
      const size_t last = final_chunk ? table.rows.size() : good[stop - 1] + 1;
      size_t k = 0;
      for (; next_row < last; ++next_row) {
        const bool predicted = errors[next_row].empty();
        const ExamplePrediction* p = predicted ? &merged.at(k++) : nullptr;
        if (predicted) words += count_words(table.rows[next_row][text_column]);
        writer->write(table.rows[next_row], table.lines[next_row], p, errors[next_row]);
      }
    }
    if (final_chunk) break;
  }
  bar.finish();
  const double seconds = bar.seconds();
  if (lead) {
    out.flush();
    OPINE_CHECK_KIND(out.good(), ErrorKind::kIo, "writing ", tmp.string(), " failed");
    out.close();
    fs::rename(tmp, out_path);
    cleanup.armed = false;
    const json summary = {{"output", out_path.string()},
                          {"rows", table.rows.size()},
                          {"predicted", good.size()},
                          {"bad_rows", bad},
                          {"strategy", predictor.strategy()},
                          {"seconds", seconds},
                          {"tweets_per_s", double(good.size()) / std::max(seconds, 1e-9)},
                          {"words_per_s", double(words) / std::max(seconds, 1e-9)},
                          {"ranks", runtime->world_size()}};
    log::info("predicted ", good.size(), " rows in ", seconds, " s: ", summary["tweets_per_s"].get<double>(),
              " tweets/s, ", summary["words_per_s"].get<double>(), " words/s", bad ? "; " : "",
              bad ? std::to_string(bad) + " rows skipped (their error is in the output)" : "");
    std::cout << summary.dump(2) << std::endl;
  }
  return 0;
}

}  // namespace opine::launch
