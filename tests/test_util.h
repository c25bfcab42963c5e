// Shared helpers for opine's tests: where the data root and the generated references live.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/error.h"

namespace opine::test {

// ../shared/data unless OPINE_DATA_ROOT says otherwise.
inline std::filesystem::path data_root() {
  const char* env = std::getenv("OPINE_DATA_ROOT");
  return env && *env ? std::filesystem::path(env) : std::filesystem::path(OPINE_DATA_ROOT_DEFAULT);
}

// Folder that tests/reference/generate_all.py fills (build/reference).
inline std::filesystem::path reference_dir() {
  const char* env = std::getenv("OPINE_REFERENCE_DIR");
  return env && *env ? std::filesystem::path(env) : std::filesystem::path(OPINE_REFERENCE_DIR);
}

// The message of the opine::Error that `f` throws, or "(no error)".
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const opine::Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Gives each test a folder of its own, absent at the start and removed afterwards (ctest runs
// tests as parallel processes): TMP/opine_<suite>_<test>_<pid>.
class TempDirTest : public testing::Test {
 protected:
  void SetUp() override {
    const testing::TestInfo* info = testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() / ("opine_" + std::string(info->test_suite_name()) + "_" +
                                                     info->name() + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

}  // namespace opine::test

// Skips the current test with a clear message when a real-data file is absent.
#define OPINE_REQUIRE_FILE(path)                                                      \
  do {                                                                                \
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "missing " << (path)          \
                                                     << " (set OPINE_DATA_ROOT)";     \
  } while (0)
