#include "quant/quant_linear.h"

#include <torch/csrc/autograd/custom_function.h>

#include <map>
#include <optional>

#include "core/error.h"
#include "quant/kernels_cpu.h"
#include "quant/kernels_cuda.h"

namespace opine::quant {

namespace {

// One dequantization buffer per thread, device and dtype, grown to the largest layer and shared
// by all layers: a 7B model needs one layer's dense weight at a time, not all of them.
at::Tensor buffer_for(int64_t numel, at::ScalarType dtype, at::Device device) {
  thread_local std::map<std::pair<std::string, at::ScalarType>, at::Tensor> buffers;
  at::Tensor& buf = buffers[{device.str(), dtype}];
  if (!buf.defined() || buf.numel() < numel) {
    buf = at::Tensor();  // release the smaller one first
    buf = at::empty({numel}, at::TensorOptions().dtype(dtype).device(device));
  }
  return buf.narrow(0, 0, numel);
}

// x [..., in] -> x W^T, with backward grad_x = grad W (W dequantized again, never saved).
struct QuantMatmul : public torch::autograd::Function<QuantMatmul> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const QuantLinear* op) {
    ctx->saved_data["op"] = reinterpret_cast<int64_t>(op);
    return at::linear(x, op->dequantize_to_buffer(x.scalar_type()));
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    // The op outlives the graph: layers own their ops for the model's lifetime.
    const auto* op = reinterpret_cast<const QuantLinear*>(ctx->saved_data["op"].toInt());
    const at::Tensor& g = grads[0];
    return {at::matmul(g, op->dequantize_to_buffer(g.scalar_type())), at::Tensor()};
  }
};

}  // namespace

QuantLinear::QuantLinear(QuantizedTensor weight, at::Tensor bias, QuantConfig config, at::ScalarType compute_dtype)
    : weight_(std::move(weight)), bias_(std::move(bias)), config_(config), compute_dtype_(compute_dtype) {
  OPINE_CHECK(weight_.shape.size() == 2, "a 4-bit linear weight must be 2-D [out, in], got shape ",
              at::IntArrayRef(weight_.shape));
  OPINE_CHECK(!bias_.defined() || (bias_.dim() == 1 && bias_.size(0) == weight_.shape[0]), "bias of shape ",
              bias_.sizes(), " does not fit a weight of shape ", at::IntArrayRef(weight_.shape));
  OPINE_CHECK(compute_dtype_ == at::kFloat || compute_dtype_ == at::kBFloat16 || compute_dtype_ == at::kHalf,
              "4-bit compute dtype must be f32, bf16 or f16, got ", c10::toString(compute_dtype_));
  if (bias_.defined()) bias_ = bias_.to(compute_dtype_);
}

at::Tensor QuantLinear::dequantize_to_buffer(at::ScalarType dtype) const {
  RECORD_FUNCTION("opine::dequantize_4bit", std::vector<c10::IValue>());  // named in profiles
  at::Tensor w = buffer_for(weight_.numel(), dtype, weight_.packed.device());
  dequantize_into(weight_, block_absmax(weight_), w);
  return w.view({out_features(), in_features()});
}

at::Tensor QuantLinear::forward(const at::Tensor& x) const {
  OPINE_CHECK(x.size(-1) == in_features(), "4-bit linear layer takes ", in_features(), " input features, got ",
              x.sizes());
  const at::ScalarType in_dtype = x.scalar_type();
  at::Tensor y;
  if (at::GradMode::is_enabled() && x.requires_grad()) {
    // On x's own shape, so that the output is not a view: LoRA adds its update into it in place,
    // and autograd turns an in-place op on a view into CopySlices, which copies the whole
    // gradient in backward (8% of a QLoRA step).
    y = QuantMatmul::apply(x.to(compute_dtype_), this);
    if (bias_.defined()) y = y + bias_;
    return y.to(in_dtype);
  }
  at::Tensor x2 = x.reshape({-1, in_features()}).to(compute_dtype_);
  const int64_t rows = x2.size(0);
  std::vector<int64_t> out_shape = x.sizes().vec();
  out_shape.back() = out_features();
  if (x2.device().is_cpu() && rows <= kFusedRowsCpu) {
    x2 = x2.contiguous();
    y = at::empty({rows, out_features()}, x2.options());
    const at::Tensor scales = block_absmax(weight_);
    const at::Tensor codes = weight_.codes().contiguous();
    auto run = [&](auto tag) {
      using T = decltype(tag);
      cpu::gemv_4bit<T>(x2.data_ptr<T>(), rows, in_features(), codes.data_ptr<uint8_t>(), scales.data_ptr<float>(),
                        out_features(), weight_.block_size, weight_.type,
                        bias_.defined() ? bias_.data_ptr<T>() : nullptr, y.data_ptr<T>());
    };
    if (compute_dtype_ == at::kFloat) run(float{});
    if (compute_dtype_ == at::kBFloat16) run(c10::BFloat16{});
    if (compute_dtype_ == at::kHalf) run(c10::Half{});
    return y.view(out_shape).to(in_dtype);
  }
#ifdef OPINE_HAVE_CUDA
  if (x2.is_cuda() && rows <= kFusedRowsCuda) {
    y = cuda::gemv_4bit(x2, weight_.codes(), block_absmax(weight_), out_features(), weight_.block_size,
                        weight_.type, bias_);
    return y.view(out_shape).to(in_dtype);
  }
#endif
  {
    c10::NoGradGuard no_grad;
    y = at::linear(x2, dequantize_to_buffer(x2.scalar_type()));
  }
  if (bias_.defined()) y = y + bias_;
  return y.view(out_shape).to(in_dtype);
}

void QuantLinear::assign_dense_weight(const at::Tensor& weight) {
  OPINE_CHECK(weight.dim() == 2 && weight.size(0) == out_features() && weight.size(1) == in_features(),
              "weight of shape ", weight.sizes(), " does not fit a 4-bit layer of shape [", out_features(), ", ",
              in_features(), "]");
  const at::Device device = weight_.packed.device();
  weight_ = quantize(weight.detach().to(device), config_);
}

int64_t QuantLinear::resident_bytes() const {
  return weight_.bytes() + (bias_.defined() ? int64_t(bias_.nbytes()) : 0);
}

std::vector<TensorSlot> QuantLinear::tensor_slots() {
  std::vector<TensorSlot> slots;
  for (auto [name, t] : {std::pair<const char*, at::Tensor*>{"weight", &weight_.packed}, {"weight.absmax", &weight_.absmax},
                         {"weight.nested_absmax", &weight_.nested_absmax}, {"bias", &bias_}})
    if (t->defined()) slots.push_back({name, t});
  return slots;
}

void QuantLinear::to(at::Device device, at::ScalarType dtype) {
  weight_ = weight_.to(device);
  compute_dtype_ = dtype;
  if (bias_.defined()) bias_ = bias_.to(device, dtype);
}

std::shared_ptr<QuantLinear> quantize_linear(const Linear& linear, const QuantConfig& config,
                                             at::ScalarType compute_dtype) {
  at::Tensor weight = linear.weight, bias = linear.bias;
  if (!weight.defined()) {
    const auto* dense = dynamic_cast<const DenseLinear*>(linear.op.get());
    OPINE_CHECK(dense, "cannot quantize a layer whose base is '", linear.op ? linear.op->describe() : "empty",
                "': quantize before installing adapters");
    weight = dense->weight();
    bias = dense->bias();
  }
  return std::make_shared<QuantLinear>(quantize(weight, config), bias, config, compute_dtype);
}

}  // namespace opine::quant
