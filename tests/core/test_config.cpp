// Typed configuration: defaults, YAML files, overrides, every problem reported at once.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/config.h"

namespace opine {
namespace {

struct ModelOptions {
  std::string path;
  std::string dtype = "f32";
  int num_labels = 2;
  template <class V>
  void visit(V& v) {
    v("path", path, "model folder or file");
    v("dtype", dtype, "compute dtype", config::one_of({"f32", "bf16", "f16"}));
    v("num_labels", num_labels, "classes of the classification head", config::at_least(1));
  }
  bool operator==(const ModelOptions&) const = default;
};

struct RunOptions {
  ModelOptions model;
  int seed = 0;
  double lr = 1e-4;
  std::vector<int> sizes = {1, 2};
  std::optional<int> limit;
  std::map<std::string, std::string> labels;
  bool flag = false;
  template <class V>
  void visit(V& v) {
    v("model", model, "the model");
    v("seed", seed, "random seed");
    v("lr", lr, "learning rate", config::in_range(0.0, 1.0));
    v("sizes", sizes, "some sizes", config::at_least(1));  // checks each element
    v("limit", limit, "optional cap", config::at_most(100));
    v("labels", labels, "label names");
    v("flag", flag, "a switch");
  }
  bool operator==(const RunOptions&) const = default;
};

struct Item {
  std::string name;
  double weight = 1.0;
  template <class V>
  void visit(V& v) {
    v("name", name, "item name");
    v("weight", weight, "item weight");
  }
  bool operator==(const Item&) const = default;
};

struct AllTypes {
  bool b = false;
  int i = -3;
  int64_t i64 = -5;
  uint64_t u64 = 7;
  float f = 0.5f;
  double d = 2.5;
  std::string s = "text";
  std::filesystem::path p = "/tmp/x";
  std::vector<int> vi;
  std::vector<std::string> vs;
  std::vector<std::vector<int>> vvi;
  std::vector<bool> vb;
  std::optional<int> oi;
  std::optional<std::string> os;
  std::optional<Item> oitem;
  std::map<std::string, int> mi;
  std::map<std::string, Item> mitem;
  std::vector<Item> items;
  Item item;
  template <class V>
  void visit(V& v) {
    v("b", b, "bool");
    v("i", i, "int");
    v("i64", i64, "int64");
    v("u64", u64, "uint64");
    v("f", f, "float");
    v("d", d, "double");
    v("s", s, "string");
    v("p", p, "path");
    v("vi", vi, "ints");
    v("vs", vs, "strings");
    v("vvi", vvi, "lists of ints");
    v("vb", vb, "bools");
    v("oi", oi, "optional int");
    v("os", os, "optional string");
    v("oitem", oitem, "optional section");
    v("mi", mi, "map of ints");
    v("mitem", mitem, "map of sections");
    v("items", items, "list of sections");
    v("item", item, "a section");
  }
  bool operator==(const AllTypes&) const = default;
};

std::string write_file(const std::string& text) {
  static int counter = 0;
  const auto path = std::filesystem::temp_directory_path() /
                    ("opine_config_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".yaml");
  std::ofstream(path) << text;
  return path.string();
}

// The message of the opine::Error that `f` throws; fails the test when it throws none or another kind.
template <class F>
std::string error_of(F&& f, ErrorKind kind = ErrorKind::kConfig) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not an opine::Error: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no error";
  return "";
}

// Loads `yaml_text` from a file into RunOptions and returns the error; `path` gets the file name.
std::string run_error(const std::string& yaml_text, const std::vector<std::string>& overrides = {},
                      std::string* path = nullptr) {
  const std::string file = write_file(yaml_text);
  if (path) *path = file;
  return error_of([&] { config::load<RunOptions>(file, overrides); });
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(Config, DefaultsWhenNothingIsGiven) {
  EXPECT_EQ(config::load<RunOptions>(std::nullopt, {}), RunOptions{});
  EXPECT_EQ(config::load<RunOptions>(write_file(""), {}), RunOptions{});
  EXPECT_EQ(config::load<RunOptions>(write_file("# only a comment\n"), {}), RunOptions{});
  EXPECT_EQ(config::load<RunOptions>(write_file("model:\n"), {}), RunOptions{});  // empty section
  EXPECT_EQ(config::load<AllTypes>(std::nullopt, {}), AllTypes{});
}

TEST(Config, ReadsEveryFieldType) {
  const std::string text = R"(
b: yes
i: -42
i64: -9000000000
u64: 18446744073709551615
f: 0.25
d: 3e-5
s: 'a: b #c'
p: /data/model dir/x.bin
vi: [4, 5, 6]
vs: [x, "y z"]
vvi: [[1], [2, 3], []]
vb: [true, false, true]
oi: 7
os: ~
oitem: {name: opt}
mi: {one: 1, two: 2}
mitem:
  first: {name: a, weight: 0.5}
  second: {}
items:
  - name: p
  - {name: q, weight: 2}
item: {name: nested, weight: +1.5}
)";
  const AllTypes a = config::load<AllTypes>(write_file(text), {});
  EXPECT_TRUE(a.b);
  EXPECT_EQ(a.i, -42);
  EXPECT_EQ(a.i64, -9000000000LL);
  EXPECT_EQ(a.u64, 18446744073709551615ULL);
  EXPECT_EQ(a.f, 0.25f);
  EXPECT_DOUBLE_EQ(a.d, 3e-5);
  EXPECT_EQ(a.s, "a: b #c");
  EXPECT_EQ(a.p, std::filesystem::path("/data/model dir/x.bin"));
  EXPECT_EQ(a.vi, (std::vector<int>{4, 5, 6}));
  EXPECT_EQ(a.vs, (std::vector<std::string>{"x", "y z"}));
  EXPECT_EQ(a.vvi, (std::vector<std::vector<int>>{{1}, {2, 3}, {}}));
  EXPECT_EQ(a.vb, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(a.oi, 7);
  EXPECT_EQ(a.os, std::nullopt);
  ASSERT_TRUE(a.oitem.has_value());
  EXPECT_EQ(*a.oitem, (Item{"opt", 1.0}));  // a set optional section starts from its defaults
  EXPECT_EQ(a.mi, (std::map<std::string, int>{{"one", 1}, {"two", 2}}));
  EXPECT_EQ(a.mitem.at("first"), (Item{"a", 0.5}));
  EXPECT_EQ(a.mitem.at("second"), (Item{"", 1.0}));
  EXPECT_EQ(a.items, (std::vector<Item>{{"p", 1.0}, {"q", 2.0}}));
  EXPECT_EQ(a.item, (Item{"nested", 1.5}));
}

TEST(Config, ScalarSpellings) {
  auto one = [](const std::string& text) { return config::from_yaml<AllTypes>(YAML::Load(text), "t.yaml"); };
  EXPECT_EQ(one("i: 0x1f").i, 31);
  EXPECT_EQ(one("i: +5").i, 5);
  EXPECT_EQ(one("i: '12'").i, 12);  // a quoted number is still a number for a numeric key
  EXPECT_FALSE(one("b: off").b);
  EXPECT_TRUE(one("b: True").b);
  EXPECT_EQ(one("d: 5").d, 5.0);
  EXPECT_EQ(one("d: .5").d, 0.5);
  EXPECT_TRUE(std::isinf(one("d: -.inf").d) && one("d: -.inf").d < 0);
  EXPECT_TRUE(std::isnan(one("d: .nan").d));
  EXPECT_EQ(one("s: 123").s, "123");  // a number is fine where a string is expected
  EXPECT_EQ(one("s: null").s, "");
  EXPECT_TRUE(one("vi: ~").vi.empty());
  EXPECT_TRUE(one("vi: []").vi.empty());
}

// The example from the brief: one wrong value gives file:line:column and the dotted key.
TEST(Config, WrongTypeNamesFileLineColumnAndKey) {
  std::string path;
  const std::string msg = run_error("seed: 1\nmodel:\n  num_labels: abc\n", {}, &path);
  EXPECT_EQ(msg, "1 configuration problem:\n  " + path + ":3:15: model.num_labels: expected an integer, got \"abc\"");
}

TEST(Config, AllProblemsReportedAtOnceInFileOrder) {
  std::string path;
  const std::string msg = run_error(
      "model:\n"
      "  pth: x\n"
      "  dtype: bf61\n"
      "seed: abc\n",
      {}, &path);
  EXPECT_EQ(msg, "3 configuration problems:\n"
                 "  " + path + ":2:3: model.pth: unknown key (did you mean 'model.path'?)\n"
                 "  " + path + ":3:10: model.dtype: 'bf61' is not one of: f32, bf16, f16 (did you mean 'bf16'?)\n"
                 "  " + path + ":4:7: seed: expected an integer, got \"abc\"");
}

TEST(Config, UnknownKeySuggestions) {
  std::string msg = run_error("model:\n  dtpye: f32\n");  // swapped letters are one edit
  EXPECT_TRUE(contains(msg, ":2:3: model.dtpye: unknown key (did you mean 'model.dtype'?)")) << msg;
  msg = run_error("num_labels: 3\n");  // right name, wrong section
  EXPECT_TRUE(contains(msg, ":1:1: num_labels: unknown key (did you mean 'model.num_labels'?)")) << msg;
  msg = run_error("model.path: x\n");  // a dotted name is not a nested key
  EXPECT_TRUE(contains(msg, "model.path: unknown key (write nested keys as maps, not dotted names)")) << msg;
  msg = run_error("model:\n  zzzzzz: 1\n");  // nothing near: list what there is
  EXPECT_TRUE(contains(msg, "model.zzzzzz: unknown key (known keys in model: path, dtype, num_labels)")) << msg;
  msg = run_error("model: {path: a, path: b}\n");
  EXPECT_TRUE(contains(msg, ":1:18: model.path: duplicate key")) << msg;
}

TEST(Config, WrongShapes) {
  std::string msg = run_error("model: 3\nlabels: [a]\nsizes: {a: 1}\nseed: [1]\nflag: maybe\n");
  EXPECT_TRUE(contains(msg, "5 configuration problems")) << msg;
  EXPECT_TRUE(contains(msg, ":1:8: model: expected a map, got \"3\"")) << msg;
  EXPECT_TRUE(contains(msg, ":2:9: labels: expected a map, got a list")) << msg;
  EXPECT_TRUE(contains(msg, ":3:8: sizes: expected a list, got a map")) << msg;
  EXPECT_TRUE(contains(msg, ":4:7: seed: expected an integer, got a list")) << msg;
  EXPECT_TRUE(contains(msg, ":5:7: flag: expected true or false, got \"maybe\"")) << msg;
  msg = run_error("sizes: [1, x, 3.5]\nmodel: {path: {a: 1}}\nlabels: {a: [1]}\n");
  EXPECT_TRUE(contains(msg, ":1:12: sizes[1]: expected an integer, got \"x\"")) << msg;
  EXPECT_TRUE(contains(msg, ":1:15: sizes[2]: expected an integer, got \"3.5\"")) << msg;
  EXPECT_TRUE(contains(msg, ":2:15: model.path: expected a string, got a map")) << msg;
  EXPECT_TRUE(contains(msg, ":3:13: labels.a: expected a string, got a list")) << msg;
  msg = error_of([] { config::from_yaml<RunOptions>(YAML::Load("[1, 2]"), "t.yaml"); });
  EXPECT_TRUE(contains(msg, "t.yaml:1:1: (top level): expected a map, got a list")) << msg;
}

TEST(Config, OutOfRangeNumbers) {
  auto msg = [](const std::string& text) {
    return error_of([&] { config::from_yaml<AllTypes>(YAML::Load(text), "t.yaml"); });
  };
  EXPECT_TRUE(contains(msg("i: 3000000000"), "i: 3000000000 is out of range (-2147483648 to 2147483647)"));
  EXPECT_TRUE(contains(msg("u64: -1"), "u64: expected a non-negative integer, got \"-1\""));
  EXPECT_TRUE(contains(msg("u64: 18446744073709551616"), "u64: 18446744073709551616 is out of range"));
  EXPECT_TRUE(contains(msg("f: 1e39"), "f: 1e39 is out of range"));
  EXPECT_TRUE(contains(msg("d: 1.5x"), "d: expected a number, got \"1.5x\""));
  EXPECT_TRUE(contains(msg("oi: abc"), "oi: expected an integer, got \"abc\""));
}

TEST(Config, ValidatorFailures) {
  std::string path;
  std::string msg = run_error("lr: 2\nmodel: {num_labels: 0}\nsizes: [3, 0]\nlimit: 101\n", {}, &path);
  EXPECT_EQ(msg, "4 configuration problems:\n"
                 "  " + path + ":1:5: lr: must be in [0, 1], got 2\n"
                 "  " + path + ":2:21: model.num_labels: must be at least 1, got 0\n"
                 "  " + path + ":3:12: sizes[1]: must be at least 1, got 0\n"
                 "  " + path + ":4:8: limit: must be at most 100, got 101");
  // A value that fails its type is not also checked; an unset optional is not checked.
  EXPECT_EQ(config::load<RunOptions>(write_file("limit: null\n"), {}).limit, std::nullopt);
  msg = run_error("lr: x\n");
  EXPECT_TRUE(contains(msg, "1 configuration problem:")) << msg;
}

struct Custom {
  std::string name = "ok";
  std::vector<std::string> tags;
  template <class V>
  void visit(V& v) {
    v("name", name, "lower case", config::rule("lower case", [](const std::string& s) -> std::string {
        for (char c : s)
          if (std::isupper(static_cast<unsigned char>(c))) return "must be lower case";
        return "";
      }));
    v("tags", tags, "tags", config::one_of({"a", "b"}));
    }
};

struct Sectioned {
  ModelOptions model;
  template <class V>
  void visit(V& v) {
    v("model", model, "the model", config::rule("bf16 needs a path", [](const ModelOptions& m) -> std::string {
        return m.dtype == "bf16" && m.path.empty() ? "dtype bf16 needs a path" : "";
      }));
  }
};

TEST(Config, CustomChecksAndChecksOnElements) {
  EXPECT_EQ(error_of([] { config::from_yaml<Sectioned>(YAML::Load("model:\n  dtype: bf16"), "s.yaml"); }),
            "1 configuration problem:\n  s.yaml:2:3: model: dtype bf16 needs a path");
  EXPECT_EQ(config::from_yaml<Sectioned>(YAML::Load("model: {dtype: bf16, path: x}"), "s.yaml").model.path, "x");

  const std::string msg =
      error_of([] { config::from_yaml<Custom>(YAML::Load("name: Big\ntags: [a, c]"), "c.yaml"); });
  EXPECT_TRUE(contains(msg, "c.yaml:1:7: name: must be lower case")) << msg;
  EXPECT_TRUE(contains(msg, "c.yaml:2:11: tags[1]: 'c' is not one of: a, b")) << msg;
  EXPECT_TRUE(contains(config::describe<Custom>(), "  name (str, default ok; lower case): lower case")) << config::describe<Custom>();
}

TEST(Config, OverridesCreateNestedKeysAndReplaceSequences) {
  YAML::Node root = config::load_yaml_file(write_file("seed: 5\nsizes: [1, 2, 3]\n"));
  const auto keys = config::apply_overrides(
      root, {"model.path=/data/m: v2 #1", "model.num_labels=4", "sizes=[8, 9]", "seed=6", "seed=7",
             "limit=null", "labels={0: none, 1: favor}", "model.dtype='bf16'"});
  EXPECT_EQ(keys, (std::set<std::string>{"model.path", "model.num_labels", "sizes", "seed", "limit", "labels",
                                         "model.dtype"}));
  EXPECT_TRUE(root["model"].IsMap());
  const RunOptions o = config::from_yaml<RunOptions>(root, "f.yaml", keys);
  EXPECT_EQ(o.model.path, "/data/m: v2 #1");  // plain text is not parsed as YAML
  EXPECT_EQ(o.model.num_labels, 4);
  EXPECT_EQ(o.model.dtype, "bf16");
  EXPECT_EQ(o.sizes, (std::vector<int>{8, 9}));
  EXPECT_EQ(o.seed, 7);  // the last one wins
  EXPECT_FALSE(o.limit.has_value());
  EXPECT_EQ(o.labels, (std::map<std::string, std::string>{{"0", "none"}, {"1", "favor"}}));
  // Deeper than anything in the file, and into an empty section.
  YAML::Node deep = config::load_yaml_file(write_file("model:\n"));
  config::apply_overrides(deep, {"a.b.c=1", "model.seed=2"});
  EXPECT_EQ(deep["a"]["b"]["c"].as<int>(), 1);
  EXPECT_EQ(deep["model"]["seed"].as<int>(), 2);
}

TEST(Config, ProblemsFromOverridesSayCommandLine) {
  std::string path;
  const std::string msg = run_error("seed: 3\nlr: 5\n", {"model.num_labels=0", "model.dtype=f64", "modle.path=x",
                                                         "sizes=[1, x]"},
                                    &path);
  EXPECT_EQ(msg, "5 configuration problems:\n"
                 "  " + path + ":2:5: lr: must be in [0, 1], got 5\n"
                 "  (command line): model.dtype: 'f64' is not one of: f32, bf16, f16\n"
                 "  (command line): model.num_labels: must be at least 1, got 0\n"
                 "  (command line): sizes[1]: expected an integer, got \"x\"\n"
                 "  (command line): modle: unknown key (did you mean 'model'?)");
  const std::string no_file = error_of([] { config::load<RunOptions>(std::nullopt, {"seed=x"}); });
  EXPECT_EQ(no_file, "1 configuration problem:\n  (command line): seed: expected an integer, got \"x\"");
}

TEST(Config, MalformedOverrides) {
  YAML::Node root(YAML::NodeType::Map);
  EXPECT_EQ(error_of([&] { config::apply_overrides(root, {"model.path"}); }),
            "override 'model.path' is not of the form key.path=value");
  EXPECT_EQ(error_of([&] { config::apply_overrides(root, {"=1"}); }), "override '=1' is not of the form key.path=value");
  EXPECT_EQ(error_of([&] { config::apply_overrides(root, {"a..b=1"}); }),
            "override 'a..b=1': empty key segment in 'a..b'");
  EXPECT_TRUE(contains(error_of([&] { config::apply_overrides(root, {"sizes=[1, 2"}); }),
                       "override 'sizes=[1, 2': the value is not valid YAML"));
  YAML::Node file = YAML::Load("seed: 3");
  EXPECT_EQ(error_of([&] { config::apply_overrides(file, {"seed.x=1"}); }),
            "override 'seed.x=1': 'seed' holds a value, not a map of keys");
}

TEST(Config, SetStringKeepsTextAsIs) {
  YAML::Node root(YAML::NodeType::Map);
  config::set_string(root, "model.path", "[not a list]");
  config::set_string(root, "model.dtype", "bf16");
  const RunOptions o = config::from_yaml<RunOptions>(root, "(command line)");
  EXPECT_EQ(o.model.path, "[not a list]");
  EXPECT_EQ(o.model.dtype, "bf16");
}

TEST(Config, MalformedYamlFile) {
  const std::string path = write_file("model:\n  path: x\n  dtype: [f32\nseed: 1\n");
  const std::string msg = error_of([&] { config::load_yaml_file(path); });
  EXPECT_TRUE(msg.rfind(path + ":", 0) == 0) << msg;
  EXPECT_TRUE(contains(msg, "YAML syntax error: end of sequence flow not found")) << msg;
  // The position yaml-cpp reports: where it gave up, in line 4.
  EXPECT_TRUE(contains(msg, path + ":4:5:")) << msg;
  const std::string tab = write_file("model:\n\tpath: x\n");
  EXPECT_TRUE(contains(error_of([&] { config::load_yaml_file(tab); }), tab + ":2:")) << tab;
  EXPECT_EQ(error_of([] { config::load_yaml_file("/nonexistent/x.yaml"); }, ErrorKind::kIo),
            "config file not found: /nonexistent/x.yaml");
  const std::string list = write_file("- a\n- b\n");
  EXPECT_EQ(error_of([&] { config::load_yaml_file(list); }),
            list + ":1:1: the top level must be a map of keys, got a list");
  const std::string two = write_file("a: 1\n---\nb: 2\n");
  EXPECT_TRUE(contains(error_of([&] { config::load_yaml_file(two); }), "holds 2 YAML documents"));
}

TEST(Config, ToYamlRoundTripsEveryType) {
  AllTypes a;
  a.b = true;
  a.i = std::numeric_limits<int>::min();
  a.i64 = std::numeric_limits<int64_t>::max();
  a.u64 = std::numeric_limits<uint64_t>::max();
  a.f = 0.1f;
  a.d = 1.0 / 3.0;
  a.s = "true";
  a.p = "/data/x: y #z";
  a.vi = {3, -1};
  a.vs = {"", "null", "~", "123", "1_000", "yes", "a: b", "- x", "[x", "multi\nline", " pad ", "ünïcode", "'q"};
  a.vvi = {{1, 2}, {}};
  a.vb = {false, true};
  a.oi = 0;
  a.os = "null";
  a.oitem = Item{"o", -0.0};
  a.mi = {{"1", 1}, {"true", 2}, {"k", 3}};
  a.mitem = {{"x", Item{"xn", 1e-300}}};
  a.items = {Item{"a", 1e20}, Item{"b", 2}};
  a.item = Item{"i", 0.5};
  const std::string text = config::to_yaml(a);
  const AllTypes back = config::from_yaml<AllTypes>(YAML::Load(text), "(round trip)");
  EXPECT_EQ(back, a) << text;
  EXPECT_EQ(config::to_yaml(back), text);
  // Defaults round-trip too (empty lists, maps and unset optionals included).
  const std::string defaults = config::to_yaml(AllTypes{});
  EXPECT_EQ(config::from_yaml<AllTypes>(YAML::Load(defaults), "(round trip)"), AllTypes{}) << defaults;
  EXPECT_TRUE(contains(defaults, "vi: []\n")) << defaults;
  EXPECT_TRUE(contains(defaults, "mi: {}\n")) << defaults;
  EXPECT_TRUE(contains(defaults, "oi: ~\n")) << defaults;
}

TEST(Config, ToYamlText) {
  RunOptions o;
  o.model.path = "models/x";
  o.limit = 5;
  o.labels = {{"0", "none"}};
  EXPECT_EQ(config::to_yaml(o),
            "model:\n"
            "  path: models/x\n"
            "  dtype: f32\n"
            "  num_labels: 2\n"
            "seed: 0\n"
            "lr: 1.0e-04\n"  // with a '.', so that PyYAML reads a float too
            "sizes: [1, 2]\n"
            "limit: 5\n"
            "labels:\n"
            "  \"0\": none\n"
            "flag: false");
  EXPECT_EQ(config::detail::format_float(0.1f), "0.1");
  EXPECT_EQ(config::detail::format_double(2.0), "2.0");
  EXPECT_EQ(config::detail::format_double(1e20), "1.0e+20");
  EXPECT_EQ(config::detail::format_double(-std::numeric_limits<double>::infinity()), "-.inf");
  AllTypes nan;
  nan.d = std::nan("");
  EXPECT_TRUE(std::isnan(config::from_yaml<AllTypes>(YAML::Load(config::to_yaml(nan)), "t").d));
}

TEST(Config, DescribeListsKeysTypesDefaultsAndHelp) {
  const std::string d = config::describe<RunOptions>();
  EXPECT_EQ(d,
            "model: the model\n"
            "  model.path (str, default \"\"): model folder or file\n"
            "  model.dtype (str, default f32; one of: f32, bf16, f16): compute dtype\n"
            "  model.num_labels (int, default 2; at least 1): classes of the classification head\n"
            "  seed (int, default 0): random seed\n"
            "  lr (float, default 1.0e-04; in [0, 1]): learning rate\n"
            "  sizes (list[int], default [1, 2]; at least 1): some sizes\n"
            "  limit (int or null, default ~; at most 100): optional cap\n"
            "  labels (map[str, str], default {}): label names\n"
            "  flag (bool, default false): a switch\n");
  const std::string all = config::describe<AllTypes>();
  EXPECT_TRUE(contains(all, "  u64 (uint, default 7): uint64\n")) << all;
  EXPECT_TRUE(contains(all, "  p (path, default /tmp/x): path\n")) << all;
  EXPECT_TRUE(contains(all, "items[]: list of sections (list of sections)\n  items[].name (str")) << all;
  EXPECT_TRUE(contains(all, "mitem.<name>: map of sections (named sections)\n")) << all;
  EXPECT_TRUE(contains(all, "oitem: optional section (optional section)\n  oitem.name (str, default \"\"): item name\n"))
      << all;
  // The defaults shown are those of the value passed in.
  RunOptions changed;
  changed.seed = 9;
  EXPECT_TRUE(contains(config::describe(changed), "  seed (int, default 9): random seed\n"));
}

}  // namespace
}  // namespace opine
