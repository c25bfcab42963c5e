#include "core/run_dir.h"

#include <hdf5.h>
#include <torch/headeronly/version.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/json_file.h"
#include "core/host.h"
#include "core/log.h"
#include "core/git_commit.h"  // generated at build time (cmake/git_commit.cmake)
#include "core/version.h"

#ifdef OPINE_HAVE_MPI
#include <mpi.h>
#endif

namespace opine {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr const char* kComplete = "COMPLETE";
constexpr const char* kBestFile = "best.json";
constexpr const char* kTmpSuffix = ".tmp";


std::string utc_now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

json read_json(const fs::path& path) { return read_json_file(path); }

// The step of a folder named "step-<digits>" (with `suffix` after the digits), else -1.
int64_t parse_step(const std::string& name, const std::string& suffix = "") {
  const std::string prefix = "step-";
  if (name.size() <= prefix.size() + suffix.size() || name.rfind(prefix, 0) != 0) return -1;
  if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return -1;
  const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(digits);
}

// Complete checkpoints of `dir`, by step.
std::vector<std::pair<int64_t, fs::path>> complete_checkpoints(const fs::path& dir) {
  std::vector<std::pair<int64_t, fs::path>> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const int64_t step = parse_step(entry.path().filename().string());
    if (step < 0 || !entry.is_directory(ec) || !fs::exists(entry.path() / kComplete, ec)) continue;
    out.emplace_back(step, entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

// ---- the folder --------------------------------------------------------------------------------

RunPaths run_paths(const fs::path& root) {
  return {root,
          root / "config.yaml",
          root / "manifest.json",
          root / "metrics.jsonl",
          root / "events",
          root / "checkpoints"};
}

RunPaths make_run_dir(const fs::path& root, bool resume) {
  std::error_code ec;
  if (!resume && fs::exists(root, ec)) {
    OPINE_CHECK(fs::is_directory(root, ec), "run folder ", root.string(), " exists and is not a folder");
    OPINE_CHECK(fs::is_empty(root, ec), "run folder ", root.string(),
                " already holds a run: resume it, or choose another output folder");
  }
  const RunPaths paths = run_paths(root);
  for (const fs::path& dir : {paths.root, paths.events_dir, paths.checkpoints_dir}) {
    fs::create_directories(dir, ec);
    OPINE_CHECK_KIND(!ec, ErrorKind::kIo, "cannot create ", dir.string(), ": ", ec.message());
  }
  return paths;
}

void write_json_atomic(const fs::path& path, const json& value) {
  write_text_atomic(path, value.dump(2) + "\n");
}

// ---- metrics.jsonl -----------------------------------------------------------------------------

MetricsLog::MetricsLog(const fs::path& path, bool append) : path_(path) {
  if (!append) {
    std::ofstream(path_, std::ios::trunc);  // start empty
  } else {
    // A crash may have cut the last line short: end it so the next record starts a line of its
    // own (truncate_after drops the fragment).
    std::ifstream in(path_, std::ios::binary | std::ios::ate);
    if (in.good() && in.tellg() > 0) {
      in.seekg(-1, std::ios::end);
      char last = '\n';
      in.get(last);
      if (last != '\n') std::ofstream(path_, std::ios::app) << '\n';
    }
  }
  open_for_append();
}

void MetricsLog::open_for_append() {
  out_.close();
  out_.clear();
  out_.open(path_, std::ios::app);
  OPINE_CHECK_KIND(out_.good(), ErrorKind::kIo, "cannot open ", path_.string(), " for writing");
}

void MetricsLog::truncate_after(int64_t step) {
  out_.close();
  std::vector<std::string> kept;
  {
    std::ifstream in(path_);
    std::string line;
    size_t dropped = 0, broken = 0;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (record.is_discarded()) {  // a torn line from a crash
        ++broken;
        continue;
      }
      if (record.is_object() && record.contains("step") && record["step"].is_number() &&
          record["step"].get<double>() > static_cast<double>(step)) {
        ++dropped;
        continue;
      }
      kept.push_back(line);
    }
    if (dropped || broken)
      log::info("metrics: dropped ", dropped, " records after step ", step,
                broken ? " and " + std::to_string(broken) + " unreadable lines" : std::string(), " from ",
                path_.string());
  }
  std::string text;
  for (const std::string& line : kept) text += line + "\n";
  write_text_atomic(path_, text);
  open_for_append();
}

void MetricsLog::write(const json& record) {
  OPINE_ASSERT(record.is_object(), "a metrics record must be a JSON object");
  out_ << record.dump() << '\n';
  out_.flush();
  OPINE_CHECK_KIND(out_.good(), ErrorKind::kIo, "cannot write ", path_.string());
}

// ---- manifest ----------------------------------------------------------------------------------

json base_manifest() {
  json m;
  m["opine"] = {{"version", OPINE_VERSION}};
  m["opine"]["git_commit"] = OPINE_GIT_COMMIT;
  m["libtorch"] = std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                  std::to_string(TORCH_VERSION_PATCH);
#if defined(__clang__)
  m["compiler"] = "clang " __clang_version__;
#elif defined(__GNUC__)
  m["compiler"] = "g++ " __VERSION__;
#else
  m["compiler"] = "unknown";
#endif
#ifdef OPINE_HAVE_CUDA
  m["cuda_build"] = true;
#else
  m["cuda_build"] = false;
#endif
#ifdef OPINE_HAVE_MPI
  {
    char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
    int length = 0;
    MPI_Get_library_version(version, &length);  // callable before MPI_Init
    std::string text(version, static_cast<size_t>(std::max(length, 0)));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\0' || text.back() == ' '))
      text.pop_back();
    m["mpi"] = text;
  }
#endif
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  m["hdf5"] = std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(release);
  m["time"] = utc_now();
  m["host"] = host_name();
  return m;
}

// ---- checkpoints -------------------------------------------------------------------------------

CheckpointStore::CheckpointStore(fs::path checkpoints_dir, int keep_last, std::string best_metric,
                                 bool greater_is_better)
    : dir_(std::move(checkpoints_dir)),
      keep_last_(keep_last),
      best_metric_(std::move(best_metric)),
      greater_is_better_(greater_is_better) {}

std::string CheckpointStore::name(int64_t step) {
  OPINE_ASSERT(step >= 0, "checkpoint step ", step, " is negative");
  std::string digits = std::to_string(step);
  if (digits.size() < 6) digits.insert(0, 6 - digits.size(), '0');
  return "step-" + digits;
}

fs::path CheckpointStore::tmp_path(const fs::path& checkpoints_dir, int64_t step) {
  return checkpoints_dir / (name(step) + kTmpSuffix);
}

fs::path CheckpointStore::begin(int64_t step) {
  const fs::path tmp = tmp_path(dir_, step);
  std::error_code ec;
  fs::remove_all(tmp, ec);  // a stale one from a crashed save of the same step
  OPINE_CHECK_KIND(!ec, ErrorKind::kIo, "cannot remove the stale checkpoint ", tmp.string(), ": ",
                   ec.message());
  fs::create_directories(tmp, ec);
  OPINE_CHECK_KIND(!ec, ErrorKind::kIo, "cannot create ", tmp.string(), ": ", ec.message());
  return tmp;
}

void CheckpointStore::commit(int64_t step, std::optional<double> metric) {
  const fs::path tmp = tmp_path(dir_, step);
  const fs::path final_path = dir_ / name(step);
  std::error_code ec;
  OPINE_ASSERT(fs::is_directory(tmp, ec), "commit of checkpoint ", step, " without begin(): no ",
               tmp.string());
  json complete = {{"step", step}};
  if (metric) {
    if (!best_metric_.empty()) complete["metric"] = best_metric_;
    complete["value"] = std::isfinite(*metric) ? json(*metric) : json(nullptr);  // JSON has no NaN
  }
  write_json_atomic(tmp / kComplete, complete);
  if (fs::exists(final_path, ec)) {  // the same step saved again (a resumed run)
    fs::remove_all(final_path, ec);
    OPINE_CHECK_KIND(!ec, ErrorKind::kIo, "cannot replace ", final_path.string(), ": ", ec.message());
  }
  fs::rename(tmp, final_path, ec);
  OPINE_CHECK_KIND(!ec, ErrorKind::kIo, "cannot rename ", tmp.string(), " to ", final_path.string(), ": ",
                   ec.message());

  // best.json: the step whose metric is the best so far (of this metric: a value recorded for
  // another one, before a resume with a changed config, does not count).
  const fs::path best_file = dir_ / kBestFile;
  std::optional<int64_t> best_step;
  std::optional<double> best_value;
  if (fs::exists(best_file, ec)) {
    const json best = read_json(best_file);
    best_step = best.value("step", int64_t{-1});
    if (best.value("metric", std::string()) == best_metric_ && best.contains("value") &&
        best["value"].is_number())
      best_value = best["value"].get<double>();
  }
  if (!best_metric_.empty() && metric && std::isfinite(*metric) &&
      (!best_value || (greater_is_better_ ? *metric > *best_value : *metric < *best_value))) {
    write_json_atomic(best_file, {{"step", step},
                                  {"checkpoint", name(step)},
                                  {"metric", best_metric_},
                                  {"value", *metric},
                                  {"greater_is_better", greater_is_better_}});
    best_step = step;
  }

  if (keep_last_ <= 0) return;
  auto complete_list = complete_checkpoints(dir_);
  const size_t keep_from = complete_list.size() > size_t(keep_last_) ? complete_list.size() - keep_last_ : 0;
  for (size_t i = 0; i < keep_from; ++i) {
    if (best_step && complete_list[i].first == *best_step) continue;
    fs::remove_all(complete_list[i].second, ec);
    if (ec) log::warn("cannot remove old checkpoint ", complete_list[i].second.string(), ": ", ec.message());
  }
}

std::optional<fs::path> CheckpointStore::latest() const {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    if (parse_step(entry.path().filename().string(), kTmpSuffix) < 0) continue;
    std::error_code ignored;  // another rank may be removing the same folder
    fs::remove_all(entry.path(), ignored);
  }
  const auto list = complete_checkpoints(dir_);
  if (list.empty()) return std::nullopt;
  return list.back().second;
}

std::optional<fs::path> CheckpointStore::best() const {
  std::error_code ec;
  const fs::path best_file = dir_ / kBestFile;
  if (!fs::exists(best_file, ec)) return std::nullopt;
  const json best = read_json(best_file);
  const int64_t step = best.value("step", int64_t{-1});
  if (step < 0) return std::nullopt;
  const fs::path path = dir_ / name(step);
  if (!fs::exists(path / kComplete, ec)) return std::nullopt;
  return path;
}

}  // namespace opine
