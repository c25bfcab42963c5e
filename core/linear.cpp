#include "core/linear.h"

#include <c10/core/GradMode.h>

#include <optional>

#include "core/error.h"

namespace opine {

namespace {
int64_t tensor_bytes(const at::Tensor& t) { return t.defined() ? int64_t(t.nbytes()) : 0; }
}  // namespace

at::Tensor DenseLinear::forward(const at::Tensor& x) const {
  return at::linear(x, weight_, bias_.defined() ? std::optional<at::Tensor>(bias_) : std::nullopt);
}

void DenseLinear::assign_dense_weight(const at::Tensor& weight) {
  OPINE_ASSERT(weight.sizes() == weight_.sizes(), "weight ", weight.sizes(), " does not fit ", weight_.sizes());
  c10::NoGradGuard no_grad;
  weight_.copy_(weight);
}

int64_t DenseLinear::resident_bytes() const { return tensor_bytes(weight_) + tensor_bytes(bias_); }

void DenseLinear::to(at::Device device, at::ScalarType dtype) {
  weight_ = weight_.to(device, dtype);
  if (bias_.defined()) bias_ = bias_.to(device, dtype);
}

at::Tensor Linear::forward(const at::Tensor& x) const {
  if (op) return op->forward(x);
  OPINE_ASSERT(weight.defined(), "linear layer has neither a weight nor an op");
  return at::linear(x, weight, bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt);
}

int64_t Linear::in_features() const { return op ? op->in_features() : weight.size(1); }
int64_t Linear::out_features() const { return op ? op->out_features() : weight.size(0); }

std::shared_ptr<LinearOp> Linear::as_op() const {
  if (op) return op;
  OPINE_ASSERT(weight.defined(), "linear layer has neither a weight nor an op");
  return std::make_shared<DenseLinear>(weight, bias);
}

void Linear::install(std::shared_ptr<LinearOp> new_op) {
  OPINE_ASSERT(new_op, "installing an empty op");
  OPINE_ASSERT(!weight.defined() || (new_op->in_features() == weight.size(1) &&
                                     new_op->out_features() == weight.size(0)),
               "op shape does not match the layer's weight");
  op = std::move(new_op);
  weight = at::Tensor();
  bias = at::Tensor();
}

int64_t Linear::resident_bytes() const {
  return op ? op->resident_bytes() : tensor_bytes(weight) + tensor_bytes(bias);
}

}  // namespace opine

namespace opine {

namespace {
void add_slot(std::vector<TensorSlot>& slots, std::string name, at::Tensor& t) {
  if (t.defined()) slots.push_back({std::move(name), &t});
}
}  // namespace

std::vector<TensorSlot> DenseLinear::tensor_slots() {
  std::vector<TensorSlot> slots;
  add_slot(slots, "weight", weight_);
  add_slot(slots, "bias", bias_);
  return slots;
}

std::vector<TensorSlot> Linear::tensor_slots() {
  if (op) return op->tensor_slots();
  std::vector<TensorSlot> slots;
  add_slot(slots, "weight", weight);
  add_slot(slots, "bias", bias);
  return slots;
}

}  // namespace opine
