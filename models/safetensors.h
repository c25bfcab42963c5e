// Hugging Face safetensors: one file, or shards listed by a *.safetensors.index.json.
// Tensors are views into a read-only memory map until converted.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/safetensors.h"
#include "models/weights.h"

namespace opine::models {

// The file reader and writer live in core/ (optimizer states use them too).
using opine::SafetensorsFile;
using opine::save_safetensors;

// All tensors of a Hugging Face model folder: model.safetensors or the shards named by
// model.safetensors.index.json (a name listed there but absent from its shard is an error).
class SafetensorsSource : public TensorSource {
 public:
  explicit SafetensorsSource(const std::string& folder);
  std::vector<std::string> names() const override;
  std::vector<int64_t> shape(const std::string& name) const override;
  at::Tensor get(const std::string& name) const override;
  std::string describe() const override { return description_; }
  // Names of the stored dtypes and their tensor counts, for `opine inspect`.
  std::map<std::string, int64_t> dtype_counts() const;

 private:
  const SafetensorsFile& file_of(const std::string& name) const;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> owner_;  // tensor name -> index into files_
  std::string description_;
};

}  // namespace opine::models
