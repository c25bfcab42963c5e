// A dataset spec (YAML) and what it reads to: labelled examples per split, with a report of every
// row that was dropped on purpose or could not be used.
//
//   name: stance-abortion
//   task: multiclass                  # binary | multiclass | regression
//   format: tweeteval                 # auto | tweeteval | csv | tsv | jsonl
//   topic: abortion
//   splits:
//     train: {path: tweeteval/datasets/stance/abortion/train_text.txt,
//             labels: tweeteval/datasets/stance/abortion/train_labels.txt}
//     val:   {path: ..., labels: ...}
//   label_names: [none, against, favor]          # integer labels in the files index this
//   label_map: {none: drop, against: against, favor: favor}
//   classes: [against, favor]                    # class indices, in this order
//
// Paths are relative to the data root: `data_root` when set, else $OPINE_DATA_ROOT, else
// ../shared/data (from the working directory).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "data/example.h"

namespace opine::data {

struct SplitFiles {
  std::string path;    // CSV/TSV/JSONL file, or TweetEval's *_text.txt
  std::string labels;  // TweetEval's *_labels.txt
  template <class V>
  void visit(V& v) {
    v("path", path, "data file (or TweetEval *_text.txt), relative to the data root");
    v("labels", labels, "TweetEval *_labels.txt (tweeteval format only)");
  }
};

struct ValidationSplitOptions {
  double fraction = 0.0;  // > 0: carve `val` out of `train` when the spec lists no val split
  uint64_t seed = 13;
  bool stratified = true;  // keep each class's share (classification only)
  template <class V>
  void visit(V& v) {
    v("fraction", fraction, "share of train carved out as val when there is none (0: no carving)",
      config::in_range(0.0, 0.9));
    v("seed", seed, "seed of the carving shuffle");
    v("stratified", stratified, "keep each class's share in both parts");
  }
};

struct DatasetSpec {
  std::string name;
  std::string task = "multiclass";
  std::string format = "auto";
  std::string data_root;
  std::string encoding = "utf-8";
  std::optional<bool> quoting;  // CSV fields may be quoted; default: yes for csv, no for tsv
  std::map<std::string, SplitFiles> splits;
  std::string text_column = "text";
  std::string label_column = "label";
  std::string topic;
  std::string topic_column;
  std::map<std::string, std::string> filter;
  std::vector<std::string> label_names;
  std::map<std::string, std::string> label_map;
  std::vector<std::string> classes;
  double max_bad_fraction = 0.0;
  ValidationSplitOptions validation;

  template <class V>
  void visit(V& v) {
    v("name", name, "dataset name, for logs and the cache");
    v("task", task, "what the label is", config::one_of({"binary", "multiclass", "regression"}));
    v("format", format, "file layout (auto: from the file name)",
      config::one_of({"auto", "tweeteval", "csv", "tsv", "jsonl"}));
    v("data_root", data_root, "folder the paths are relative to (default: $OPINE_DATA_ROOT or ../shared/data)");
    v("encoding", encoding, "text encoding of the files",
      config::one_of({"utf-8", "utf-8-or-windows-1252", "windows-1252", "latin-1"}));
    v("quoting", quoting, "CSV/TSV fields may be quoted (default: csv yes, tsv no)");
    v("splits", splits, "files per split (train, val, test, ...)");
    v("text_column", text_column, "column holding the text (csv/tsv/jsonl)");
    v("label_column", label_column, "column holding the label (csv/tsv/jsonl)");
    v("topic", topic, "stance target shared by every row");
    v("topic_column", topic_column, "column holding each row's stance target");
    v("filter", filter, "keep only rows whose column equals the value");
    v("label_names", label_names, "names of integer labels 0, 1, ... as the files write them");
    v("label_map", label_map, "source label -> class name, or 'drop' to leave the row out");
    v("classes", classes, "class names in class-index order (default: label_names)");
    v("max_bad_fraction", max_bad_fraction,
      "rows that cannot be used (empty text, unknown label) are skipped up to this share of a split; more fails",
      config::in_range(0.0, 1.0));
    v("validation", validation, "carving a validation split out of train");
  }
};

struct SplitReport {
  std::string split;
  int64_t read = 0;     // rows in the files (after `filter`)
  int64_t kept = 0;
  int64_t dropped = 0;  // by label_map's 'drop'
  int64_t bad = 0;      // unusable rows, skipped
  int64_t fallback_decoded = 0;
  std::vector<std::string> bad_rows;  // the first few, "file:line: why"
  std::vector<int64_t> per_class;     // kept rows per class (classification)
};

struct Dataset {
  DatasetSpec spec;
  std::vector<std::string> classes;           // empty for regression
  std::vector<std::filesystem::path> sources;  // Example::source indexes this
  std::map<std::string, Examples> splits;
  std::vector<SplitReport> reports;
};

// The data root as the spec's comment says.
std::filesystem::path resolve_data_root(const std::string& configured);

// Every problem with the spec (missing files, formats, classes, maps) at once, as one config error.
void check_spec(const DatasetSpec& spec);

// The file format an extension names: csv, tsv, jsonl (.jsonl, .ndjson), or "" when it names none.
std::string format_from_extension(const std::filesystem::path& path);

// Reads every split; checks the spec first (all problems at once, as config errors).
Dataset load_dataset(const DatasetSpec& spec);

// Seeded split of `examples` into (kept, carved) with `fraction` of each class carved (of all
// rows when not stratified or for regression). The same seed gives the same split anywhere.
std::pair<Examples, Examples> carve_split(const Examples& examples, double fraction, uint64_t seed, bool stratified);

// Counts per split and class, drops and bad rows, as a few readable lines.
std::string describe(const Dataset& dataset);

}  // namespace opine::data
