// A training run's folder and what goes in it:
//
//   ROOT/config.yaml     the resolved options        ROOT/events/       TensorBoard event files
//   ROOT/manifest.json   versions, hosts, seeds      ROOT/checkpoints/  step-000123/ ... + best.json
//   ROOT/metrics.jsonl   one JSON object per line
//
// Every file is written atomically (temp + rename) except metrics.jsonl, which is appended one
// flushed line at a time and cut back on resume. Checkpoints follow one protocol:
//   begin(step)  -> ROOT/checkpoints/step-000123.tmp/ (every rank may write its files there)
//   commit(step) -> COMPLETE marker inside, renamed to step-000123/, best.json updated, pruned
// so a folder named step-NNNNNN with a COMPLETE file is always a whole checkpoint.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/atomic_file.h"

namespace opine {

struct RunPaths {
  std::filesystem::path root;
  std::filesystem::path config_yaml;
  std::filesystem::path manifest_json;
  std::filesystem::path metrics_jsonl;
  std::filesystem::path events_dir;
  std::filesystem::path checkpoints_dir;
};

// The paths of a run folder, without touching the disk.
RunPaths run_paths(const std::filesystem::path& root);
// Creates the run folder and its events/ and checkpoints/ folders. Without `resume`, a folder
// that exists and is not empty is an opine::Error (a new run never mixes with an old one's
// files); with it, whatever is there is kept (and created when missing).
RunPaths make_run_dir(const std::filesystem::path& root, bool resume);

// Atomic writes (write_text_atomic comes from core/atomic_file.h); JSON indented by 2.
void write_json_atomic(const std::filesystem::path& path, const nlohmann::json& value);

// metrics.jsonl: one JSON object per line, each line flushed as written.
class MetricsLog {
 public:
  // `append` keeps the lines already there (resume); otherwise the file starts empty.
  MetricsLog(const std::filesystem::path& path, bool append);
  // Drops the lines whose "step" is greater than `step` (and a torn last line a crash left),
  // so a run resumed from a checkpoint at `step` logs no step twice. Rewrites atomically.
  void truncate_after(int64_t step);
  // `record` must be a JSON object.
  void write(const nlohmann::json& record);
  const std::filesystem::path& path() const { return path_; }

 private:
  void open_for_append();
  std::filesystem::path path_;
  std::ofstream out_;
};

// What every run records about where it ran: opine's version (and git commit when the build
// knows it), libtorch, compiler, MPI library (when built with MPI), HDF5, UTC time, host. The
// trainer adds world size, hosts, seeds and the data cache hash.
nlohmann::json base_manifest();

// The checkpoints of one run. Only one process (rank 0) calls begin/commit; other ranks write
// their own files into tmp_path(dir, step) between the two (the trainer puts a barrier there).
class CheckpointStore {
 public:
  // keep_last: complete checkpoints kept besides the best one (0 or less: keep all).
  // best_metric: the metric whose value commit() ranks checkpoints by ("" : none).
  CheckpointStore(std::filesystem::path checkpoints_dir, int keep_last, std::string best_metric,
                  bool greater_is_better);

  // "step-000123" (more digits past 999999).
  static std::string name(int64_t step);
  // DIR/step-000123.tmp: where the checkpoint of `step` is written before commit.
  static std::filesystem::path tmp_path(const std::filesystem::path& checkpoints_dir, int64_t step);

  // Empties (or creates) tmp_path for `step` and returns it.
  std::filesystem::path begin(int64_t step);
  // Writes DIR/step-N.tmp/COMPLETE ({"step", and "metric"/"value" when given}), renames the
  // folder to DIR/step-N (replacing an older one of the same step), records it in best.json when
  // `metric` beats the best so far (NaN never does), then removes complete checkpoints beyond
  // the last keep_last, never the best.
  void commit(int64_t step, std::optional<double> metric);

  // The complete checkpoint of the highest step (for resume), ignoring folders without COMPLETE;
  // removes stale step-*.tmp folders (call it when no checkpoint is being written).
  std::optional<std::filesystem::path> latest() const;
  // The checkpoint best.json names, when it is still complete.
  std::optional<std::filesystem::path> best() const;

  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  int keep_last_;
  std::string best_metric_;
  bool greater_is_better_;
};

}  // namespace opine
