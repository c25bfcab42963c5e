// Tensor-level wrappers around the CUDA launchers (kernels_cuda.cu): checks, the current stream,
// dtype codes. Compiled only when this build has CUDA.
#ifdef OPINE_HAVE_CUDA
#include "quant/kernels_cuda.h"

#include <c10/cuda/CUDAStream.h>

#include "core/error.h"
#include "quant/kernels_cuda_raw.h"

namespace opine::quant::cuda {

namespace {

int dtype_code(at::ScalarType t) {
  if (t == at::kFloat) return 0;
  if (t == at::kBFloat16) return 1;
  if (t == at::kHalf) return 2;
  OPINE_CHECK(false, "4-bit CUDA kernels take float32, bf16 or f16, not ", c10::toString(t));
}

void* stream_of(const at::Tensor& t) { return c10::cuda::getCurrentCUDAStream(t.device().index()).stream(); }

void check(const std::string& failure) { OPINE_CHECK_KIND(failure.empty(), ErrorKind::kInternal, "CUDA: ", failure); }

}  // namespace

at::Tensor nested_scales(const at::Tensor& codes, const at::Tensor& nested, float offset) {
  const at::Tensor c = codes.contiguous(), n = nested.to(codes.device()).contiguous();
  at::Tensor out = at::empty({c.numel()}, c.options().dtype(at::kFloat));
  check(cuda_raw::nested_scales(c.data_ptr<uint8_t>(), n.data_ptr<float>(), offset, dynamic_map().data(), c.numel(),
                                out.data_ptr<float>(), stream_of(c)));
  return out;
}

void dequantize_4bit(const at::Tensor& codes, const at::Tensor& scales, int64_t block_size, QuantType type,
                     at::Tensor& out) {
  OPINE_CHECK(codes.is_cuda() && scales.is_cuda() && out.is_cuda(), "4-bit CUDA dequantization needs GPU tensors");
  const at::Tensor c = codes.contiguous(), s = scales.contiguous();
  check(cuda_raw::dequantize_4bit(c.data_ptr<uint8_t>(), s.data_ptr<float>(), out.numel(), block_size,
                                  code_book(type).data(), dtype_code(out.scalar_type()), out.data_ptr(),
                                  stream_of(out)));
}

at::Tensor gemv_4bit(const at::Tensor& x, const at::Tensor& codes, const at::Tensor& scales, int64_t n_out,
                     int64_t block_size, QuantType type, const at::Tensor& bias) {
  OPINE_CHECK(x.dim() == 2, "gemv_4bit takes [rows, k] inputs");
  const at::Tensor xc = x.contiguous(), c = codes.contiguous(), s = scales.contiguous();
  const at::Tensor b = bias.defined() ? bias.to(x.scalar_type()).contiguous() : at::Tensor();
  at::Tensor y = at::empty({x.size(0), n_out}, x.options());
  check(cuda_raw::gemv_4bit(xc.data_ptr(), x.size(0), x.size(1), c.data_ptr<uint8_t>(), s.data_ptr<float>(), n_out,
                            block_size, code_book(type).data(), b.defined() ? b.data_ptr() : nullptr,
                            dtype_code(x.scalar_type()), y.data_ptr(), stream_of(y)));
  return y;
}

}  // namespace opine::quant::cuda
#endif
