#include "core/adamw.h"

#include <c10/core/GradMode.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/safetensors.h"

namespace opine {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kFormat = "opine.adamw";
constexpr const char* kVersion = "1";

}  // namespace

AdamW::AdamW(std::vector<OptimGroup> groups, AdamWOptions options)
    : groups_(std::move(groups)), options_(options) {
  std::set<std::string> names;
  for (const OptimGroup& g : groups_) {
    OPINE_CHECK(!g.name.empty(), "an optimizer group needs a name");
    OPINE_CHECK(g.name.find('.') == std::string::npos, "optimizer group name '", g.name,
                "' has a '.', which separates the parts of state names");
    OPINE_CHECK(names.insert(g.name).second, "two optimizer groups are named '", g.name, "'");
    OPINE_CHECK(g.lr_scale >= 0, "optimizer group '", g.name, "': lr_scale must be at least 0, got ",
                g.lr_scale);
    std::vector<State>& states = states_.emplace_back();
    for (size_t i = 0; i < g.params.size(); ++i) {
      const at::Tensor& p = g.params[i];
      OPINE_CHECK(p.defined() && at::isFloatingType(p.scalar_type()), "optimizer group '", g.name,
                  "' parameter ", i, " is not a floating-point tensor");
      State& s = states.emplace_back();
      s.exp_avg = at::zeros_like(p, at::MemoryFormat::Preserve);
      s.exp_avg_sq = at::zeros_like(p, at::MemoryFormat::Preserve);
    }
  }
}

void AdamW::step(double lr_multiplier) {
  c10::NoGradGuard no_grad;
  const double beta1 = options_.beta1, beta2 = options_.beta2, eps = options_.eps;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const OptimGroup& g = groups_[gi];
    const double lr = options_.lr * g.lr_scale * lr_multiplier;
    const double weight_decay = g.weight_decay ? options_.weight_decay : 0.0;
    for (size_t i = 0; i < g.params.size(); ++i) {
      at::Tensor p = g.params[i];
      const at::Tensor& grad = p.grad();
      if (!grad.defined()) continue;
      OPINE_ASSERT(grad.sizes() == p.sizes(), "gradient of ", g.name, ".", i, " has shape ", grad.sizes(),
                   ", the parameter ", p.sizes());
      State& s = states_[gi][i];
      s.step += 1;
      // Term for term torch/optim/adam.py _single_tensor_adam (decoupled_weight_decay, not
      // capturable): the same ops with the same scalars, computed in double as Python does.
      if (weight_decay != 0) p.mul_(1 - lr * weight_decay);
      s.exp_avg.lerp_(grad, 1 - beta1);
      s.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
      const double step = static_cast<double>(s.step);
      const double bias_correction1 = 1 - std::pow(beta1, step);
      const double bias_correction2 = 1 - std::pow(beta2, step);
      const double step_size = lr / bias_correction1;
      const double bias_correction2_sqrt = std::pow(bias_correction2, 0.5);  // Python's x ** 0.5
      const at::Tensor denom = (s.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps);
      p.addcdiv_(s.exp_avg, denom, -step_size);
    }
  }
  ++steps_;
}

void AdamW::zero_grad() {
  for (OptimGroup& g : groups_)
    for (at::Tensor& p : g.params)
      if (p.grad().defined()) p.mutable_grad() = at::Tensor();
}

const AdamW::State& AdamW::state(size_t group, size_t index) const {
  OPINE_ASSERT(group < states_.size() && index < states_[group].size(), "no optimizer state ", group, ".",
               index);
  return states_[group][index];
}
const at::Tensor& AdamW::exp_avg(size_t group, size_t index) const { return state(group, index).exp_avg; }
const at::Tensor& AdamW::exp_avg_sq(size_t group, size_t index) const {
  return state(group, index).exp_avg_sq;
}
int64_t AdamW::param_steps(size_t group, size_t index) const { return state(group, index).step; }

int64_t AdamW::state_bytes() const {
  int64_t bytes = 0;
  for (const auto& states : states_)
    for (const State& s : states) bytes += s.exp_avg.nbytes() + s.exp_avg_sq.nbytes();
  return static_cast<int64_t>(bytes);
}

void AdamW::save(const fs::path& file) const {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    for (size_t i = 0; i < states_[gi].size(); ++i) {
      const State& s = states_[gi][i];
      const std::string prefix = groups_[gi].name + "." + std::to_string(i) + ".";
      tensors.emplace_back(prefix + "exp_avg", s.exp_avg);
      tensors.emplace_back(prefix + "exp_avg_sq", s.exp_avg_sq);
      tensors.emplace_back(prefix + "step", at::scalar_tensor(s.step, at::kLong));
    }
  }
  save_safetensors(file.string(), tensors,
                   {{"format", kFormat}, {"version", kVersion}, {"steps", std::to_string(steps_)}});
}

void AdamW::load(const fs::path& file) {
  const std::string where = "optimizer state " + file.string();
  OPINE_CHECK_KIND(fs::exists(file), ErrorKind::kIo, "cannot open ", where);
  const SafetensorsFile f = SafetensorsFile::open(file.string());
  const std::map<std::string, std::string>& meta = f.metadata();
  auto meta_value = [&](const char* key) { return meta.count(key) ? meta.at(key) : std::string(); };
  OPINE_CHECK_FORMAT(meta_value("format") == kFormat, where,
                     " is not an opine AdamW state (metadata format is not ", kFormat, ")");
  OPINE_CHECK_FORMAT(meta_value("version") == kVersion, where, ": state version ", meta_value("version"),
                     ", this opine reads ", kVersion);
  int64_t steps = 0;
  try {
    steps = std::stoll(meta_value("steps"));
  } catch (const std::exception&) {
    OPINE_CHECK_FORMAT(false, where, ": metadata 'steps' is not a number");
  }

  // Every tensor checked (present, dtype, shape) before any is copied, so a mismatch leaves the
  // optimizer as it was.
  std::vector<std::pair<at::Tensor, at::Tensor>> plan;  // (target, stored)
  std::vector<std::vector<at::Tensor>> step_values(groups_.size());
  std::set<std::string> known;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    for (size_t i = 0; i < states_[gi].size(); ++i) {
      const std::string prefix = groups_[gi].name + "." + std::to_string(i) + ".";
      const at::Tensor& p = groups_[gi].params[i];
      at::Tensor step = at::zeros({}, at::kLong);
      step_values[gi].push_back(step);
      const std::pair<std::string, at::Tensor> wanted[] = {{prefix + "exp_avg", states_[gi][i].exp_avg},
                                                           {prefix + "exp_avg_sq", states_[gi][i].exp_avg_sq},
                                                           {prefix + "step", step}};
      for (const auto& [name, target] : wanted) {
        known.insert(name);
        OPINE_CHECK(f.entries().count(name), where, " has no tensor '", name, "' (parameter ", i,
                    " of group '", groups_[gi].name, "', shape ", shape_text(p.sizes().vec()),
                    "): was it saved for other parameters?");
        const SafetensorsFile::Entry& e = f.entries().at(name);
        OPINE_CHECK(e.dtype == target.scalar_type(), where, ": tensor '", name, "' is ", e.dtype_name,
                    ", the parameter needs ", safetensors_dtype_name(target.scalar_type()));
        OPINE_CHECK(e.shape == target.sizes().vec(), where, ": tensor '", name, "' has shape ",
                    shape_text(e.shape), ", the parameter needs ", shape_text(target.sizes().vec()));
        plan.emplace_back(target, f.tensor(name));
      }
    }
  }
  for (const auto& [name, entry] : f.entries())
    OPINE_CHECK(known.count(name), where, " holds tensor '", name,
                "', which no parameter of this optimizer has: was it saved for other parameters?");

  c10::NoGradGuard no_grad;
  for (auto& [target, stored] : plan) target.copy_(stored);
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    for (size_t i = 0; i < states_[gi].size(); ++i) states_[gi][i].step = step_values[gi][i].item<int64_t>();
  steps_ = steps;
}

}  // namespace opine
