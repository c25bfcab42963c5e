#include "peft/lora_dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>

#include "core/error.h"
#include "peft/dropout_mask.h"

namespace opine::peft {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

uint32_t drop_below(double p) {
  return static_cast<uint32_t>(std::min(std::ldexp(p, 32), double(std::numeric_limits<uint32_t>::max())));
}

// The keep probability the threshold gives, for an unbiased 1 / (1 - p) scale.
float keep_scale(double p) { return static_cast<float>(1.0 / (1.0 - std::ldexp(double(drop_below(p)), -32))); }

struct Mask {
  uint64_t key = 0;
  uint32_t below = 0;  // dropped when the hash is below this
  float scale = 1;
  bool none = true;  // p = 0
};

Mask make_mask(uint64_t key, double p) { return {key, drop_below(p), keep_scale(p), p == 0}; }

// Rows [first, first + n) of `in` [M, width] into `out`, masked (copied when there is no mask).
void mask_rows(const float* in, float* out, int64_t first, int64_t n, int64_t width, const Mask& m) {
  if (m.none) {
    std::copy(in + first * width, in + (first + n) * width, out);
    return;
  }
  apply_dropout_mask(in + first * width, out, n * width, uint64_t(first * width), m.key, m.below, m.scale);
}

// Rows per chunk: a chunk of dropped input stays in the core's cache between the mask and the
// matmul that reads it, so x crosses memory once (the CPU is memory-bound on these shapes).
constexpr int64_t kChunkRows = 64;

// xa = dropout(x) A^T [M, r], chunk by chunk.
at::Tensor project_down(const at::Tensor& x2, const at::Tensor& a, const Mask& m) {
  if (m.none) return at::mm(x2, a.t());
  const int64_t rows = x2.size(0), width = x2.size(1);
  at::Tensor xa = at::empty({rows, a.size(0)}, x2.options());
  const at::Tensor a_t = a.t();
  at::parallel_for(0, rows, kChunkRows, [&](int64_t begin, int64_t end) {
    at::Tensor buf = at::empty({kChunkRows, width}, x2.options());
    for (int64_t r0 = begin; r0 < end; r0 += kChunkRows) {
      const int64_t n = std::min(kChunkRows, end - r0);
      mask_rows(x2.data_ptr<float>(), buf.data_ptr<float>(), r0, n, width, m);
      at::Tensor out = xa.narrow(0, r0, n);
      at::mm_out(out, buf.narrow(0, 0, n), a_t);
    }
  });
  return xa;
}

// grad_A = g_xa^T dropout(x) [r, in] and grad_x = dropout'(g_xa A) [M, in], each only when
// wanted, in one pass over row chunks; grad_A sums per thread, then over the threads.
void project_down_backward(const at::Tensor& x2, const at::Tensor& a, const at::Tensor& g_xa, const Mask& m,
                           bool want_a, bool want_x, at::Tensor& grad_a, at::Tensor& grad_x) {
  const int64_t rows = x2.size(0), width = x2.size(1);
  if (m.none) {
    if (want_a) grad_a = at::mm(g_xa.t(), x2);
    if (want_x) grad_x = at::mm(g_xa, a);
    return;
  }
  if (want_x) grad_x = at::empty({rows, width}, x2.options());
  at::Tensor partial = want_a ? at::zeros({at::get_num_threads(), a.size(0), width}, x2.options()) : at::Tensor();
  at::parallel_for(0, rows, kChunkRows, [&](int64_t begin, int64_t end) {
    at::Tensor buf = at::empty({kChunkRows, width}, x2.options());
    for (int64_t r0 = begin; r0 < end; r0 += kChunkRows) {
      const int64_t n = std::min(kChunkRows, end - r0);
      const at::Tensor g = g_xa.narrow(0, r0, n);
      if (want_a) {
        mask_rows(x2.data_ptr<float>(), buf.data_ptr<float>(), r0, n, width, m);
        partial[at::get_thread_num()].addmm_(g.t(), buf.narrow(0, 0, n));
      }
      if (want_x) {
        at::Tensor gx = grad_x.narrow(0, r0, n);
        at::mm_out(gx, g, a);
        apply_dropout_mask(gx.data_ptr<float>(), gx.data_ptr<float>(), n * width, uint64_t(r0 * width), m.key,
                           m.below, m.scale);
      }
    }
  });
  if (want_a) grad_a = partial.sum(0);
}

// result += scaling * B(A(dropout(x))), in place on the base layer's output (which nothing saved:
// a frozen weight's backward needs only the weight), so the update costs no tensor of its own.
struct LoraUpdateInto : torch::autograd::Function<LoraUpdateInto> {
  static at::Tensor forward(AutogradContext* ctx, at::Tensor result, const at::Tensor& x, const at::Tensor& a,
                            const at::Tensor& b, double p, double scaling, int64_t key) {
    const at::Tensor x2 = x.reshape({-1, x.size(-1)}).contiguous();
    OPINE_CHECK(x2.numel() <= int64_t{std::numeric_limits<uint32_t>::max()}, "LoRA dropout over ", x2.numel(),
                " elements: at most 2^32 per layer input");
    const at::Tensor xa = project_down(x2, a, make_mask(uint64_t(key), p));  // [M, r]
    result.view({-1, b.size(0)}).addmm_(xa, b.t(), 1.0, scaling);
    ctx->mark_dirty({result});
    ctx->save_for_backward({x2, a, b, xa});
    ctx->saved_data["p"] = p;
    ctx->saved_data["scaling"] = scaling;
    ctx->saved_data["key"] = key;
    return result;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &x2 = saved[0], &a = saved[1], &b = saved[2], &xa = saved[3];
    const double p = ctx->saved_data["p"].toDouble(), scaling = ctx->saved_data["scaling"].toDouble();
    const uint64_t key = uint64_t(ctx->saved_data["key"].toInt());
    const at::Tensor g = grads[0].reshape({-1, b.size(0)});
    at::Tensor grad_b, grad_a, grad_x;
    if (ctx->needs_input_grad(3)) grad_b = at::mm(g.t(), xa).mul_(scaling);  // [out, r]
    const at::Tensor g_xa = at::mm(g, b).mul_(scaling);                      // [M, r]
    project_down_backward(x2, a, g_xa, make_mask(key, p), ctx->needs_input_grad(2), ctx->needs_input_grad(1),
                          grad_a, grad_x);
    if (grad_x.defined()) {
      std::vector<int64_t> shape = grads[0].sizes().vec();
      shape.back() = a.size(1);
      grad_x = grad_x.view(shape);
    }
    return {grads[0], grad_x, grad_a, grad_b, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool lora_update_into_applies(const at::Tensor& result, const at::Tensor& x, const at::Tensor& a,
                              const at::Tensor& b) {
  for (const at::Tensor* t : {&result, &x, &a, &b})
    if (!t->device().is_cpu() || t->scalar_type() != at::kFloat) return false;
  return result.is_contiguous();
}

at::Tensor apply_dropout_mask(const at::Tensor& x, uint64_t key, double p) {
  OPINE_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat, "apply_dropout_mask takes float32 CPU tensors");
  const at::Tensor in = x.reshape({-1, x.size(-1)}).contiguous();
  at::Tensor out = at::empty_like(in);
  const Mask m = make_mask(key, p);
  at::parallel_for(0, in.size(0), kChunkRows, [&](int64_t begin, int64_t end) {
    mask_rows(in.data_ptr<float>(), out.data_ptr<float>() + begin * in.size(1), begin, end - begin, in.size(1), m);
  });
  return out.view(x.sizes());
}

at::Tensor lora_update_into(at::Tensor result, const at::Tensor& x, const at::Tensor& a, const at::Tensor& b,
                            double p, double scaling) {
  OPINE_ASSERT(lora_update_into_applies(result, x, a, b), "lora_update_into needs float32 CPU tensors");
  OPINE_CHECK(p >= 0 && p < 1, "LoRA dropout must be in [0, 1), got ", p);
  uint64_t key = 0;
  if (p > 0) {
    at::CPUGeneratorImpl* gen = at::get_generator_or_default<at::CPUGeneratorImpl>(
        std::nullopt, at::detail::getDefaultCPUGenerator());
    std::lock_guard<std::mutex> lock(gen->mutex_);
    key = gen->random64();
  }
  return LoraUpdateInto::apply(std::move(result), x, a, b, p, scaling, static_cast<int64_t>(key));
}

}  // namespace opine::peft
