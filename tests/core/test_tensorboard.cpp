// TensorBoard event files: CRC-32C, record bytes equal to tensorboard's own encoder (parity), and
// files that tensorboard's reader reads back, resume included (parity).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/tensorboard.h"
#include "test_util.h"

namespace opine {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

TEST(TensorBoard, Crc32cKnownValues) {
  EXPECT_EQ(tensorboard::crc32c("", 0), 0u);
  EXPECT_EQ(tensorboard::crc32c("123456789", 9), 0xE3069283u);  // the CRC-32C check value
  const std::string zeros(32, '\0');
  EXPECT_EQ(tensorboard::crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);  // RFC 3720 B.4
}

// tests/reference/train_reference.py: Event protobufs built with tensorboard's proto classes,
// framed by its RecordWriter. Exact bytes: the encoding has no freedom once the fields are fixed.
TEST(TensorBoardParity, RecordsMatchTensorboardsEncoder) {
  const auto path = test::reference_dir() / "train" / "tensorboard.json";
  OPINE_REQUIRE_FILE(path);
  std::ifstream in(path);
  const json cases = json::parse(in);
  ASSERT_GE(cases.size(), 5u);
  for (const auto& c : cases) {
    const std::string kind = c["kind"];
    std::string event;
    if (kind == "file_version") {
      event = tensorboard::file_version_event(c["wall_time"], c["version"]);
    } else if (kind == "scalar") {
      event = tensorboard::scalar_event(c["wall_time"], c["step"], c["tag"], c["value"].get<float>());
    } else {
      ASSERT_EQ(kind, "session_start");
      event = tensorboard::session_start_event(c["wall_time"], c["step"]);
    }
    EXPECT_EQ(hex(tensorboard::tf_record(event)), c["record"].get<std::string>()) << c.dump();
  }
}

class TensorBoardFilesParity : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("opine_tb_" + std::string(testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // tests/reference/read_tensorboard.py's JSON for dir_/events.
  json read_back() {
    const fs::path out = dir_ / "read.json";
    const std::string command = std::string("\"") + OPINE_PYTHON_EXE + "\" \"" + OPINE_SOURCE_DIR +
                                "/tests/reference/read_tensorboard.py\" \"" + (dir_ / "events").string() +
                                "\" > \"" + out.string() + "\"";
    const int rc = std::system(command.c_str());
    EXPECT_EQ(rc, 0) << command;
    std::ifstream in(out);
    return json::parse(in);
  }
  fs::path dir_;
};

TEST_F(TensorBoardFilesParity, TensorboardReadsOurFiles) {
  fs::path file;
  {
    EventWriter w(dir_ / "events");
    file = w.path();
    EXPECT_EQ(file.filename().string().rfind("events.out.tfevents.", 0), 0u) << file;
    for (int step = 0; step < 3; ++step) {
      w.add_scalar("train/loss", 2.0 - 0.5 * step, step);
      w.add_scalar("train/lr", 1e-4 * step, step);
    }
    w.add_scalar("eval/accuracy (é)", 0.875, 2);
    w.flush();
  }
  const json r = read_back();
  const auto& records = r["records"];
  ASSERT_EQ(records.size(), 8u) << r.dump();
  EXPECT_EQ(records[0]["what"], "file_version");
  EXPECT_EQ(records[0]["file_version"], "brain.Event:2");
  EXPECT_GT(records[0]["wall_time"].get<double>(), 1.6e9);
  EXPECT_EQ(records[1]["what"], "summary");
  EXPECT_EQ(records[1]["values"][0][0], "train/loss");
  EXPECT_EQ(records[7]["step"], 2);
  const auto& scalars = r["scalars"];
  EXPECT_EQ(scalars["train/loss"], json::parse("[[0, 2.0], [1, 1.5], [2, 1.0]]"));
  ASSERT_EQ(scalars["train/lr"].size(), 3u);
  EXPECT_EQ(scalars["train/lr"][2][1].get<double>(), static_cast<double>(static_cast<float>(2e-4)));
  EXPECT_EQ(scalars["eval/accuracy (é)"], json::parse("[[2, 0.875]]"));
}

// A resumed run (from a checkpoint at step 2) writes a second file in the folder; its session
// start makes TensorBoard drop the first run's steps from 2 on, so no step shows twice.
TEST_F(TensorBoardFilesParity, ResumeReplacesLaterSteps) {
  {
    EventWriter w(dir_ / "events");
    for (int step = 0; step < 5; ++step) w.add_scalar("loss", step, step);
  }
  {
    EventWriter w(dir_ / "events");
    w.add_session_start(2);
    for (int step = 2; step < 4; ++step) w.add_scalar("loss", 10 + step, step);
  }
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_ / "events")) ++files;
  EXPECT_EQ(files, 2);
  const json r = read_back();
  EXPECT_EQ(r["scalars"]["loss"], json::parse("[[0, 0.0], [1, 1.0], [2, 12.0], [3, 13.0]]")) << r.dump();
}

}  // namespace
}  // namespace opine
