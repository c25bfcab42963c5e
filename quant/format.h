// Blockwise 4-bit quantization laid out exactly as bitsandbytes lays it out, so a tensor quantized
// here and one quantized by bitsandbytes are interchangeable:
//   - the flat row-major tensor is cut into blocks of `block_size` elements (the last may be short),
//     each scaled by its absolute maximum and mapped to the nearest of 16 code values (NF4 or FP4);
//   - two codes per byte, element 2j in the high nibble and 2j+1 in the low one, stored as a
//     [(numel + 1) / 2 / item, 1] tensor of the storage dtype (uint8, or bf16 etc. reinterpreted);
//   - with double quantization the float32 absmax values lose their mean (the offset) and are
//     quantized again with bnb's signed 8-bit dynamic map in blocks of 256 (nested absmax).
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace opine::quant {

enum class QuantType { kNf4, kFp4 };

const char* quant_type_name(QuantType type);  // "nf4" | "fp4"
QuantType parse_quant_type(const std::string& name);

// The 16 code values of a type, indexed by the 4-bit code (bnb's get_4bit_type, float32).
const std::array<float, 16>& code_book(QuantType type);
// bnb's signed 8-bit dynamic map (create_dynamic_map()), 256 sorted float32 values.
const std::array<float, 256>& dynamic_map();

// Block of the nested (8-bit) quantization of the absmax values: fixed by bitsandbytes.
constexpr int64_t kNestedBlockSize = 256;

struct QuantConfig {
  QuantType type = QuantType::kNf4;
  int64_t block_size = 64;                 // 32, 64, 128 or 256
  bool double_quant = true;                // bnb's compress_statistics
  at::ScalarType storage = at::kByte;      // dtype holding the packed codes (bnb's quant_storage)
  std::string describe() const;            // "nf4 (block 64, double quant)"
};
// Throws a clear error for a block size or storage dtype bitsandbytes would not produce.
void check_config(const QuantConfig& config);

struct QuantizedTensor {
  at::Tensor packed;  // [(numel + 1) / 2 / storage item size, 1], storage dtype
  // Without double quant: float32 [blocks]. With it: uint8 [blocks], codes into dynamic_map().
  at::Tensor absmax;
  at::Tensor nested_absmax;  // float32 [ceil(blocks / 256)], only with double quant
  float offset = 0.0f;       // mean of the absmax values, only with double quant
  QuantType type = QuantType::kNf4;
  int64_t block_size = 64;
  std::vector<int64_t> shape;           // the original tensor's shape
  at::ScalarType dtype = at::kFloat;    // the original tensor's dtype (bnb's quant_state.dtype)

  bool nested() const { return nested_absmax.defined(); }
  int64_t numel() const;
  int64_t blocks() const { return (numel() + block_size - 1) / block_size; }
  // The packed codes as a flat uint8 tensor (a view, whatever the storage dtype).
  at::Tensor codes() const;
  // Bytes held: packed codes and every scale (absmax, nested absmax, offset).
  int64_t bytes() const;
  QuantizedTensor to(at::Device device) const;
};

// Quantizes a float32/bf16/f16 tensor of any shape (on the CPU or, with CUDA, on the GPU).
QuantizedTensor quantize(const at::Tensor& x, const QuantConfig& config);
// The float32 scale of every block, nested quantization undone exactly as bitsandbytes does it
// (dynamic_map[q] * nested_absmax, then + offset, in float32).
at::Tensor block_absmax(const QuantizedTensor& q);
// The dense tensor in `dtype` (code * absmax in float32, rounded once to `dtype`).
at::Tensor dequantize(const QuantizedTensor& q, at::ScalarType dtype);
// Same, into `out` (contiguous, q.numel() elements of `dtype`, on q's device): no allocation.
void dequantize_into(const QuantizedTensor& q, const at::Tensor& block_scales, at::Tensor& out);

}  // namespace opine::quant
