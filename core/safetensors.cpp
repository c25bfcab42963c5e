#include "core/safetensors.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"

namespace opine {

namespace {

using nlohmann::json;

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  size_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {"F64", at::kDouble, 8}, {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2},  {"BF16", at::kBFloat16, 2},
    {"I64", at::kLong, 8},   {"I32", at::kInt, 4},   {"I16", at::kShort, 2}, {"I8", at::kChar, 1},
    {"U8", at::kByte, 1},    {"BOOL", at::kBool, 1},
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

const char* safetensors_dtype_name(at::ScalarType type) {
  const DtypeInfo* d = find_dtype(type);
  OPINE_CHECK(d, "no safetensors dtype for ", c10::toString(type));
  return d->name;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

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
      throw Error(ErrorKind::kFormat,
                  detail::concat(path, ": tensor ", name, ": malformed entry ", value.dump()));
    }
    const DtypeInfo* d = find_dtype(e.dtype_name);
    OPINE_CHECK_FORMAT(d, path, ": tensor ", name, " has unsupported dtype ", e.dtype_name);
    e.dtype = d->type;
    uint64_t count = 1;
    for (int64_t dim : e.shape) {
      OPINE_CHECK_FORMAT(dim >= 0, path, ": tensor ", name, " has a negative dimension");
      count *= static_cast<uint64_t>(dim);
    }
    OPINE_CHECK_FORMAT(e.begin <= e.end && e.end <= data_size, path, ": tensor ", name, " bytes [", e.begin,
                       ", ", e.end, ") lie outside the data (", data_size,
                       " bytes): the file is truncated or corrupt");
    OPINE_CHECK_FORMAT(e.end - e.begin == count * d->size, path, ": tensor ", name, " has ", e.end - e.begin,
                       " bytes but its shape ", shape_text(e.shape), " and dtype ", e.dtype_name, " need ",
                       count * d->size);
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
  at::Tensor view = at::from_blob(
      ptr, e.shape, [keep](void*) {}, at::TensorOptions().dtype(e.dtype));
  if (reinterpret_cast<uintptr_t>(ptr) % align != 0) {
    at::Tensor copy = at::empty(e.shape, at::TensorOptions().dtype(e.dtype));
    std::memcpy(copy.data_ptr(), ptr, e.end - e.begin);
    return copy;
  }
  return view;
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
    header[name] = {
        {"dtype", d->name}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(c);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
  write_file_atomic(path, [&](std::ostream& out) {
    const uint64_t len = text.size();  // little-endian, as on every machine opine runs on
    out.write(reinterpret_cast<const char*>(&len), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const at::Tensor& t : data)
      out.write(static_cast<const char*>(t.data_ptr()),
                static_cast<std::streamsize>(t.numel() * t.element_size()));
  });
}

}  // namespace opine
