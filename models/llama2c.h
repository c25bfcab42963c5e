// llama2.c checkpoints (Karpathy's legacy float32 format, "version 0"): a header of seven int32
// (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size
// means an untied classifier follows), then the float32 weights in a fixed order.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/mapped_file.h"
#include "models/llama_config.h"
#include "models/weights.h"

namespace opine::models {

class Llama2cSource : public TensorSource {
 public:
  explicit Llama2cSource(const std::string& path);
  const LlamaConfig& config() const { return config_; }
  std::vector<std::string> names() const override;
  std::vector<int64_t> shape(const std::string& name) const override;
  at::Tensor get(const std::string& name) const override;
  std::string describe() const override { return file_->path(); }

 private:
  struct Slice {
    size_t offset;  // bytes from the start of the file
    std::vector<int64_t> shape;
    bool rotary_heads = false;  // q/k: rows reordered to transformers' rotary layout
    int64_t heads = 0;
  };
  std::shared_ptr<MappedFile> file_;
  LlamaConfig config_;
  std::map<std::string, Slice> slices_;
};

}  // namespace opine::models
