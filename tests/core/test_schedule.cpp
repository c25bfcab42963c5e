// Learning-rate schedules: transformers' multipliers (parity), warmup from a ratio, bad kinds.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/error.h"
#include "core/schedule.h"
#include "test_util.h"

namespace opine {
namespace {

ScheduleOptions options(const std::string& kind, int64_t warmup_steps = 0, double warmup_ratio = 0.0,
                        double num_cycles = 0.5) {
  ScheduleOptions o;
  o.kind = kind;
  o.warmup_steps = warmup_steps;
  o.warmup_ratio = warmup_ratio;
  o.num_cycles = num_cycles;
  return o;
}

// Every case of tests/reference/train_reference.py: the LambdaLR multiplier after each of
// 0 .. total+2 steps. Tolerance 1e-15: the formulas are transformers' term for term in double
// precision, so only libm's cos (a last-bit difference at most) could tell them apart.
TEST(ScheduleParity, MatchesTransformers) {
  const auto path = test::reference_dir() / "train" / "schedules.json";
  OPINE_REQUIRE_FILE(path);
  std::ifstream in(path);
  const nlohmann::json cases = nlohmann::json::parse(in);
  ASSERT_GE(cases.size(), 10u);
  for (const auto& c : cases) {
    const ScheduleOptions o = options(c["kind"], c["warmup_steps"], c["warmup_ratio"], c["num_cycles"]);
    const int64_t total = c["total"];
    SCOPED_TRACE(c["kind"].get<std::string>() + " warmup " + std::to_string(c["warmup"].get<int64_t>()) +
                 " total " + std::to_string(total));
    EXPECT_EQ(warmup_steps(o, total), c["warmup"].get<int64_t>());
    const auto& expected = c["multipliers"];
    for (size_t step = 0; step < expected.size(); ++step)
      EXPECT_NEAR(lr_multiplier(o, static_cast<int64_t>(step), total), expected[step].get<double>(), 1e-15)
          << "step " << step;
  }
}

TEST(Schedule, WarmupStepsWinOverRatio) {
  EXPECT_EQ(warmup_steps(options("linear", 5, 0.5), 100), 5);
  EXPECT_EQ(warmup_steps(options("linear", 0, 0.5), 100), 50);
  EXPECT_EQ(warmup_steps(options("linear", 0, 0.1), 25), 3);  // ceil(2.5)
  EXPECT_EQ(warmup_steps(options("linear", 0, 0.0), 25), 0);
}

TEST(Schedule, ShapesOfEachKind) {
  EXPECT_DOUBLE_EQ(lr_multiplier(options("constant", 10), 0, 100), 1.0);  // constant ignores warmup
  EXPECT_DOUBLE_EQ(lr_multiplier(options("constant_with_warmup", 10), 5, 100), 0.5);
  EXPECT_DOUBLE_EQ(lr_multiplier(options("constant_with_warmup", 10), 50, 100), 1.0);
  EXPECT_DOUBLE_EQ(lr_multiplier(options("linear", 10), 0, 100), 0.0);
  EXPECT_DOUBLE_EQ(lr_multiplier(options("linear", 10), 10, 100), 1.0);
  EXPECT_DOUBLE_EQ(lr_multiplier(options("linear", 10), 55, 100), 0.5);
  EXPECT_DOUBLE_EQ(lr_multiplier(options("linear", 10), 100, 100), 0.0);
  EXPECT_DOUBLE_EQ(lr_multiplier(options("linear", 10), 150, 100), 0.0);  // never negative
  EXPECT_NEAR(lr_multiplier(options("cosine", 0), 50, 100), 0.5, 1e-15);
  EXPECT_NEAR(lr_multiplier(options("cosine", 0), 100, 100), 0.0, 1e-15);
}

TEST(Schedule, UnknownKindIsAConfigError) {
  try {
    lr_multiplier(options("cosine_with_restarts"), 3, 10);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(e.what()).find("cosine_with_restarts"), std::string::npos) << e.what();
  }
}

TEST(Schedule, ConfigChecksKindAndRanges) {
  const auto o = config::from_yaml<ScheduleOptions>(YAML::Load("kind: cosine\nwarmup_ratio: 0.1"), "t.yaml");
  EXPECT_EQ(o.kind, "cosine");
  EXPECT_DOUBLE_EQ(o.warmup_ratio, 0.1);
  EXPECT_THROW(config::from_yaml<ScheduleOptions>(YAML::Load("kind: polynomial"), "t.yaml"), Error);
  EXPECT_THROW(config::from_yaml<ScheduleOptions>(YAML::Load("warmup_ratio: 1.5"), "t.yaml"), Error);
  EXPECT_THROW(config::from_yaml<ScheduleOptions>(YAML::Load("warmup_steps: -1"), "t.yaml"), Error);
}

}  // namespace
}  // namespace opine
