// Hugging Face safetensors: one file, or shards listed by a *.safetensors.index.json.
// Tensors are views into a read-only memory map until converted.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "models/weights.h"

namespace opine::models {

class SafetensorsFile {
 public:
  // Parses and checks the header: dtypes known, every data range inside the file and of the size
  // its shape implies. A corrupt or truncated file is an opine::Error naming it.
  static SafetensorsFile open(const std::string& path);

  struct Entry {
    at::ScalarType dtype;
    std::string dtype_name;
    std::vector<int64_t> shape;
    size_t begin = 0, end = 0;  // byte range within the data section
  };
  const std::map<std::string, Entry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return file_->path(); }
  // A CPU tensor viewing the mapped bytes; it keeps the mapping alive.
  at::Tensor tensor(const std::string& name) const;

 private:
  std::shared_ptr<MappedFile> file_;
  size_t data_offset_ = 0;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

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

// Writes tensors to a safetensors file atomically (temp file + rename), for tests and adapters.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace opine::models
