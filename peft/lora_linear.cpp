#include "peft/lora_linear.h"

#include <ATen/core/grad_mode.h>

#include <cmath>
#include <optional>

#include "core/error.h"
#include "peft/lora_dropout.h"

namespace opine::peft {

namespace {

int64_t bytes(const at::Tensor& t) { return t.defined() ? int64_t(t.nbytes()) : 0; }

// torch.nn.init.kaiming_uniform_(t, a=sqrt(5)) with the same arithmetic, so the bound is the
// same double and the draws the same numbers.
void kaiming_uniform(at::Tensor& t, at::Generator& gen) {
  const double a = std::sqrt(5.0);
  const double gain = std::sqrt(2.0 / (1 + std::pow(a, 2)));
  const double stddev = gain / std::sqrt(double(t.size(1)));
  const double bound = std::sqrt(3.0) * stddev;
  t.uniform_(-bound, bound, gen);
}

at::Tensor leaf(at::Tensor t) { return t.detach().set_requires_grad(true); }

}  // namespace

LoraLinear::LoraLinear(std::shared_ptr<LinearOp> base, LoraLayerSpec spec) : base_(std::move(base)), spec_(spec) {
  OPINE_ASSERT(base_, "LoRA over an empty base op");
  OPINE_CHECK(spec_.r >= 1, "LoRA rank must be positive, got ", spec_.r);
  // Adapters live on the base's device, in float32 (PEFT's autocast_adapter_dtype).
  const std::vector<TensorSlot> base_slots = base_->tensor_slots();
  const at::Device device = base_slots.empty() ? at::Device(at::kCPU) : base_slots.front().tensor->device();
  const auto o = at::TensorOptions().dtype(spec_.dtype).device(device);
  a_ = leaf(at::zeros({spec_.r, in_features()}, o));
  b_ = leaf(at::zeros({out_features(), spec_.r}, o));
  if (spec_.dora) magnitude_ = leaf(at::ones({out_features()}, o));
}

void LoraLinear::initialize(const std::string& mode, at::Generator& gen) {
  at::NoGradGuard no_grad;
  // Drawn on the CPU in the order PEFT draws: nn.Linear(in, r) and nn.Linear(r, out) initialise
  // themselves, then reset_lora_parameters draws A again.
  // float32 as torch draws them, whatever the adapters' dtype.
  at::Tensor a = at::empty({spec_.r, in_features()}, at::kFloat);
  at::Tensor b = at::empty({out_features(), spec_.r}, at::kFloat);
  kaiming_uniform(a, gen);
  kaiming_uniform(b, gen);
  if (mode == "true") {
    kaiming_uniform(a, gen);
    b.zero_();
  } else if (mode == "gaussian") {
    a.normal_(0.0, 1.0 / spec_.r, gen);
    b.zero_();
  } else {
    OPINE_CHECK(mode == "false", "unknown init_lora_weights '", mode, "' (true, gaussian or false)");
  }
  a_.copy_(a);
  b_.copy_(b);
}

at::Tensor LoraLinear::delta_weight() const { return at::matmul(b_, a_) * spec_.scaling; }

at::Tensor LoraLinear::dora_weight_norm(const at::Tensor& weight, const at::Tensor& lora_weight) const {
  // Row norms of the adapted weight, a constant for autograd (DoRA paper, section 4.3).
  return at::linalg_vector_norm(weight + spec_.scaling * lora_weight.detach(), 2, {1}).to(weight.scalar_type()).detach();
}

void LoraLinear::init_magnitude() {
  OPINE_ASSERT(spec_.dora, "init_magnitude without DoRA");
  at::NoGradGuard no_grad;
  magnitude_.copy_(dora_weight_norm(base_->dense_weight(spec_.dtype), at::matmul(b_, a_)));
}

at::Tensor LoraLinear::forward(const at::Tensor& x) const {
  at::Tensor result = base_->forward(x);
  if (merged_) return result;
  const at::ScalarType out_dtype = result.scalar_type();
  const at::Tensor xa = x.to(a_.scalar_type());
  const bool drop = training_ && spec_.dropout > 0;
  // Float32 on the CPU: one function adds the update into the base output, keeping neither a
  // dropout mask nor a dropped copy of x for backward.
  if (!spec_.dora && lora_update_into_applies(result, xa, a_, b_))
    return lora_update_into(result, xa, a_, b_, drop ? spec_.dropout : 0.0, spec_.scaling);
  const at::Tensor xd = drop ? at::dropout(xa, spec_.dropout, /*train=*/true) : xa;
  const at::Tensor lora = at::linear(at::linear(xd, a_), b_);
  if (!spec_.dora) return (result + lora * spec_.scaling).to(out_dtype);

  // DoRA: m / ||W + s B A|| rescales base and update alike; the base output is reused unless
  // dropout changed the input the update sees.
  const at::Tensor weight = base_->dense_weight(xa.scalar_type());
  const at::Tensor norm = dora_weight_norm(weight, at::matmul(b_, a_).to(xa.scalar_type()));
  const at::Tensor scale = (magnitude_ / norm).view({1, -1});
  at::Tensor base_result;
  if (!drop) {
    base_result = result;
    const at::Tensor bias = base_->bias();
    if (bias.defined()) base_result = base_result - bias;
  } else {
    base_result = at::linear(xd, weight);
  }
  return (result + (scale - 1) * base_result + scale * lora * spec_.scaling).to(out_dtype);
}

at::Tensor LoraLinear::dense_weight(at::ScalarType dtype) const {
  at::NoGradGuard no_grad;
  at::Tensor w = base_->dense_weight(spec_.dtype);
  if (merged_) return w.to(dtype);
  const at::Tensor delta = delta_weight();
  if (!spec_.dora) return (w + delta).to(dtype);
  const at::Tensor norm = at::linalg_vector_norm(w + delta, 2, {1});
  return ((magnitude_ / norm).view({-1, 1}) * (w + delta)).to(dtype);
}

void LoraLinear::assign_dense_weight(const at::Tensor& weight) {
  OPINE_CHECK(!merged_, "cannot replace the base weight of a merged LoRA layer; unmerge first");
  base_->assign_dense_weight(weight);
}

void LoraLinear::merge() {
  if (merged_) return;
  at::NoGradGuard no_grad;
  const at::Tensor w = base_->dense_weight(spec_.dtype);
  const at::Tensor delta = delta_weight();
  at::Tensor merged = w + delta;
  if (spec_.dora) {
    // The norm of the unmerged weight, kept: unmerging cannot recompute it from the merged one.
    merged_norm_ = at::linalg_vector_norm(merged, 2, {1});
    merged = (magnitude_ / merged_norm_).view({-1, 1}) * merged;
  }
  OPINE_CHECK(at::isfinite(merged).all().item<bool>(), "merging a LoRA adapter gives non-finite weights");
  base_->assign_dense_weight(merged);
  merged_ = true;
}

void LoraLinear::unmerge() {
  if (!merged_) return;
  at::NoGradGuard no_grad;
  at::Tensor w = base_->dense_weight(spec_.dtype);
  if (spec_.dora) w = w / (magnitude_ / merged_norm_).view({-1, 1});
  base_->assign_dense_weight(w - delta_weight());
  merged_norm_ = at::Tensor();
  merged_ = false;
}

int64_t LoraLinear::resident_bytes() const {
  return base_->resident_bytes() + bytes(a_) + bytes(b_) + bytes(magnitude_) + bytes(merged_norm_);
}

std::vector<std::pair<std::string, at::Tensor>> LoraLinear::trainable() const {
  std::vector<std::pair<std::string, at::Tensor>> t = {{"lora_A.weight", a_}, {"lora_B.weight", b_}};
  if (spec_.dora) t.emplace_back("lora_magnitude_vector", magnitude_);
  return t;
}

std::vector<TensorSlot> LoraLinear::tensor_slots() {
  std::vector<TensorSlot> slots;
  for (TensorSlot& s : base_->tensor_slots()) slots.push_back({"base_layer." + s.name, s.tensor});
  slots.push_back({"lora_A.weight", &a_});
  slots.push_back({"lora_B.weight", &b_});
  if (magnitude_.defined()) slots.push_back({"lora_magnitude_vector", &magnitude_});
  return slots;
}

void LoraLinear::to(at::Device device, at::ScalarType dtype) {
  base_->to(device, dtype);
  // The adapters stay float32 and stay leaves.
  a_ = leaf(a_.to(device));
  b_ = leaf(b_.to(device));
  if (magnitude_.defined()) magnitude_ = leaf(magnitude_.to(device));
  if (merged_norm_.defined()) merged_norm_ = merged_norm_.to(device);
}

std::string LoraLinear::describe() const {
  std::string s = std::string(spec_.dora ? "dora" : "lora") + " r=" + std::to_string(spec_.r) + " over " +
                  base_->describe();
  return merged_ ? s + " (merged)" : s;
}

}  // namespace opine::peft
