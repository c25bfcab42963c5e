// A frozen 4-bit linear layer (QLoRA's base): the weight stays packed; each forward dequantizes
// it into a per-thread buffer reused by every layer and runs a high-precision matmul, or, for a
// handful of rows without gradients, runs the fused dequantize-matmul kernel. Gradients flow to
// the input (never to the weight), recomputing the dequantized weight in backward as bnb does.
#pragma once

#include <memory>

#include "core/linear.h"
#include "quant/format.h"

namespace opine::quant {

class QuantLinear final : public LinearOp {
 public:
  // `compute_dtype` is the dtype of the matmul: inputs are cast to it, outputs back (as bnb's
  // Linear4bit does with bnb_4bit_compute_dtype).
  QuantLinear(QuantizedTensor weight, at::Tensor bias, QuantConfig config, at::ScalarType compute_dtype);

  at::Tensor forward(const at::Tensor& x) const override;
  int64_t in_features() const override { return weight_.shape[1]; }
  int64_t out_features() const override { return weight_.shape[0]; }
  at::Tensor dense_weight(at::ScalarType dtype) const override { return dequantize(weight_, dtype); }
  at::Tensor bias() const override { return bias_; }
  // Quantizes `weight` again (lossy, as PEFT's merge into a bnb layer).
  void assign_dense_weight(const at::Tensor& weight) override;
  int64_t resident_bytes() const override;
  void to(at::Device device, at::ScalarType dtype) override;
  std::string describe() const override { return config_.describe(); }
  // "weight" (the packed codes), "weight.absmax", "weight.nested_absmax" and "bias". The double
  // quantization offset is a float beside them: see offset()/set_offset().
  std::vector<TensorSlot> tensor_slots() override;
  float offset() const { return weight_.offset; }
  void set_offset(float offset) { weight_.offset = offset; }

  const QuantizedTensor& weight() const { return weight_; }
  const QuantConfig& config() const { return config_; }
  at::ScalarType compute_dtype() const { return compute_dtype_; }
  // The dequantized weight [out, in] in `dtype`, in the calling thread's reused buffer: valid
  // until the next call from this thread (for the matmul right after it).
  at::Tensor dequantize_to_buffer(at::ScalarType dtype) const;
  // Rows up to which the fused kernel is used on the CPU (bench/bench_quant measures the choice).
  static constexpr int64_t kFusedRowsCpu = 8;
  static constexpr int64_t kFusedRowsCuda = 8;

 private:

  QuantizedTensor weight_;
  at::Tensor bias_;
  QuantConfig config_;
  at::ScalarType compute_dtype_;
};

// Quantizes the base of `linear` (its dense weight, or a dense op's) into a QuantLinear.
std::shared_ptr<QuantLinear> quantize_linear(const Linear& linear, const QuantConfig& config,
                                             at::ScalarType compute_dtype);

}  // namespace opine::quant
