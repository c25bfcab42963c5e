// The linear-layer interface shared by models/, quant/ and peft/.
//
// A model keeps each projection as a `Linear`: a dense weight (and bias) that loaders fill by name,
// or an installed `LinearOp` that owns the base and computes the layer instead. quant/ installs a
// 4-bit op (QuantLinear); peft/ wraps whatever is there (dense or 4-bit) with adapters. Models
// never need to know which. Load weights first, then install ops.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace opine {

// A tensor an object holds, by name, reachable for reassignment: sharding swaps a layer's weights
// for views of a gathered buffer and back (core/shard.h). A slot trains when its tensor requires grad.
struct TensorSlot {
  std::string name;
  at::Tensor* tensor;
};

class LinearOp {
 public:
  virtual ~LinearOp() = default;
  // y = x W^T (+ b) for x [..., in_features], in x's dtype.
  virtual at::Tensor forward(const at::Tensor& x) const = 0;
  virtual int64_t in_features() const = 0;
  virtual int64_t out_features() const = 0;
  // The effective weight [out, in] as a dense tensor in `dtype` (dequantized, adapters merged
  // where the op merges them); for export and inspection, not for the hot path.
  virtual at::Tensor dense_weight(at::ScalarType dtype) const = 0;
  virtual at::Tensor bias() const { return {}; }
  // Replaces the base weight by `weight` [out, in] (how adapters merge into it): a dense op copies
  // it in place, a 4-bit op quantizes it again (lossy, as PEFT's merge into bitsandbytes layers).
  virtual void assign_dense_weight(const at::Tensor& weight) = 0;
  // Bytes this op keeps resident for the frozen base (weights and all their scales), and for any
  // trainable extras it adds.
  virtual int64_t resident_bytes() const = 0;
  // Tensors this op adds that train, by their name relative to the layer (e.g. "lora_A.weight").
  virtual std::vector<std::pair<std::string, at::Tensor>> trainable() const { return {}; }
  // Every tensor the op computes with (frozen and trainable), by name relative to the layer, as
  // reassignable slots; undefined optional tensors are left out. Shapes and dtypes must not change.
  virtual std::vector<TensorSlot> tensor_slots() = 0;
  // Moves to `device`; dense floating-point parts take `dtype` (4-bit parts keep their storage
  // and compute in it; adapters may keep a wider dtype, as PEFT keeps them in float32).
  virtual void to(at::Device device, at::ScalarType dtype) = 0;
  // What it is, for logs: "dense", "nf4 (block 64, double quant)", "lora r=8 over nf4", ...
  virtual std::string describe() const = 0;
};

// The plain layer: the dense weight and optional bias of a Linear, as an op, so wrappers can
// treat dense and quantized bases alike. Shares storage with the tensors it is given.
class DenseLinear final : public LinearOp {
 public:
  DenseLinear(at::Tensor weight, at::Tensor bias) : weight_(std::move(weight)), bias_(std::move(bias)) {}
  at::Tensor forward(const at::Tensor& x) const override;
  int64_t in_features() const override { return weight_.size(1); }
  int64_t out_features() const override { return weight_.size(0); }
  at::Tensor dense_weight(at::ScalarType dtype) const override { return weight_.to(dtype); }
  at::Tensor bias() const override { return bias_; }
  void assign_dense_weight(const at::Tensor& weight) override;
  int64_t resident_bytes() const override;
  void to(at::Device device, at::ScalarType dtype) override;
  std::string describe() const override { return "dense"; }
  std::vector<TensorSlot> tensor_slots() override;
  const at::Tensor& weight() const { return weight_; }

 private:
  at::Tensor weight_, bias_;
};

// One projection of a model. Loaders fill `weight` and `bias` by Hugging Face name; once an op is
// installed it owns the base and both are released.
struct Linear {
  at::Tensor weight;  // [out, in] like torch.nn.Linear; undefined once an op is installed
  at::Tensor bias;    // [out] or undefined
  std::shared_ptr<LinearOp> op;

  // The op if there is one, else a DenseLinear over weight and bias.
  std::shared_ptr<LinearOp> as_op() const;
  // Makes `new_op` compute this layer (it must already hold the base, e.g. from as_op()).
  void install(std::shared_ptr<LinearOp> new_op);

  at::Tensor forward(const at::Tensor& x) const;
  int64_t in_features() const;
  int64_t out_features() const;
  int64_t resident_bytes() const;
  // The op's slots, or "weight" and "bias" (names relative to the module).
  std::vector<TensorSlot> tensor_slots();
};

// A model's projection by its Hugging Face module name ("model.layers.0.self_attn.q_proj").
struct LinearSlotRef {
  std::string name;
  Linear* linear;
};

}  // namespace opine
