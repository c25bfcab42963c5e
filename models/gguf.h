// GGUF (llama.cpp's model file): metadata, tensor directory, and dequantization to float32.
//
// Reads GGUF v2 and v3, little-endian. The file is memory-mapped read-only and the mapping
// lives as long as any File copy. open() checks the whole header against the file size, so a
// corrupt or truncated file is an opine::Error naming it, never a crash or an out-of-range read.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/mapped_file.h"

namespace opine::gguf {

// ggml's tensor types, numbered as in ggml.h (the gaps are types ggml has removed).
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  NVFP4 = 40,
  Q1_0 = 41,
};

// "Q4_K"; "unknown" for a number outside the enum.
const char* ggml_type_name(GgmlType type);
// Whether `id` is a type this reader knows the block layout (size) of.
bool ggml_type_known(uint32_t id);
// Elements per block and bytes per block (1 and the element size for plain types).
int64_t ggml_block_size(GgmlType type);
int64_t ggml_type_size(GgmlType type);
// Whether dequantize() handles the type.
bool can_dequantize(GgmlType type);

// Dequantizes `n` elements (a multiple of the block size) from `src` into `dst`. The type must
// be one can_dequantize() accepts. Exposed for tests and for callers that stream rows.
void dequantize_row(GgmlType type, const uint8_t* src, float* dst, int64_t n);

// GGUF metadata value types, numbered as in the file.
enum class ValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};
const char* value_type_name(ValueType type);  // "uint32", "array", ...

// One metadata value: a scalar, a string, or an array of one element type (arrays may nest).
// A wrong-type access throws opine::Error (kFormat) naming the key and file.
class Value {
 public:
  ValueType type() const { return type_; }
  // "uint32", "string", "array[int32]", "array[array]".
  std::string type_name() const;
  // Where the value came from, for messages: "key 'llama.block_count' in /path/model.gguf".
  const std::string& where() const { return where_; }

  bool is_integer() const;  // any of the eight integer types
  bool is_float() const;    // float32 or float64
  bool is_string() const { return type_ == ValueType::kString; }
  bool is_bool() const { return type_ == ValueType::kBool; }
  bool is_array() const { return type_ == ValueType::kArray; }

  // Any integer type; uint64 above INT64_MAX is an error.
  int64_t as_int64() const;
  // Any integer type that is not negative.
  uint64_t as_uint64() const;
  // A float, or an integer converted.
  double as_double() const;
  bool as_bool() const;
  const std::string& as_string() const;

  // Arrays: the element type, the length, and the elements in the forms above.
  ValueType array_type() const;
  size_t size() const;
  std::vector<int64_t> as_int_array() const;
  std::vector<uint64_t> as_uint_array() const;
  std::vector<double> as_double_array() const;
  std::vector<bool> as_bool_array() const;
  const std::vector<std::string>& as_string_array() const;
  // Element i of any array as a Value (how to reach arrays of arrays).
  Value at(size_t i) const;

  // Short human form: the value, or an array's type, length and first `max_items` elements.
  std::string to_string(size_t max_items = 8) const;

 private:
  friend class File;
  friend class Parser;
  [[noreturn]] void type_error(const char* wanted) const;
  void require_array(const char* wanted) const;

  ValueType type_ = ValueType::kUint8;
  ValueType elem_type_ = ValueType::kUint8;  // arrays only
  std::string where_;
  // Integers and bools keep their bits in int_ (uint64 reinterpreted); floats widen to double.
  int64_t int_ = 0;
  double float_ = 0;
  std::string string_;
  // Array elements, in the member that fits the element type.
  std::vector<int64_t> ints_;
  std::vector<double> floats_;
  std::vector<std::string> strings_;
  std::vector<Value> values_;
};

struct TensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ggml order: ne[0] is the fastest-varying (row) dimension
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;  // absolute byte offset in the file
  uint64_t nbytes = 0;
  std::vector<int64_t> torch_shape() const;  // ne reversed
  int64_t numel() const;
};

class File {
 public:
  // Throws opine::Error: kIo when the file cannot be opened, kFormat when it is not valid GGUF.
  static File open(const std::string& path);

  uint32_t version() const { return version_; }
  const std::string& path() const { return file_->path(); }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the tensor data section

  bool has(const std::string& key) const { return metadata_.count(key) != 0; }
  // A missing key is an error naming it and the file.
  const Value& get(const std::string& key) const;
  // Keys in file order.
  const std::vector<std::string>& metadata_keys() const { return keys_; }

  // Typed look-ups: nullopt when the key is absent, an error when it has another type.
  std::optional<int64_t> get_int(const std::string& key) const;
  std::optional<double> get_float(const std::string& key) const;  // floats and integers
  std::optional<bool> get_bool(const std::string& key) const;
  std::optional<std::string> get_string(const std::string& key) const;
  std::optional<std::vector<std::string>> get_string_array(const std::string& key) const;
  std::optional<std::vector<int64_t>> get_int_array(const std::string& key) const;
  std::optional<std::vector<double>> get_float_array(const std::string& key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  bool has_tensor(const std::string& name) const { return tensor_index_.count(name) != 0; }
  // A missing name is an error naming it and the file.
  const TensorInfo& tensor(const std::string& name) const;

  // The tensor's stored bytes (nbytes of them), valid while any File copy lives.
  const uint8_t* tensor_data(const TensorInfo& info) const;
  // A float32 CPU tensor of info.torch_shape(). An unsupported type is an error naming the
  // tensor, its type and the file. Parallel over rows.
  at::Tensor dequantize(const TensorInfo& info) const;
  at::Tensor dequantize(const std::string& name) const { return dequantize(tensor(name)); }

  // Tensor counts per type name, e.g. {"F32": 61, "Q4_1": 210}.
  std::map<std::string, int64_t> type_counts() const;

 private:
  friend class Parser;
  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::string> keys_;
  std::unordered_map<std::string, Value> metadata_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace opine::gguf
