// A LoRA layer over any base linear op (dense or 4-bit): y = base(x) + scaling * B(A(dropout(x))),
// or DoRA's magnitude-rescaled form, as PEFT's lora.Linear computes it. The adapters are float32
// (PEFT keeps them so when the base is half precision); the base stays frozen.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/linear.h"

namespace opine::peft {

struct LoraLayerSpec {
  int r = 8;
  double scaling = 1.0;  // alpha / r or alpha / sqrt(r)
  double dropout = 0.0;
  bool dora = false;
  at::ScalarType dtype = at::kFloat;  // the adapters' dtype: float32 as PEFT; double for gradient checks
};

class LoraLinear final : public LinearOp {
 public:
  // A [r, in] and B [out, r] start at zero; initialise them with init_kaiming / init_gaussian, or
  // set them from a file. With DoRA call init_magnitude() once A and B hold their values.
  LoraLinear(std::shared_ptr<LinearOp> base, LoraLayerSpec spec);

  at::Tensor forward(const at::Tensor& x) const override;
  int64_t in_features() const override { return base_->in_features(); }
  int64_t out_features() const override { return base_->out_features(); }
  // The weight this layer computes with, adapters merged in (whether or not merge() ran).
  at::Tensor dense_weight(at::ScalarType dtype) const override;
  at::Tensor bias() const override { return base_->bias(); }
  // Replaces the base weight (while unmerged; merged, it would mix with the adapters).
  void assign_dense_weight(const at::Tensor& weight) override;
  int64_t resident_bytes() const override;
  // lora_A.weight, lora_B.weight and, with DoRA, lora_magnitude_vector (PEFT's names).
  std::vector<std::pair<std::string, at::Tensor>> trainable() const override;
  // The base's slots under "base_layer.", then lora_A.weight, lora_B.weight and the magnitude.
  std::vector<TensorSlot> tensor_slots() override;
  void to(at::Device device, at::ScalarType dtype) override;
  std::string describe() const override;

  // PEFT's initialisations. They draw from `gen` exactly as PEFT draws from torch's global
  // generator when it creates the layer (nn.Linear's own init of A, then of B, then A again), so
  // the same seed gives the same A as torch.manual_seed(seed) + get_peft_model.
  // `mode` is PEFT's init_lora_weights: "true" (A Kaiming-uniform, B = 0), "gaussian"
  // (A ~ N(0, 1/r), B = 0) or "false" (both keep nn.Linear's default init: B is not zero).
  void initialize(const std::string& mode, at::Generator& gen);
  // DoRA's magnitude: the row norms of W + scaling * B A (PEFT does this when the layer is made).
  void init_magnitude();

  // Adds the update to the base weight (base->assign_dense_weight; a 4-bit base re-quantizes, so
  // it is lossy there as in PEFT) and computes with the base alone; unmerge() subtracts it again.
  void merge();
  void unmerge();
  bool merged() const { return merged_; }
  // Dropout applies only while training.
  void set_training(bool training) { training_ = training; }
  bool training() const { return training_; }

  const std::shared_ptr<LinearOp>& base() const { return base_; }
  const LoraLayerSpec& spec() const { return spec_; }
  // The adapter's tensors (leaves that require grad): assign values under at::NoGradGuard.
  at::Tensor& lora_A() { return a_; }
  at::Tensor& lora_B() { return b_; }
  at::Tensor& magnitude() { return magnitude_; }  // undefined without DoRA
  // scaling * B A [out, in] in float32.
  at::Tensor delta_weight() const;

 private:
  at::Tensor dora_weight_norm(const at::Tensor& weight, const at::Tensor& lora_weight) const;

  std::shared_ptr<LinearOp> base_;
  LoraLayerSpec spec_;
  at::Tensor a_, b_, magnitude_;
  at::Tensor merged_norm_;  // DoRA: the weight norm used by merge(), needed to unmerge
  bool merged_ = false;
  bool training_ = false;
};

}  // namespace opine::peft
