// AdamW: torch.optim.AdamW parity, gradients absent, state files (round trip, mismatches).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/adamw.h"
#include "core/error.h"
#include "test_util.h"

namespace opine {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

class AdamWFiles : public test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    fs::create_directories(dir_);
  }
};

at::Tensor leaf(const at::Tensor& t) { return t.detach().clone().set_requires_grad(true); }

at::Tensor from_list(const json& values, const std::vector<int64_t>& shape) {
  const std::vector<float> v = values.get<std::vector<float>>();
  return at::tensor(v, at::kFloat).reshape(shape).clone();
}

// Replays tests/reference/train_reference.py's run: same start, same gradients, same lr.
// Tolerance 1e-6 relative (1e-9 absolute): the update is torch's op for op with the same double
// scalars, so on the same kernels it is bit-identical; the margin (about 8 float32 ulps) only
// allows for a CPU whose vectorized lerp/addcdiv round differently (FMA or not).
TEST(AdamWParity, MatchesTorchAdamW) {
  const auto path = test::reference_dir() / "train" / "adamw.json";
  OPINE_REQUIRE_FILE(path);
  std::ifstream in(path);
  const json ref = json::parse(in);
  AdamWOptions o;
  o.lr = ref["options"]["lr"];
  o.beta1 = ref["options"]["beta1"];
  o.beta2 = ref["options"]["beta2"];
  o.eps = ref["options"]["eps"];
  o.weight_decay = ref["options"]["weight_decay"];
  std::vector<OptimGroup> groups;
  std::vector<std::vector<std::vector<int64_t>>> shapes;
  for (const auto& g : ref["groups"]) {
    OptimGroup group{g["name"], {}, g["lr_scale"], g["weight_decay"]};
    shapes.emplace_back();
    for (const auto& p : g["params"]) {
      shapes.back().push_back(p["shape"].get<std::vector<int64_t>>());
      group.params.push_back(leaf(from_list(p["init"], shapes.back().back())));
    }
    groups.push_back(group);
  }
  AdamW opt(groups, o);
  double max_rel = 0;
  bool identical = true;
  auto compare = [&](const at::Tensor& actual, const at::Tensor& expected, const std::string& what) {
    EXPECT_TRUE(at::allclose(actual, expected, 1e-6, 1e-9)) << what << "\n" << actual << "\n" << expected;
    identical = identical && at::equal(actual, expected);
    max_rel =
        std::max(max_rel, ((actual - expected).abs() / expected.abs().clamp_min(1e-9)).max().item<double>());
  };
  const auto& steps = ref["steps"];
  ASSERT_EQ(steps.size(), 5u);
  for (size_t s = 0; s < steps.size(); ++s) {
    for (size_t gi = 0; gi < groups.size(); ++gi) {
      const auto& grads = steps[s]["grads"][groups[gi].name];
      for (size_t i = 0; i < groups[gi].params.size(); ++i) {
        at::Tensor p = groups[gi].params[i];
        p.mutable_grad() = grads[i].is_null() ? at::Tensor() : from_list(grads[i], shapes[gi][i]);
      }
    }
    opt.step(steps[s]["multiplier"].get<double>());
    opt.zero_grad();
    for (size_t gi = 0; gi < groups.size(); ++gi)
      for (size_t i = 0; i < groups[gi].params.size(); ++i)
        compare(groups[gi].params[i], from_list(steps[s]["params"][groups[gi].name][i], shapes[gi][i]),
                "step " + std::to_string(s) + " " + groups[gi].name + "." + std::to_string(i));
  }
  EXPECT_EQ(opt.steps(), 5);
  for (size_t gi = 0; gi < groups.size(); ++gi) {
    for (size_t i = 0; i < groups[gi].params.size(); ++i) {
      const auto& f = ref["final"][groups[gi].name][i];
      const std::string what = groups[gi].name + "." + std::to_string(i);
      EXPECT_EQ(opt.param_steps(gi, i), f["step"].get<int64_t>()) << what;
      compare(opt.exp_avg(gi, i), from_list(f["exp_avg"], shapes[gi][i]), what + " exp_avg");
      compare(opt.exp_avg_sq(gi, i), from_list(f["exp_avg_sq"], shapes[gi][i]), what + " exp_avg_sq");
    }
  }
  // The state file is a safetensors file that Python's safetensors reads.
  const fs::path file = fs::temp_directory_path() / ("opine_adamw_parity_" + std::to_string(::getpid()));
  opt.save(file);
  const std::string command = std::string("\"") + OPINE_PYTHON_EXE +
                              "\" -c \"import sys; from safetensors.torch import load_file; "
                              "t = load_file(sys.argv[1]); sys.exit(0 if len(t) == 12 and "
                              "t['no_decay.0.step'].item() == 5 and t['scaled.0.step'].item() == 4 else 1)\" " +
                              file.string();
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  fs::remove(file);
  std::cout << "AdamW vs torch: max relative difference " << max_rel << (identical ? " (bit-identical)" : "")
            << "\n";
}

// Two groups of seeded parameters (a bf16 one among them) and a gradient maker.
struct Params {
  std::vector<OptimGroup> groups;
  explicit Params(uint64_t seed) {
    at::manual_seed(seed);
    groups.push_back({"main", {leaf(at::randn({4, 3})), leaf(at::randn({7}))}, 1.0, true});
    groups.push_back({"bias", {leaf(at::randn({5}).to(at::kBFloat16))}, 2.0, false});
  }
  // The same parameters' current values in fresh leaves (what a resumed run loads).
  std::vector<OptimGroup> copies() const {
    std::vector<OptimGroup> out = groups;
    for (OptimGroup& g : out)
      for (at::Tensor& p : g.params) p = leaf(p);
    return out;
  }
};
void set_grads(std::vector<OptimGroup>& groups, int step) {
  at::manual_seed(1000 + step);
  for (OptimGroup& g : groups)
    for (at::Tensor& p : g.params) p.mutable_grad() = at::randn(p.sizes()).to(p.scalar_type());
}
AdamWOptions test_options() {
  AdamWOptions o;
  o.lr = 1e-2;
  o.weight_decay = 0.1;
  return o;
}

TEST_F(AdamWFiles, SaveLoadContinueEqualsUninterrupted) {
  Params a(7);
  AdamW straight(a.groups, test_options());
  for (int s = 0; s < 3; ++s) {
    set_grads(a.groups, s);
    straight.step(1.0 - 0.1 * s);
  }
  const fs::path file = dir_ / "optimizer.safetensors";
  straight.save(file);
  std::vector<OptimGroup> b = a.copies();
  AdamW resumed(b, test_options());
  resumed.load(file);
  EXPECT_EQ(resumed.steps(), 3);
  for (int s = 3; s < 6; ++s) {
    set_grads(a.groups, s);
    set_grads(b, s);
    straight.step(1.0 - 0.1 * s);
    resumed.step(1.0 - 0.1 * s);
  }
  EXPECT_EQ(resumed.steps(), 6);
  for (size_t gi = 0; gi < b.size(); ++gi)
    for (size_t i = 0; i < b[gi].params.size(); ++i) {
      EXPECT_TRUE(at::equal(a.groups[gi].params[i], b[gi].params[i])) << gi << "." << i;
      EXPECT_TRUE(at::equal(straight.exp_avg_sq(gi, i), resumed.exp_avg_sq(gi, i))) << gi << "." << i;
      EXPECT_EQ(resumed.param_steps(gi, i), 6);
    }
  // No temporary left beside the file.
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_)) ++files;
  EXPECT_EQ(files, 1);
}

// The error names the tensor and both shapes, and the optimizer keeps its state.
TEST_F(AdamWFiles, LoadOfMismatchedStateNamesTheTensor) {
  Params a(1);
  AdamW saved(a.groups, test_options());
  set_grads(a.groups, 0);
  saved.step(1.0);
  const fs::path file = dir_ / "optimizer.safetensors";
  saved.save(file);

  auto load_error = [&](std::vector<OptimGroup> groups) -> std::string {
    AdamW other(groups, test_options());
    try {
      other.load(file);
    } catch (const Error& e) {
      EXPECT_EQ(other.steps(), 0);
      EXPECT_EQ(other.exp_avg_sq(0, 0).abs().sum().item<double>(), 0.0);
      return e.what();
    }
    return "no error";
  };
  {  // another shape
    std::vector<OptimGroup> g = a.copies();
    g[0].params[0] = leaf(at::zeros({3, 4}));
    const std::string m = load_error(g);
    EXPECT_NE(m.find("'main.0.exp_avg'"), std::string::npos) << m;
    EXPECT_NE(m.find("[4, 3]"), std::string::npos) << m;
    EXPECT_NE(m.find("[3, 4]"), std::string::npos) << m;
  }
  {  // another dtype
    std::vector<OptimGroup> g = a.copies();
    g[1].params[0] = leaf(at::zeros({5}));
    const std::string m = load_error(g);
    EXPECT_NE(m.find("'bias.0.exp_avg'"), std::string::npos) << m;
    EXPECT_NE(m.find("BF16"), std::string::npos) << m;
  }
  {  // one parameter more
    std::vector<OptimGroup> g = a.copies();
    g[0].params.push_back(leaf(at::zeros({2})));
    const std::string m = load_error(g);
    EXPECT_NE(m.find("'main.2.exp_avg'"), std::string::npos) << m;
  }
  {  // one parameter fewer
    std::vector<OptimGroup> g = a.copies();
    g[0].params.pop_back();
    const std::string m = load_error(g);
    EXPECT_NE(m.find("'main.1."), std::string::npos) << m;
  }
  {  // another group name
    std::vector<OptimGroup> g = a.copies();
    g[1].name = "norms";
    const std::string m = load_error(g);
    EXPECT_NE(m.find("'norms.0.exp_avg'"), std::string::npos) << m;
  }
}

TEST_F(AdamWFiles, RejectsFilesThatAreNotStates) {
  Params a(1);
  AdamW opt(a.groups, test_options());
  std::ofstream(dir_ / "junk") << "not a state file at all";
  try {
    opt.load(dir_ / "junk");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kFormat) << e.what();
  }
  try {
    opt.load(dir_ / "missing");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo) << e.what();
  }
  // Cut short: the header promises bytes the file does not have.
  opt.save(dir_ / "whole");
  std::ifstream in(dir_ / "whole", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(dir_ / "cut", std::ios::binary) << bytes.substr(0, bytes.size() - 10);
  EXPECT_THROW(opt.load(dir_ / "cut"), Error);
}

// As torch: a parameter without a gradient neither moves nor counts a step.
TEST(AdamW, SkipsParametersWithoutGradient) {
  Params a(3);
  AdamW opt(a.groups, test_options());
  const at::Tensor before = a.groups[0].params[1].detach().clone();
  set_grads(a.groups, 0);
  a.groups[0].params[1].mutable_grad() = at::Tensor();
  opt.step(1.0);
  EXPECT_TRUE(at::equal(a.groups[0].params[1], before));
  EXPECT_EQ(opt.param_steps(0, 1), 0);
  EXPECT_EQ(opt.param_steps(0, 0), 1);
  EXPECT_EQ(opt.steps(), 1);
  opt.zero_grad();
  for (const OptimGroup& g : a.groups)
    for (const at::Tensor& p : g.params) EXPECT_FALSE(p.grad().defined());
}

// Weight decay only where the group asks for it: a zero gradient then moves only decayed weights.
TEST(AdamW, DecayOnlyInDecayedGroups) {
  std::vector<OptimGroup> groups = {{"w", {leaf(at::ones({3}))}, 1.0, true},
                                    {"b", {leaf(at::ones({3}))}, 1.0, false}};
  AdamWOptions o = test_options();
  o.lr = 0.5;
  AdamW opt(groups, o);
  for (OptimGroup& g : groups) g.params[0].mutable_grad() = at::zeros({3});
  opt.step(1.0);
  EXPECT_TRUE(at::allclose(groups[0].params[0], at::full({3}, 1 - 0.5 * 0.1)));
  EXPECT_TRUE(at::equal(groups[1].params[0], at::ones({3})));
}

TEST(AdamW, StateBytesAndGroupChecks) {
  Params a(2);
  AdamW opt(a.groups, test_options());
  EXPECT_EQ(opt.state_bytes(), 2 * ((12 + 7) * 4 + 5 * 2));
  EXPECT_THROW(AdamW({{"x", {leaf(at::ones({1}))}}, {"x", {leaf(at::ones({1}))}}}, test_options()), Error);
  EXPECT_THROW(AdamW({{"", {leaf(at::ones({1}))}}}, test_options()), Error);
  EXPECT_THROW(AdamW({{"ints", {at::ones({1}, at::kLong)}}}, test_options()), Error);
}

}  // namespace
}  // namespace opine
