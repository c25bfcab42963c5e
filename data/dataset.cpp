#include "data/dataset.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <sstream>

#include "core/error.h"
#include "core/random.h"
#include "data/readers.h"

namespace opine::data {

namespace {

namespace fs = std::filesystem;

constexpr size_t kBadRowsShown = 10;

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}

std::string format_of(const DatasetSpec& spec, const SplitFiles& files) {
  if (spec.format != "auto") return spec.format;
  if (!files.labels.empty()) return "tweeteval";
  return format_from_extension(files.path);
}

void check_spec_at(const DatasetSpec& spec, const fs::path& root) {
  std::vector<std::string> problems;
  const bool regression = spec.task == "regression";
  if (spec.splits.empty()) problems.push_back("splits: none given");
  for (const auto& [name, files] : spec.splits) {
    const std::string key = "splits." + name;
    const std::string format = format_of(spec, files);
    if (files.path.empty()) problems.push_back(key + ".path: missing");
    if (format.empty())
      problems.push_back(key + ".path: cannot tell the format of '" + files.path + "' (set format:)");
    if (format == "tweeteval" && files.labels.empty()) problems.push_back(key + ".labels: missing (tweeteval)");
    if (format != "tweeteval" && !files.labels.empty())
      problems.push_back(key + ".labels: only the tweeteval format has a separate labels file");
    for (const std::string& p : {files.path, files.labels})
      if (!p.empty() && !fs::exists(root / p)) problems.push_back(key + ": no file " + (root / p).string());
  }
  if (spec.splits.count("val") && spec.validation.fraction > 0)
    problems.push_back("validation.fraction: the spec has a val split already");
  if (spec.validation.fraction > 0 && !spec.splits.count("train"))
    problems.push_back("validation.fraction: there is no train split to carve from");
  if (!regression) {
    const std::vector<std::string>& classes = spec.classes.empty() ? spec.label_names : spec.classes;
    if (classes.empty()) problems.push_back("classes: give the class names (or label_names)");
    if (!spec.label_map.empty() && spec.classes.empty())
      problems.push_back("classes: required with label_map (the class order)");
    if (spec.task == "binary" && classes.size() != 2)
      problems.push_back("classes: a binary task has 2 classes, got " + std::to_string(classes.size()));
    for (const auto& [from, to] : spec.label_map)
      if (to != "drop" && std::find(classes.begin(), classes.end(), to) == classes.end())
        problems.push_back("label_map." + from + ": '" + to + "' is not one of the classes");
  } else if (!spec.label_map.empty() || !spec.classes.empty()) {
    problems.push_back("label_map/classes: a regression task has numeric labels");
  }
  if (!problems.empty()) {
    std::string all;
    for (const std::string& p : problems) all += "\n  " + p;
    OPINE_CHECK_KIND(false, ErrorKind::kConfig, "dataset '", spec.name, "':", all);
  }
}

struct Raw {
  std::string text, label, topic;
  int64_t line;
};

// The split's rows as (text, label, topic, line), after `filter`.
std::vector<Raw> read_raw(const DatasetSpec& spec, const SplitFiles& files, const fs::path& root,
                          int64_t* fallback_decoded) {
  const Encoding encoding = parse_encoding(spec.encoding);
  const std::string format = format_of(spec, files);
  std::vector<Raw> rows;
  if (format == "tweeteval") {
    Lines texts = read_lines(root / files.path, encoding);
    Lines labels = read_lines(root / files.labels, encoding);
    OPINE_CHECK_FORMAT(texts.lines.size() == labels.lines.size(), (root / files.path).string(), " has ",
                       texts.lines.size(), " lines but ", (root / files.labels).string(), " has ",
                       labels.lines.size());
    *fallback_decoded = texts.fallback_decoded;
    for (size_t i = 0; i < texts.lines.size(); ++i)
      rows.push_back({texts.lines[i], trim(labels.lines[i]), spec.topic, int64_t(i) + 1});
    return rows;
  }
  Table table = format == "jsonl" ? read_jsonl(root / files.path, encoding)
                                  : read_delimited(root / files.path, format == "csv" ? ',' : '\t', encoding,
                                                   spec.quoting.value_or(format == "csv"));
  *fallback_decoded = table.fallback_decoded;
  const size_t text = table.column(spec.text_column), label = table.column(spec.label_column);
  const size_t topic = spec.topic_column.empty() ? std::string::npos : table.column(spec.topic_column);
  std::vector<std::pair<size_t, std::string>> filters;
  for (const auto& [column, value] : spec.filter) filters.emplace_back(table.column(column), value);
  for (size_t r = 0; r < table.rows.size(); ++r) {
    const std::vector<std::string>& row = table.rows[r];
    bool keep = true;
    for (const auto& [c, value] : filters) keep = keep && row[c] == value;
    if (keep) rows.push_back({row[text], trim(row[label]), topic != std::string::npos ? row[topic] : spec.topic, table.lines[r]});
  }
  return rows;
}

}  // namespace

void check_spec(const DatasetSpec& spec) { check_spec_at(spec, resolve_data_root(spec.data_root)); }

fs::path resolve_data_root(const std::string& configured) {
  if (!configured.empty()) return configured;
  if (const char* env = std::getenv("OPINE_DATA_ROOT"); env && *env) return env;
  return fs::path("..") / "shared" / "data";
}

std::string format_from_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".csv") return "csv";
  if (ext == ".tsv") return "tsv";
  if (ext == ".jsonl" || ext == ".ndjson") return "jsonl";
  return "";
}

Dataset load_dataset(const DatasetSpec& spec) {
  const fs::path root = resolve_data_root(spec.data_root);
  check_spec_at(spec, root);
  Dataset out;
  out.spec = spec;
  const bool regression = spec.task == "regression";
  if (!regression) out.classes = spec.classes.empty() ? spec.label_names : spec.classes;
  for (const auto& [split, files] : spec.splits) {
    SplitReport report;
    report.split = split;
    report.per_class.assign(out.classes.size(), 0);
    const int source = int(out.sources.size());
    out.sources.push_back(root / files.path);
    const std::string file = (root / files.path).string();
    Examples examples;
    auto bad = [&](int64_t line, const std::string& why) {
      ++report.bad;
      if (report.bad_rows.size() < kBadRowsShown) report.bad_rows.push_back(file + ":" + std::to_string(line) + ": " + why);
    };
    for (const Raw& raw : read_raw(spec, files, root, &report.fallback_decoded)) {
      ++report.read;
      Example e;
      e.text = raw.text;
      e.topic = raw.topic;
      e.row = raw.line;
      e.source = source;
      if (trim(e.text).empty()) {
        bad(raw.line, "empty text");
        continue;
      }
      if (regression) {
        char* end = nullptr;
        e.target = std::strtod(raw.label.c_str(), &end);
        if (raw.label.empty() || *end != '\0' || !std::isfinite(e.target)) {
          bad(raw.line, "label '" + raw.label + "' is not a number");
          continue;
        }
      } else {
        std::string name = raw.label;
        if (!spec.label_names.empty() && !name.empty() && name.find_first_not_of("0123456789") == std::string::npos) {
          const size_t index = std::stoul(name);
          if (index >= spec.label_names.size()) {
            bad(raw.line, "label " + name + " is beyond label_names");
            continue;
          }
          name = spec.label_names[index];
        }
        if (!spec.label_map.empty()) {
          auto it = spec.label_map.find(name);
          if (it == spec.label_map.end()) {
            bad(raw.line, "label '" + name + "' is not in label_map");
            continue;
          }
          if (it->second == "drop") {
            ++report.dropped;
            continue;
          }
          name = it->second;
        }
        auto cls = std::find(out.classes.begin(), out.classes.end(), name);
        if (cls == out.classes.end()) {
          bad(raw.line, "unknown label '" + name + "'");
          continue;
        }
        e.label = int(cls - out.classes.begin());
        ++report.per_class[e.label];
      }
      examples.push_back(std::move(e));
    }
    report.kept = int64_t(examples.size());
    const double share = report.read ? double(report.bad) / double(report.read) : 0.0;
    if (report.bad > 0) {
      std::string shown;
      for (const std::string& b : report.bad_rows) shown += "\n  " + b;
      OPINE_CHECK_FORMAT(share <= spec.max_bad_fraction, "dataset '", spec.name, "' split ", split, ": ",
                         report.bad, " of ", report.read, " rows cannot be used (max_bad_fraction is ",
                         spec.max_bad_fraction, "):", shown);
    }
    out.splits[split] = std::move(examples);
    out.reports.push_back(std::move(report));
  }
  if (spec.validation.fraction > 0) {
    auto [train, val] = carve_split(out.splits.at("train"), spec.validation.fraction, spec.validation.seed,
                                    spec.validation.stratified && !regression);
    out.splits["train"] = std::move(train);
    out.splits["val"] = std::move(val);
  }
  return out;
}

std::pair<Examples, Examples> carve_split(const Examples& examples, double fraction, uint64_t seed, bool stratified) {
  // Groups by class (one group when not stratified), each shuffled by its own seeded stream.
  std::map<int, std::vector<size_t>> groups;
  for (size_t i = 0; i < examples.size(); ++i) groups[stratified ? examples[i].label : 0].push_back(i);
  std::vector<bool> carved(examples.size(), false);
  for (auto& [label, indices] : groups) {
    Xoshiro256 rng(derive_seed(seed, uint64_t(int64_t(label) + 1)));
    rng.shuffle(indices);
    const size_t n = size_t(double(indices.size()) * fraction + 0.5);
    for (size_t k = 0; k < n; ++k) carved[indices[k]] = true;
  }
  std::pair<Examples, Examples> out;
  for (size_t i = 0; i < examples.size(); ++i) (carved[i] ? out.second : out.first).push_back(examples[i]);
  return out;
}

std::string describe(const Dataset& d) {
  std::ostringstream s;
  s << "dataset " << d.spec.name << " (" << d.spec.task << ")\n";
  for (const SplitReport& r : d.reports) {
    s << "  " << r.split << ": " << r.kept << " rows";
    if (r.dropped) s << ", " << r.dropped << " dropped by label_map";
    if (r.bad) s << ", " << r.bad << " unusable skipped";
    if (r.fallback_decoded) s << ", " << r.fallback_decoded << " lines read as Windows-1252";
    s << "\n";
  }
  for (const auto& [split, examples] : d.splits) {
    s << "  " << split << " (final): " << examples.size();
    if (!d.classes.empty()) {
      std::vector<int64_t> counts(d.classes.size(), 0);
      for (const Example& e : examples) ++counts[e.label];
      s << " =";
      for (size_t c = 0; c < counts.size(); ++c) s << " " << d.classes[c] << " " << counts[c];
    }
    s << "\n";
  }
  return s.str();
}

}  // namespace opine::data
