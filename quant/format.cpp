#include "quant/format.h"

#include <cmath>
#include <sstream>

#include "core/error.h"
#include "quant/kernels_cpu.h"
#include "quant/kernels_cuda.h"

namespace opine::quant {

const char* quant_type_name(QuantType type) { return type == QuantType::kNf4 ? "nf4" : "fp4"; }

QuantType parse_quant_type(const std::string& name) {
  if (name == "nf4") return QuantType::kNf4;
  if (name == "fp4") return QuantType::kFp4;
  OPINE_CHECK(false, "unknown 4-bit type '", name, "' (use nf4 or fp4)");
}

const std::array<float, 16>& code_book(QuantType type) {
  // NF4: bnb's table, each double rounded to float32 as torch.tensor does.
  static const std::array<float, 16> nf4 = [] {
    const double v[16] = {-1.0,
                          -0.6961928009986877,
                          -0.5250730514526367,
                          -0.39491748809814453,
                          -0.28444138169288635,
                          -0.18477343022823334,
                          -0.09105003625154495,
                          0.0,
                          0.07958029955625534,
                          0.16093020141124725,
                          0.24611230194568634,
                          0.33791524171829224,
                          0.44070982933044434,
                          0.5626170039176941,
                          0.7229568362236023,
                          1.0};
    std::array<float, 16> out;
    for (int i = 0; i < 16; ++i) out[i] = static_cast<float>(v[i]);
    return out;
  }();
  // FP4 (1 sign, 2 exponent, 1 mantissa bit) in bit order, divided by its largest magnitude in
  // float32 as get_4bit_type does. Code 8 is +0: bnb's list spells it `-0`, a Python int.
  static const std::array<float, 16> fp4 = [] {
    const float v[16] = {0.0f, 0.0625f, 8.0f, 12.0f, 4.0f, 6.0f, 2.0f, 3.0f,
                         0.0f, -0.0625f, -8.0f, -12.0f, -4.0f, -6.0f, -2.0f, -3.0f};
    std::array<float, 16> out;
    for (int i = 0; i < 16; ++i) out[i] = v[i] / 12.0f;
    return out;
  }();
  return type == QuantType::kNf4 ? nf4 : fp4;
}

const std::array<float, 256>& dynamic_map() {
  // create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), built with the same
  // torch ops (linspace, mean of neighbours, scale by a power of ten) so every value matches.
  static const std::array<float, 256> map = [] {
    std::vector<double> data;
    for (int i = 0; i < 7; ++i) {
      const int64_t items = (int64_t{1} << i) + 1;
      at::Tensor bounds = at::linspace(0.1, 1.0, items, at::TensorOptions().dtype(at::kFloat));
      at::Tensor means = (bounds.slice(0, 0, items - 1) + bounds.slice(0, 1, items)) / 2.0;
      const int exponent = -6 + i;
      at::Tensor pos = exponent < 0 ? means * std::pow(10.0, exponent) : means * int64_t{1};
      at::Tensor neg = exponent < 0 ? means * -std::pow(10.0, exponent) : means * int64_t{-1};
      for (const at::Tensor& t : {pos, neg})
        for (int64_t j = 0; j < t.numel(); ++j) data.push_back(t[j].item<float>());
    }
    data.push_back(0.0);
    data.push_back(1.0);
    OPINE_ASSERT(data.size() == 256, "dynamic map has ", data.size(), " values");
    std::sort(data.begin(), data.end());
    std::array<float, 256> out;
    for (int i = 0; i < 256; ++i) out[i] = static_cast<float>(data[i]);
    return out;
  }();
  return map;
}

std::string QuantConfig::describe() const {
  std::ostringstream out;
  out << quant_type_name(type) << " (block " << block_size << (double_quant ? ", double quant" : "");
  if (storage != at::kByte) out << ", stored as " << c10::toString(storage);
  out << ")";
  return out.str();
}

void check_config(const QuantConfig& config) {
  OPINE_CHECK(config.block_size == 32 || config.block_size == 64 || config.block_size == 128 ||
                  config.block_size == 256,
              "4-bit block size must be 32, 64, 128 or 256, got ", config.block_size);
  OPINE_CHECK(config.storage == at::kByte || config.storage == at::kBFloat16 || config.storage == at::kHalf ||
                  config.storage == at::kFloat,
              "4-bit storage dtype must be uint8, bf16, f16 or f32, got ", c10::toString(config.storage));
}

int64_t QuantizedTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

at::Tensor QuantizedTensor::codes() const {
  OPINE_ASSERT(packed.defined(), "empty quantized tensor");
  return packed.view(at::kByte).reshape({-1});
}

int64_t QuantizedTensor::bytes() const {
  int64_t b = packed.defined() ? int64_t(packed.nbytes()) : 0;
  if (absmax.defined()) b += absmax.nbytes();
  if (nested()) b += nested_absmax.nbytes() + int64_t(sizeof(float));
  return b;
}

QuantizedTensor QuantizedTensor::to(at::Device device) const {
  QuantizedTensor q = *this;
  q.packed = packed.to(device);
  q.absmax = absmax.to(device);
  if (nested()) q.nested_absmax = nested_absmax.to(device);
  return q;
}

QuantizedTensor quantize(const at::Tensor& input, const QuantConfig& config) {
  check_config(config);
  OPINE_CHECK(input.defined() && input.numel() > 0, "cannot quantize an empty tensor");
  const at::ScalarType dt = input.scalar_type();
  OPINE_CHECK(dt == at::kFloat || dt == at::kBFloat16 || dt == at::kHalf,
              "4-bit quantization takes float32, bf16 or f16 tensors, got ", c10::toString(dt));
  if (input.is_meta()) {
    // Shapes only, for a sharded model's skeleton (core/shard.h): the values arrive later.
    QuantizedTensor q;
    q.type = config.type;
    q.block_size = config.block_size;
    q.shape = input.sizes().vec();
    q.dtype = dt;
    const auto meta = at::TensorOptions().device(at::kMeta);
    const int64_t item = c10::elementSize(config.storage);
    q.packed = at::empty({(input.numel() + 1) / 2 / item, 1}, meta.dtype(config.storage));
    q.absmax = at::empty({q.blocks()}, meta.dtype(config.double_quant ? at::kByte : at::kFloat));
    if (config.double_quant)
      q.nested_absmax = at::empty({(q.blocks() + kNestedBlockSize - 1) / kNestedBlockSize}, meta.dtype(at::kFloat));
    return q;
  }
  // Quantization runs once, at load time: on the CPU, whatever the tensor's device.
  const at::Tensor x = input.detach().to(at::kCPU).contiguous();
  const int64_t n = x.numel();
  QuantizedTensor q;
  q.type = config.type;
  q.block_size = config.block_size;
  q.shape = input.sizes().vec();
  q.dtype = dt;
  at::Tensor packed = at::empty({(n + 1) / 2}, at::kByte);
  at::Tensor absmax = at::empty({q.blocks()}, at::kFloat);
  uint8_t* p = packed.data_ptr<uint8_t>();
  float* a = absmax.data_ptr<float>();
  if (dt == at::kFloat) cpu::quantize_4bit(x.data_ptr<float>(), n, q.block_size, q.type, p, a);
  if (dt == at::kBFloat16) cpu::quantize_4bit(x.data_ptr<c10::BFloat16>(), n, q.block_size, q.type, p, a);
  if (dt == at::kHalf) cpu::quantize_4bit(x.data_ptr<c10::Half>(), n, q.block_size, q.type, p, a);

  if (config.double_quant) {
    // As bnb: the mean of the absmax values (torch's float32 mean), removed before quantizing.
    const at::Tensor offset = absmax.mean();
    const at::Tensor centered = (absmax - offset).contiguous();
    q.offset = offset.item<float>();
    q.absmax = at::empty({q.blocks()}, at::kByte);
    q.nested_absmax = at::empty({(q.blocks() + kNestedBlockSize - 1) / kNestedBlockSize}, at::kFloat);
    cpu::quantize_8bit_dynamic(centered.data_ptr<float>(), q.blocks(), q.absmax.data_ptr<uint8_t>(),
                               q.nested_absmax.data_ptr<float>());
  } else {
    q.absmax = absmax;
  }
  const int64_t item = c10::elementSize(config.storage);
  OPINE_CHECK(packed.numel() % item == 0, "a tensor of ", n, " elements packs into ", packed.numel(),
              " bytes, which do not fill whole ", c10::toString(config.storage), " storage elements");
  q.packed = packed.view(config.storage).reshape({-1, 1});
  return input.device().is_cpu() ? q : q.to(input.device());
}

at::Tensor block_absmax(const QuantizedTensor& q) {
  if (!q.nested()) return q.absmax.to(at::kFloat);
  OPINE_CHECK(q.absmax.scalar_type() == at::kByte && q.nested_absmax.scalar_type() == at::kFloat,
              "double-quantized absmax must be uint8 with float32 nested absmax, got ",
              c10::toString(q.absmax.scalar_type()), " and ", c10::toString(q.nested_absmax.scalar_type()));
  OPINE_CHECK(q.absmax.numel() == q.blocks() &&
                  q.nested_absmax.numel() == (q.blocks() + kNestedBlockSize - 1) / kNestedBlockSize,
              "quantization state does not fit a tensor of ", q.numel(), " elements in blocks of ", q.block_size);
#ifdef OPINE_HAVE_CUDA
  if (q.absmax.is_cuda()) return cuda::nested_scales(q.absmax, q.nested_absmax, q.offset);
#endif
  const at::Tensor codes = q.absmax.contiguous(), nested = q.nested_absmax.contiguous();
  at::Tensor out = at::empty({q.blocks()}, at::kFloat);
  cpu::nested_scales(codes.data_ptr<uint8_t>(), nested.data_ptr<float>(), q.offset, q.blocks(),
                     out.data_ptr<float>());
  return out;
}

void dequantize_into(const QuantizedTensor& q, const at::Tensor& scales, at::Tensor& out) {
  const int64_t n = q.numel();
  OPINE_CHECK(q.codes().numel() * 2 >= n, "packed codes hold ", q.codes().numel() * 2, " values, shape ",
              at::IntArrayRef(q.shape), " needs ", n);
  OPINE_CHECK(scales.numel() == q.blocks() && scales.scalar_type() == at::kFloat, "absmax holds ", scales.numel(),
              " values, a tensor of ", n, " elements in blocks of ", q.block_size, " needs ", q.blocks());
  OPINE_ASSERT(out.is_contiguous() && out.numel() == n, "dequantize output of the wrong shape");
#ifdef OPINE_HAVE_CUDA
  if (out.is_cuda()) {
    cuda::dequantize_4bit(q.codes(), scales, q.block_size, q.type, out);
    return;
  }
#endif
  const at::Tensor codes = q.codes().contiguous();
  const at::Tensor s = scales.contiguous();
  const uint8_t* p = codes.data_ptr<uint8_t>();
  const float* a = s.data_ptr<float>();
  switch (out.scalar_type()) {
    case at::kFloat: cpu::dequantize_4bit(p, a, n, q.block_size, q.type, out.data_ptr<float>()); break;
    case at::kBFloat16: cpu::dequantize_4bit(p, a, n, q.block_size, q.type, out.data_ptr<c10::BFloat16>()); break;
    case at::kHalf: cpu::dequantize_4bit(p, a, n, q.block_size, q.type, out.data_ptr<c10::Half>()); break;
    default: OPINE_CHECK(false, "4-bit dequantization gives float32, bf16 or f16, not ", c10::toString(out.scalar_type()));
  }
}

at::Tensor dequantize(const QuantizedTensor& q, at::ScalarType dtype) {
  at::Tensor out = at::empty(q.shape, at::TensorOptions().dtype(dtype).device(q.packed.device()));
  dequantize_into(q, block_absmax(q), out);
  return out;
}

}  // namespace opine::quant
