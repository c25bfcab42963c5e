// Typed configuration: defaults, YAML files, overrides, every error reported at once.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/config.h"
#include "core/log.h"

namespace opine {
namespace {

struct Inner {
  std::string name = "base";
  double rate = 1e-4;
  std::vector<int> sizes = {1, 2};
  template <class V>
  void visit(V& v) {
    v("name", name, "a name", config::one_of({"base", "large"}));
    v("rate", rate, "a rate", config::in_range(0.0, 1.0));
    v("sizes", sizes, "some sizes");
  }
};

struct Outer {
  Inner inner;
  int64_t steps = 10;
  bool flag = false;
  std::optional<int> limit;
  std::map<std::string, std::string> labels;
  std::string path;
  template <class V>
  void visit(V& v) {
    v("inner", inner, "nested options");
    v("steps", steps, "how many", config::at_least(1));
    v("flag", flag, "a switch");
    v("limit", limit, "optional cap");
    v("labels", labels, "label names");
    v("path", path, "a path");
  }
  bool operator==(const Outer& o) const {
    return inner.name == o.inner.name && inner.rate == o.inner.rate && inner.sizes == o.inner.sizes &&
           steps == o.steps && flag == o.flag && limit == o.limit && labels == o.labels && path == o.path;
  }
};

std::string write_file(const std::string& text) {
  static int counter = 0;
  const auto path = std::filesystem::temp_directory_path() /
                    ("opine_config_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".yaml");
  std::ofstream(path) << text;
  return path.string();
}

std::string config_error(const std::string& yaml_text, const std::vector<std::string>& overrides = {}) {
  const std::string path = write_file(yaml_text);
  try {
    config::load<Outer>(path, overrides);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    return e.what();
  }
  return "";
}

TEST(Config, DefaultsWhenEmpty) {
  EXPECT_EQ(config::load<Outer>(std::nullopt, {}), Outer{});
  EXPECT_EQ(config::load<Outer>(write_file(""), {}), Outer{});
}

TEST(Config, ReadsEveryFieldType) {
  const Outer o = config::load<Outer>(
      write_file("inner:\n  name: large\n  rate: 3e-5\n  sizes: [4, 5, 6]\nsteps: 99\nflag: true\n"
                 "limit: 7\nlabels: {0: none, 1: against}\npath: 'a: b #c'\n"),
      {});
  EXPECT_EQ(o.inner.name, "large");
  EXPECT_DOUBLE_EQ(o.inner.rate, 3e-5);
  EXPECT_EQ(o.inner.sizes, (std::vector<int>{4, 5, 6}));
  EXPECT_EQ(o.steps, 99);
  EXPECT_TRUE(o.flag);
  EXPECT_EQ(o.limit, 7);
  EXPECT_EQ(o.labels.at("1"), "against");
  EXPECT_EQ(o.path, "a: b #c");
}

TEST(Config, OverridesWinAndCreateNestedKeys) {
  YAML::Node root = config::load_yaml_file(write_file("steps: 5\n"));
  const auto keys = config::apply_overrides(root, {"inner.sizes=[8, 9]", "steps=6", "inner.name=large", "limit=null"});
  EXPECT_EQ(keys.count("inner.sizes"), 1u);
  const Outer o = config::from_yaml<Outer>(root, "f.yaml", keys);
  EXPECT_EQ(o.steps, 6);
  EXPECT_EQ(o.inner.sizes, (std::vector<int>{8, 9}));
  EXPECT_EQ(o.inner.name, "large");
  EXPECT_FALSE(o.limit.has_value());
}

TEST(Config, StringValuesAreNotParsedAsYaml) {
  YAML::Node root(YAML::NodeType::Map);
  config::set_string(root, "inner.name", "large");
  config::set_string(root, "path", "/data/x: y");
  const Outer o = config::from_yaml<Outer>(root, "(command line)");
  EXPECT_EQ(o.inner.name, "large");
  EXPECT_EQ(o.path, "/data/x: y");
}

TEST(Config, AllProblemsReportedAtOnceWithFileLineAndKey) {
  const std::string msg = config_error("inner:\n  nmae: x\n  rate: 2\nsteps: abc\nflag: maybe\n");
  EXPECT_NE(msg.find("4 configuration problems"), std::string::npos) << msg;
  EXPECT_NE(msg.find(":2:3: inner.nmae: unknown key (did you mean 'inner.name'?)"), std::string::npos) << msg;
  EXPECT_NE(msg.find(":3:9: inner.rate: must be in [0, 1], got 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find(":4:8: steps: expected integer, got \"abc\""), std::string::npos) << msg;
  EXPECT_NE(msg.find(":5:7: flag: expected bool, got \"maybe\""), std::string::npos) << msg;
  EXPECT_NE(msg.find(".yaml"), std::string::npos) << msg;
}

TEST(Config, WrongShapesAreErrors) {
  std::string msg = config_error("inner: 3\nlabels: [a]\ninner2: {}\n");
  EXPECT_NE(msg.find("inner: expected map, got \"3\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("labels: expected map of string, got a list"), std::string::npos) << msg;
  EXPECT_NE(msg.find("inner2: unknown key (did you mean 'inner'?)"), std::string::npos) << msg;
  msg = config_error("inner:\n  sizes: [1, x]\n");
  EXPECT_NE(msg.find("inner.sizes[1]: expected integer, got \"x\""), std::string::npos) << msg;
}

TEST(Config, ValidatorsAndOverrideOrigin) {
  const std::string msg = config_error("steps: 3\n", {"steps=0", "inner.name=huge"});
  EXPECT_NE(msg.find("(command line) steps: must be at least 1, got 0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(command line) inner.name: 'huge' is not one of: base, large"), std::string::npos) << msg;
}

TEST(Config, MalformedOverridesAndYaml) {
  YAML::Node root(YAML::NodeType::Map);
  EXPECT_THROW(config::apply_overrides(root, {"steps"}), Error);
  EXPECT_THROW(config::apply_overrides(root, {"a..b=1"}), Error);
  EXPECT_THROW(config::apply_overrides(root, {"=1"}), Error);
  const std::string path = write_file("inner:\n  name: [unclosed\n");
  try {
    config::load_yaml_file(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("YAML syntax error"), std::string::npos) << e.what();
  }
  EXPECT_THROW(config::load_yaml_file("/nonexistent/x.yaml"), Error);
}

TEST(Config, ToYamlRoundTrips) {
  Outer o;
  o.inner.name = "large";
  o.inner.rate = 0.1;
  o.inner.sizes = {3};
  o.steps = 42;
  o.limit = 5;
  o.labels = {{"0", "none"}, {"1", "true"}};
  o.path = "123";
  const std::string text = config::to_yaml(o);
  EXPECT_EQ(config::from_yaml<Outer>(YAML::Load(text), "(round trip)"), o) << text;
  EXPECT_NE(text.find("rate: 0.1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("limit: 5"), std::string::npos) << text;
}

TEST(Config, DescribeListsKeysTypesAndDefaults) {
  const std::string d = config::describe<Outer>();
  EXPECT_NE(d.find("inner.rate (number, default 1e-04): a rate"), std::string::npos) << d;
  EXPECT_NE(d.find("steps (integer, default 10)"), std::string::npos) << d;
  EXPECT_NE(d.find("limit (integer or null, default ~)"), std::string::npos) << d;
}

TEST(Log, LevelsAndRanks) {
  EXPECT_EQ(log::parse_level("warn"), log::Level::kWarn);
  EXPECT_THROW(log::parse_level("loud"), Error);
  log::set_level(log::Level::kInfo);
  log::set_rank(0, 1);
  EXPECT_TRUE(log::enabled(log::Level::kInfo));
  EXPECT_FALSE(log::enabled(log::Level::kDebug));
  log::set_rank(1, 2);  // other ranks keep quiet below warnings
  EXPECT_FALSE(log::enabled(log::Level::kInfo));
  EXPECT_TRUE(log::enabled(log::Level::kWarn));
  testing::internal::CaptureStderr();
  log::warn("disk ", 93, "% full");
  const std::string line = testing::internal::GetCapturedStderr();
  EXPECT_NE(line.find("warn [rank 1] disk 93% full"), std::string::npos) << line;
  log::set_rank(0, 1);
}

}  // namespace
}  // namespace opine
