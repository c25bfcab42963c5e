// The run folder: creation and reuse, atomic writes, metrics.jsonl on resume, the manifest,
// checkpoints (commit, latest, best, pruning).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/error.h"
#include "core/run_dir.h"
#include "test_util.h"

namespace opine {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

class RunDir : public test::TempDirTest {
 protected:
  static std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }
  static std::set<std::string> names(const fs::path& dir) {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
    return out;
  }
};

TEST_F(RunDir, CreatesTheFolders) {
  const RunPaths p = make_run_dir(dir_ / "run", false);
  EXPECT_TRUE(fs::is_directory(p.events_dir));
  EXPECT_TRUE(fs::is_directory(p.checkpoints_dir));
  EXPECT_EQ(p.config_yaml, dir_ / "run" / "config.yaml");
  EXPECT_EQ(p.manifest_json, dir_ / "run" / "manifest.json");
  EXPECT_EQ(p.metrics_jsonl, dir_ / "run" / "metrics.jsonl");
}

TEST_F(RunDir, RefusesToReuseARunWithoutResume) {
  fs::create_directories(dir_ / "empty");
  EXPECT_NO_THROW(make_run_dir(dir_ / "empty", false));  // an empty folder is a fresh start
  const RunPaths p = make_run_dir(dir_ / "run", false);
  write_text_atomic(p.config_yaml, "x: 1\n");
  try {
    make_run_dir(dir_ / "run", false);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUser);
    EXPECT_NE(std::string(e.what()).find("resume"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(make_run_dir(dir_ / "run", true));
  EXPECT_EQ(slurp(p.config_yaml), "x: 1\n");  // resume keeps what is there
}

TEST_F(RunDir, AtomicWritesLeaveNoTemporary) {
  fs::create_directories(dir_);
  write_json_atomic(dir_ / "a.json", {{"k", 1}});
  write_json_atomic(dir_ / "a.json", {{"k", 2}});
  EXPECT_EQ(json::parse(slurp(dir_ / "a.json"))["k"], 2);
  EXPECT_EQ(names(dir_), std::set<std::string>{"a.json"});
  EXPECT_THROW(write_text_atomic(dir_ / "no" / "such" / "folder.txt", "x"), Error);
}

TEST_F(RunDir, MetricsOneObjectPerLine) {
  fs::create_directories(dir_);
  const fs::path path = dir_ / "metrics.jsonl";
  {
    MetricsLog log(path, false);
    log.write({{"step", 1}, {"loss", 2.5}});
    log.write({{"step", 2}, {"loss", 2.0}});
    // Each line is on disk as soon as it is written.
    EXPECT_EQ(slurp(path), "{\"loss\":2.5,\"step\":1}\n{\"loss\":2.0,\"step\":2}\n");
  }
  { MetricsLog fresh(path, false); }
  EXPECT_EQ(slurp(path), "");  // append=false starts over
}

// A run resumed from the checkpoint at step 3: lines after it (and a torn last line from the
// crash) go, so no step appears twice once the resumed run logs 4 again.
TEST_F(RunDir, MetricsTruncateAfterOnResume) {
  fs::create_directories(dir_);
  const fs::path path = dir_ / "metrics.jsonl";
  {
    MetricsLog log(path, false);
    for (int step = 1; step <= 5; ++step) log.write({{"step", step}, {"loss", 1.0 / step}});
    log.write({{"event", "eval"}, {"note", "no step: kept"}});
  }
  { std::ofstream(path, std::ios::app) << "{\"step\": 6, \"lo"; }  // the crash
  MetricsLog log(path, true);
  log.truncate_after(3);
  log.write({{"step", 4}, {"loss", 0.2}});
  std::ifstream in(path);
  std::vector<int64_t> steps;
  std::string line;
  while (std::getline(in, line)) {
    const json r = json::parse(line);
    steps.push_back(r.value("step", int64_t{-1}));
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, -1, 4}));
}

TEST_F(RunDir, AppendAfterATornLineStartsANewLine) {
  fs::create_directories(dir_);
  const fs::path path = dir_ / "metrics.jsonl";
  { std::ofstream(path) << "{\"step\": 1}\n{\"step\": 2, \"lo"; }
  MetricsLog log(path, true);
  log.write({{"step", 2}});
  EXPECT_EQ(slurp(path), "{\"step\": 1}\n{\"step\": 2, \"lo\n{\"step\":2}\n");
}

TEST_F(RunDir, ManifestRecordsVersions) {
  const json m = base_manifest();
  EXPECT_FALSE(m["opine"]["version"].get<std::string>().empty());
  EXPECT_EQ(m["libtorch"].get<std::string>().rfind("2.", 0), 0u) << m.dump();
  EXPECT_FALSE(m["compiler"].get<std::string>().empty());
  EXPECT_FALSE(m["hdf5"].get<std::string>().empty());
  EXPECT_EQ(m["time"].get<std::string>().size(), 20u) << m["time"];  // 2025-01-31T14:02:07Z
  EXPECT_FALSE(m["host"].get<std::string>().empty());
#ifdef OPINE_HAVE_MPI
  EXPECT_FALSE(m["mpi"].get<std::string>().empty());
#endif
  std::cout << m.dump(2) << "\n";
}

// Writes a checkpoint the way the trainer does: begin, files from "every rank", commit.
void save(CheckpointStore& store, int64_t step, std::optional<double> metric) {
  const fs::path tmp = store.begin(step);
  EXPECT_EQ(tmp, CheckpointStore::tmp_path(store.dir(), step));
  std::ofstream(tmp / "model.safetensors") << "weights " << step;
  std::ofstream(CheckpointStore::tmp_path(store.dir(), step) / "optimizer.rank1") << "shard";
  store.commit(step, metric);
}

TEST_F(RunDir, CheckpointCommitAndLatest) {
  CheckpointStore store(dir_, 0, "", true);
  fs::create_directories(dir_);
  EXPECT_FALSE(store.latest());
  save(store, 100, std::nullopt);
  save(store, 200, std::nullopt);
  EXPECT_EQ(CheckpointStore::name(200), "step-000200");
  EXPECT_EQ(CheckpointStore::name(12345678), "step-12345678");
  EXPECT_EQ(store.latest(), dir_ / "step-000200");
  EXPECT_EQ(json::parse(slurp(dir_ / "step-000200" / "COMPLETE"))["step"], 200);
  EXPECT_EQ(slurp(dir_ / "step-000200" / "optimizer.rank1"), "shard");
  EXPECT_FALSE(store.best());  // no metric named
  EXPECT_FALSE(fs::exists(dir_ / "best.json"));
}

// A crash during a save leaves step-N.tmp (or, by hand, a folder without COMPLETE): latest()
// skips both and removes the temporary.
TEST_F(RunDir, LatestIgnoresIncompleteCheckpoints) {
  CheckpointStore store(dir_, 3, "", true);
  fs::create_directories(dir_);
  save(store, 10, std::nullopt);
  store.begin(20);
  std::ofstream(CheckpointStore::tmp_path(dir_, 20) / "model.safetensors") << "half";
  fs::create_directories(dir_ / "step-000030");  // no COMPLETE
  fs::create_directories(dir_ / "notes");
  EXPECT_EQ(store.latest(), dir_ / "step-000010");
  EXPECT_FALSE(fs::exists(CheckpointStore::tmp_path(dir_, 20)));
  EXPECT_TRUE(fs::exists(dir_ / "step-000030"));  // not ours to delete
  // begin() of a step whose temporary is stale starts empty.
  const fs::path tmp = store.begin(40);
  std::ofstream(tmp / "stale") << "x";
  EXPECT_EQ(store.begin(40), tmp);
  EXPECT_TRUE(fs::is_empty(tmp));
}

TEST_F(RunDir, PruningKeepsTheLastAndTheBest) {
  CheckpointStore store(dir_, 2, "eval_loss", /*greater_is_better=*/false);
  fs::create_directories(dir_);
  save(store, 1, 0.9);
  save(store, 2, 0.5);  // the best
  save(store, 3, 0.7);
  save(store, 4, std::nan(""));  // NaN is never best
  save(store, 5, 0.6);
  EXPECT_EQ(names(dir_), (std::set<std::string>{"best.json", "step-000002", "step-000004", "step-000005"}));
  EXPECT_EQ(store.best(), dir_ / "step-000002");
  EXPECT_EQ(store.latest(), dir_ / "step-000005");
  const json best = json::parse(slurp(dir_ / "best.json"));
  EXPECT_EQ(best["metric"], "eval_loss");
  EXPECT_DOUBLE_EQ(best["value"].get<double>(), 0.5);
  save(store, 6, 0.1);  // a new best: the old one may go now
  EXPECT_EQ(names(dir_), (std::set<std::string>{"best.json", "step-000005", "step-000006"}));
  EXPECT_EQ(store.best(), dir_ / "step-000006");
  EXPECT_DOUBLE_EQ(json::parse(slurp(dir_ / "step-000006" / "COMPLETE"))["value"].get<double>(), 0.1);
}

TEST_F(RunDir, BestSurvivesARestartOfTheStore) {
  fs::create_directories(dir_);
  {
    CheckpointStore store(dir_, 1, "accuracy", true);
    save(store, 1, 0.8);
    save(store, 2, 0.7);
  }
  CheckpointStore again(dir_, 1, "accuracy", true);  // a resumed run reads best.json
  save(again, 3, 0.75);
  EXPECT_EQ(again.best(), dir_ / "step-000001");
  EXPECT_EQ(names(dir_), (std::set<std::string>{"best.json", "step-000001", "step-000003"}));
  save(again, 3, 0.9);  // the same step saved again replaces it
  EXPECT_EQ(again.best(), dir_ / "step-000003");
  EXPECT_EQ(names(dir_), (std::set<std::string>{"best.json", "step-000003"}));
}

}  // namespace
}  // namespace opine
