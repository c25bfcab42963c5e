// Logging: levels, ranks, line format, the environment variable, threads.
#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/log.h"

namespace opine {
namespace {

// Each test starts from a single process at info level and leaves it so.
class Log : public testing::Test {
 protected:
  void SetUp() override { reset(); }
  void TearDown() override {
    reset();
    unsetenv("OPINE_LOG_LEVEL");
  }
  static void reset() {
    log::set_level(log::Level::kInfo);
    log::set_rank(0, 1);
    log::set_all_ranks(false);
  }
  template <class F>
  static std::string captured(F&& f) {
    testing::internal::CaptureStderr();
    f();
    return testing::internal::GetCapturedStderr();
  }
};

const char* const kStamp = R"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})";

TEST_F(Log, ParsesLevelNames) {
  EXPECT_EQ(log::parse_level("debug"), log::Level::kDebug);
  EXPECT_EQ(log::parse_level("INFO"), log::Level::kInfo);
  EXPECT_EQ(log::parse_level("warning"), log::Level::kWarn);
  EXPECT_EQ(log::parse_level("Error"), log::Level::kError);
  try {
    log::parse_level("loud");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUser);
    EXPECT_STREQ(e.what(), "unknown log level 'loud' (debug, info, warn, error)");
  }
}

TEST_F(Log, LineCarriesTimeAndLevel) {
  const std::string line = captured([] { log::info("loaded ", 291, " tensors in ", 1.5, " s"); });
  EXPECT_TRUE(std::regex_match(line, std::regex(std::string("^") + kStamp + " info loaded 291 tensors in 1.5 s\n$")))
      << line;
}

TEST_F(Log, LevelFilters) {
  EXPECT_TRUE(log::enabled(log::Level::kInfo));
  EXPECT_FALSE(log::enabled(log::Level::kDebug));
  EXPECT_EQ(captured([] { log::debug("hidden"); }), "");
  log::set_level(log::Level::kDebug);
  EXPECT_TRUE(std::regex_search(captured([] { log::debug("shown"); }), std::regex(" debug shown\n$")));
  log::set_level(log::Level::kError);
  EXPECT_EQ(log::level(), log::Level::kError);
  EXPECT_EQ(captured([] { log::warn("hidden"); }), "");
  EXPECT_TRUE(std::regex_search(captured([] { log::error("shown"); }), std::regex(" error shown\n$")));
}

TEST_F(Log, OnlyRankZeroSaysInfoEveryRankWarns) {
  log::set_rank(0, 4);
  const std::string zero = captured([] { log::info("hello"); });
  EXPECT_TRUE(std::regex_match(zero, std::regex(std::string("^") + kStamp + R"( info \[rank 0\] hello\n$)"))) << zero;
  log::set_rank(1, 4);
  EXPECT_FALSE(log::enabled(log::Level::kInfo));
  EXPECT_TRUE(log::enabled(log::Level::kWarn));
  EXPECT_EQ(captured([] { log::info("quiet"); }), "");
  const std::string warn = captured([] { log::warn("disk ", 93, "% full"); });
  EXPECT_TRUE(std::regex_match(warn, std::regex(std::string("^") + kStamp + R"( warn \[rank 1\] disk 93% full\n$)")))
      << warn;
  EXPECT_TRUE(std::regex_search(captured([] { log::error("boom"); }), std::regex(R"( error \[rank 1\] boom\n$)")));
  log::set_all_ranks(true);
  EXPECT_TRUE(std::regex_search(captured([] { log::info("now"); }), std::regex(R"( info \[rank 1\] now\n$)")));
  // One process: no rank tag.
  log::set_rank(0, 1);
  EXPECT_TRUE(std::regex_search(captured([] { log::warn("solo"); }), std::regex(std::string(kStamp) + " warn solo\n$")));
}

struct Counted {
  int* count;
};
std::ostream& operator<<(std::ostream& out, const Counted& c) {
  ++*c.count;
  return out << "counted";
}

TEST_F(Log, NothingIsFormattedForHiddenLines) {
  int count = 0;
  captured([&] { log::debug(Counted{&count}); });
  EXPECT_EQ(count, 0);
  const std::string line = captured([&] { log::info(Counted{&count}); });
  EXPECT_EQ(count, 1);
  EXPECT_TRUE(std::regex_search(line, std::regex(" info counted\n$"))) << line;
}

TEST_F(Log, LevelFromEnvironment) {
  setenv("OPINE_LOG_LEVEL", "debug", 1);
  log::configure_from_env();
  EXPECT_EQ(log::level(), log::Level::kDebug);
  setenv("OPINE_LOG_LEVEL", "WARN", 1);
  log::configure_from_env();
  EXPECT_EQ(log::level(), log::Level::kWarn);
  // A mistyped value is reported and changes nothing: a log setting must not stop a run.
  setenv("OPINE_LOG_LEVEL", "verbose", 1);
  const std::string said = captured([] { log::configure_from_env(); });
  EXPECT_EQ(log::level(), log::Level::kWarn);
  EXPECT_EQ(said, "opine: ignoring OPINE_LOG_LEVEL: unknown log level 'verbose' (debug, info, warn, error)\n");
  unsetenv("OPINE_LOG_LEVEL");
  log::configure_from_env();
  EXPECT_EQ(log::level(), log::Level::kWarn);
}

TEST_F(Log, LinesFromThreadsDoNotInterleave) {
  constexpr int kThreads = 8, kLines = 200;
  const std::string out = captured([] {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([t] {
        for (int i = 0; i < kLines; ++i) log::info("thread ", t, " line ", i, " ", std::string(100, 'a' + t));
      });
    for (auto& th : threads) th.join();
  });
  std::istringstream in(out);
  const std::regex whole(std::string("^") + kStamp + R"( info thread (\d) line (\d+) ([a-h])\3{99}$)");
  std::vector<int> next(kThreads, 0);
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, whole)) << line;
    const int t = std::stoi(m[1]);
    EXPECT_EQ(m[3].str()[0], 'a' + t);
    EXPECT_EQ(std::stoi(m[2]), next[t]++);  // each thread's lines in its own order
  }
  EXPECT_EQ(lines, kThreads * kLines);
}

}  // namespace
}  // namespace opine
