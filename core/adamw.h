// AdamW over named parameter groups: torch.optim.AdamW's single-tensor update (foreach=False,
// amsgrad=False), op for op, so a run matches PyTorch's to the last bit on the same kernels:
//
//   step += 1
//   param *= 1 - lr * weight_decay                       (decoupled decay; groups may opt out)
//   exp_avg.lerp_(grad, 1 - beta1)
//   exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad^2
//   denom = sqrt(exp_avg_sq) / sqrt(1 - beta2^step) + eps
//   param -= lr / (1 - beta1^step) * exp_avg / denom
//
// with lr = options.lr * group.lr_scale * the schedule's multiplier. A parameter without a
// gradient is skipped, its step count unchanged, as torch does. The states (exp_avg,
// exp_avg_sq) have the parameter's dtype and device, as torch's; they are allocated at
// construction (all zeros, step 0: what torch creates on the first step), so state_bytes() is
// the full footprint from the start.
//
// State files (save/load) are safetensors files, readable by Python's safetensors:
//   "<group>.<i>.exp_avg", "<group>.<i>.exp_avg_sq"  the moments, in the parameter's dtype
//   "<group>.<i>.step"                               int64 scalar, this parameter's step count
//   metadata {"format": "opine.adamw", "version": "1", "steps": "<optimizer steps>"}
// written atomically (temp file + rename). A sharded optimizer saves one file per rank.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/config.h"

namespace opine {

struct AdamWOptions {
  double lr = 2e-4;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;

  template <class V>
  void visit(V& v) {
    v("lr", lr, "peak learning rate", config::at_least(0.0));
    v("beta1", beta1, "decay of the first moment", config::in_range(0.0, 1.0));
    v("beta2", beta2, "decay of the second moment", config::in_range(0.0, 1.0));
    v("eps", eps, "added to the root of the second moment", config::at_least(0.0));
    v("weight_decay", weight_decay, "decoupled weight decay (groups may opt out)", config::at_least(0.0));
  }
};

struct OptimGroup {
  std::string name;
  std::vector<at::Tensor> params;
  double lr_scale = 1.0;     // this group's lr = options.lr * lr_scale (LoRA+ B matrices, heads)
  bool weight_decay = true;  // false: no decay (biases, norms)
};

class AdamW {
 public:
  // Group names must be unique and non-empty (they name the states in files); a parameter must
  // be a floating-point tensor.
  AdamW(std::vector<OptimGroup> groups, AdamWOptions options);

  // One update of every parameter that has a gradient, at lr = options.lr * lr_scale * lr_multiplier.
  void step(double lr_multiplier);
  // Drops the gradients (sets them to none, torch's default).
  void zero_grad();
  // Optimizer steps taken (calls to step()).
  int64_t steps() const { return steps_; }

  const std::vector<OptimGroup>& groups() const { return groups_; }
  const AdamWOptions& options() const { return options_; }
  // State of parameter `index` of group `group` (for tests and inspection).
  const at::Tensor& exp_avg(size_t group, size_t index) const;
  const at::Tensor& exp_avg_sq(size_t group, size_t index) const;
  int64_t param_steps(size_t group, size_t index) const;

  // Bytes held by the states (the two moments of every parameter).
  int64_t state_bytes() const;

  void save(const std::filesystem::path& file) const;
  // Reads a file save() wrote for the same groups; a missing or extra tensor, or one of another
  // shape or dtype, is an opine::Error naming it, and leaves this optimizer unchanged.
  void load(const std::filesystem::path& file);

 private:
  struct State {
    at::Tensor exp_avg, exp_avg_sq;
    int64_t step = 0;
  };
  const State& state(size_t group, size_t index) const;

  std::vector<OptimGroup> groups_;
  AdamWOptions options_;
  std::vector<std::vector<State>> states_;  // [group][param]
  int64_t steps_ = 0;
};

}  // namespace opine
