// Filling a model's weight table from a file: every name the model expects must be there with
// its exact shape, and every tensor in the file must be one the model expects.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace opine::models {

// A set of named tensors read from some file format, under the names transformers uses.
class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual std::vector<std::string> names() const = 0;
  virtual std::vector<int64_t> shape(const std::string& name) const = 0;
  // The tensor in its stored dtype (or float32 after dequantization), on the CPU.
  virtual at::Tensor get(const std::string& name) const = 0;
  // What to call the source in an error message (its file).
  virtual std::string describe() const = 0;
};

struct WeightSlotRef {
  std::string name;
  std::vector<int64_t> shape;
  at::Tensor* tensor;
};

// Copies each expected tensor from `source` into its slot, converting to the slot's dtype and
// device. Collects every missing, unexpected and mis-shaped name and throws one opine::Error
// (kind kFormat) listing them all. `ignored` names may be present without being used.
void load_weight_table(const std::vector<WeightSlotRef>& table, const TensorSource& source,
                       const std::vector<std::string>& ignored = {});

std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace opine::models

namespace opine::models {

// GGUF (llama.cpp) and llama2.c store q/k projection rows for rotary embeddings applied to
// interleaved pairs (x0,x1),(x2,x3)...; transformers rotates the first half against the second.
// This reorders each head's rows (dim 0) from the interleaved to the half-split layout.
at::Tensor interleaved_to_half_rotary(const at::Tensor& weight, int64_t num_heads);

}  // namespace opine::models
