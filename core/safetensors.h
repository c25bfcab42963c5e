// safetensors files (Hugging Face's tensor format): read through a memory map, written atomically.
// models/ reads checkpoints with it; core/ keeps optimizer states in it.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/mapped_file.h"

namespace opine {

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

// Writes tensors to a safetensors file atomically (temp file + rename), for tests and adapters.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// The safetensors name of a dtype ("F32", "BF16", ...); an opine::Error for one it has none for.
const char* safetensors_dtype_name(at::ScalarType type);
// "[4, 3]", for messages.
std::string shape_text(const std::vector<int64_t>& shape);

}  // namespace opine
