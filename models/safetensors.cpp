#include "models/safetensors.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace opine::models {

namespace {

using nlohmann::json;

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  size_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {"F64", at::kDouble, 8}, {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2},
    {"BF16", at::kBFloat16, 2}, {"I64", at::kLong, 8}, {"I32", at::kInt, 4},
    {"I16", at::kShort, 2}, {"I8", at::kChar, 1}, {"U8", at::kByte, 1}, {"BOOL", at::kBool, 1},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const DtypeInfo& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}
const DtypeInfo* find_dtype(at::ScalarType type) {
  for (const DtypeInfo& d : kDtypes)
    if (type == d.type) return &d;
  return nullptr;
}

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.file_ = MappedFile::open(path);
  const size_t size = f.file_->size();
  OPINE_CHECK_FORMAT(size >= 8, path, ": too short for a safetensors file (", size, " bytes)");
  uint64_t header_len = 0;
  std::memcpy(&header_len, f.file_->data(), 8);
  OPINE_CHECK_FORMAT(header_len > 0 && header_len <= size - 8, path, ": header length ", header_len,
                     " does not fit in the file (", size, " bytes): truncated or not safetensors");
  f.data_offset_ = 8 + header_len;
  json header;
  try {
    header = json::parse(f.file_->data() + 8, f.file_->data() + 8 + header_len);
  } catch (const json::parse_error& e) {
    throw Error(ErrorKind::kFormat, detail::concat(path, ": header is not valid JSON: ", e.what()));
  }
  OPINE_CHECK_FORMAT(header.is_object(), path, ": header is not a JSON object");
  const size_t data_size = size - f.data_offset_;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (value.is_object())
        for (const auto& [k, v] : value.items())
          if (v.is_string()) f.metadata_[k] = v.get<std::string>();
      continue;
    }
    OPINE_CHECK_FORMAT(value.is_object() && value.contains("dtype") && value.contains("shape") &&
                           value.contains("data_offsets"),
                       path, ": tensor ", name, " lacks dtype, shape or data_offsets");
    Entry e;
    try {
      e.dtype_name = value.at("dtype").get<std::string>();
      e.shape = value.at("shape").get<std::vector<int64_t>>();
      auto offsets = value.at("data_offsets").get<std::vector<uint64_t>>();
      OPINE_CHECK_FORMAT(offsets.size() == 2, path, ": tensor ", name, ": data_offsets needs 2 values");
      e.begin = offsets[0];
      e.end = offsets[1];
    } catch (const json::exception&) {
      throw Error(ErrorKind::kFormat, detail::concat(path, ": tensor ", name, ": malformed entry ", value.dump()));
    }
    const DtypeInfo* d = find_dtype(e.dtype_name);
    OPINE_CHECK_FORMAT(d, path, ": tensor ", name, " has unsupported dtype ", e.dtype_name);
    e.dtype = d->type;
    uint64_t count = 1;
    for (int64_t dim : e.shape) {
      OPINE_CHECK_FORMAT(dim >= 0, path, ": tensor ", name, " has a negative dimension");
      count *= static_cast<uint64_t>(dim);
    }
    OPINE_CHECK_FORMAT(e.begin <= e.end && e.end <= data_size, path, ": tensor ", name, " bytes [",
                       e.begin, ", ", e.end, ") lie outside the data (", data_size,
                       " bytes): the file is truncated or corrupt");
    OPINE_CHECK_FORMAT(e.end - e.begin == count * d->size, path, ": tensor ", name, " has ",
                       e.end - e.begin, " bytes but its shape ", shape_string(e.shape), " and dtype ",
                       e.dtype_name, " need ", count * d->size);
    f.entries_.emplace(name, std::move(e));
  }
  return f;
}

at::Tensor SafetensorsFile::tensor(const std::string& name) const {
  auto it = entries_.find(name);
  OPINE_CHECK_FORMAT(it != entries_.end(), path(), ": no tensor named ", name);
  const Entry& e = it->second;
  void* ptr = const_cast<uint8_t*>(file_->data() + data_offset_ + e.begin);
  std::shared_ptr<MappedFile> keep = file_;
  // Safetensors data is not guaranteed to be aligned for its dtype; copy when it is not.
  const size_t align = find_dtype(e.dtype)->size;
  at::Tensor view = at::from_blob(ptr, e.shape, [keep](void*) {}, at::TensorOptions().dtype(e.dtype));
  if (reinterpret_cast<uintptr_t>(ptr) % align != 0) {
    at::Tensor copy = at::empty(e.shape, at::TensorOptions().dtype(e.dtype));
    std::memcpy(copy.data_ptr(), ptr, e.end - e.begin);
    return copy;
  }
  return view;
}

SafetensorsSource::SafetensorsSource(const std::string& folder) {
  namespace fs = std::filesystem;
  const fs::path dir(folder);
  const fs::path single = dir / "model.safetensors";
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    description_ = index.string();
    std::ifstream in(index);
    json j;
    try {
      j = json::parse(in);
    } catch (const json::parse_error& e) {
      throw Error(ErrorKind::kFormat, detail::concat(index.string(), ": not valid JSON: ", e.what()));
    }
    OPINE_CHECK_FORMAT(j.contains("weight_map") && j.at("weight_map").is_object(), index.string(),
                       ": missing weight_map");
    std::map<std::string, size_t> file_index;
    for (const auto& [name, shard] : j.at("weight_map").items()) {
      const std::string shard_name = shard.get<std::string>();
      auto it = file_index.find(shard_name);
      if (it == file_index.end()) {
        files_.push_back(SafetensorsFile::open((dir / shard_name).string()));
        it = file_index.emplace(shard_name, files_.size() - 1).first;
      }
      OPINE_CHECK_FORMAT(files_[it->second].entries().count(name), index.string(), ": lists ", name,
                         " in ", shard_name, ", which does not hold it");
      owner_[name] = it->second;
    }
    // A shard may hold tensors the index forgot; they are unexpected all the same.
    for (size_t i = 0; i < files_.size(); ++i)
      for (const auto& [name, e] : files_[i].entries())
        if (!owner_.count(name)) owner_[name] = i;
  } else {
    OPINE_CHECK_KIND(fs::exists(single), ErrorKind::kIo, folder,
                     ": no model.safetensors or model.safetensors.index.json");
    description_ = single.string();
    files_.push_back(SafetensorsFile::open(single.string()));
    for (const auto& [name, e] : files_[0].entries()) owner_[name] = 0;
  }
}

const SafetensorsFile& SafetensorsSource::file_of(const std::string& name) const {
  auto it = owner_.find(name);
  OPINE_CHECK_FORMAT(it != owner_.end(), description_, ": no tensor named ", name);
  return files_[it->second];
}

std::vector<std::string> SafetensorsSource::names() const {
  std::vector<std::string> out;
  for (const auto& [name, i] : owner_) out.push_back(name);
  return out;
}

std::vector<int64_t> SafetensorsSource::shape(const std::string& name) const {
  return file_of(name).entries().at(name).shape;
}

at::Tensor SafetensorsSource::get(const std::string& name) const { return file_of(name).tensor(name); }

std::map<std::string, int64_t> SafetensorsSource::dtype_counts() const {
  std::map<std::string, int64_t> counts;
  for (const auto& [name, i] : owner_) counts[files_[i].entries().at(name).dtype_name]++;
  return counts;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    const DtypeInfo* d = find_dtype(t.scalar_type());
    OPINE_CHECK(d, "cannot save tensor ", name, " of dtype ", t.scalar_type(), " as safetensors");
    at::Tensor c = t.detach().to(at::kCPU).contiguous();
    const uint64_t bytes = c.numel() * d->size;
    header[name] = {{"dtype", d->name}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(c);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    OPINE_CHECK_KIND(out.good(), ErrorKind::kIo, "cannot write ", tmp);
    const uint64_t len = text.size();
    out.write(reinterpret_cast<const char*>(&len), 8);
    out.write(text.data(), text.size());
    for (const at::Tensor& t : data)
      out.write(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
    OPINE_CHECK_KIND(out.good(), ErrorKind::kIo, "write failed: ", tmp);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace opine::models
