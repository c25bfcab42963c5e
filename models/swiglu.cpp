#include "models/swiglu.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include "models/swiglu_kernel.h"

namespace opine::models {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kGrain = 1 << 14;

struct Swiglu : torch::autograd::Function<Swiglu> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate, const at::Tensor& up) {
    at::Tensor y = at::empty_like(gate);
    const float *g = gate.data_ptr<float>(), *u = up.data_ptr<float>();
    float* out = y.data_ptr<float>();
    at::parallel_for(0, gate.numel(), kGrain, [&](int64_t begin, int64_t end) {
      swiglu_forward(g + begin, u + begin, out + begin, end - begin);
    });
    ctx->save_for_backward({gate, up});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor dy = grads[0].contiguous();
    at::Tensor dg = at::empty_like(saved[0]), du = at::empty_like(saved[1]);
    const float *d = dy.data_ptr<float>(), *g = saved[0].data_ptr<float>(), *u = saved[1].data_ptr<float>();
    float *og = dg.data_ptr<float>(), *ou = du.data_ptr<float>();
    at::parallel_for(0, dy.numel(), kGrain, [&](int64_t begin, int64_t end) {
      swiglu_backward(d + begin, g + begin, u + begin, og + begin, ou + begin, end - begin);
    });
    return {dg, du};
  }
};

}  // namespace

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up) {
  const bool fused = gate.device().is_cpu() && gate.scalar_type() == at::kFloat && up.scalar_type() == at::kFloat &&
                     gate.sizes() == up.sizes() && gate.is_contiguous() && up.is_contiguous();
  if (!fused) return at::silu(gate) * up;
  return Swiglu::apply(gate, up);
}

}  // namespace opine::models
