#include "models/gguf.h"

#include <ATen/Parallel.h>

#include <bit>
#include <cstring>
#include <limits>
#include <map>
#include <unordered_set>

#include "core/error.h"

namespace opine::gguf {

static_assert(std::endian::native == std::endian::little,
              "the GGUF reader reads little-endian fields in place");

namespace {

constexpr uint32_t kMaxDims = 4;             // GGML_MAX_DIMS
constexpr int kMaxArrayNesting = 8;          // deeper is corruption, not a model
constexpr uint64_t kDefaultAlignment = 32;   // when general.alignment is absent
constexpr int64_t kGrainElements = 1 << 16;  // per parallel task: enough to amortise scheduling

// The fewest bytes one entry can take, to bound counts by what is left of the file.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;              // key length, type, a one-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;  // name length, n_dims, type, offset

size_t value_size(ValueType type) {
  switch (type) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kBool:
      return 1;
    case ValueType::kUint16:
    case ValueType::kInt16:
      return 2;
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kFloat32:
      return 4;
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kFloat64:
      return 8;
    case ValueType::kString:
      return 8;  // at least its length field
    case ValueType::kArray:
      return 12;  // at least its element type and count
  }
  return 1;
}

bool is_integer_type(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kUint16:
    case ValueType::kInt16:
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kUint64:
    case ValueType::kInt64:
      return true;
    default:
      return false;
  }
}

bool is_float_type(ValueType t) { return t == ValueType::kFloat32 || t == ValueType::kFloat64; }

// A fixed-size scalar at p, widened: integers and bools to int64 (uint64 keeps its bits).
int64_t load_int(ValueType t, const uint8_t* p) {
  switch (t) {
    case ValueType::kUint8:
    case ValueType::kBool:
      return p[0];
    case ValueType::kInt8:
      return static_cast<int8_t>(p[0]);
    case ValueType::kUint16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case ValueType::kInt16: {
      int16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case ValueType::kUint32: {
      uint32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case ValueType::kInt32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    default: {
      int64_t v;
      std::memcpy(&v, p, 8);
      return v;
    }
  }
}

double load_float(ValueType t, const uint8_t* p) {
  if (t == ValueType::kFloat32) {
    float v;
    std::memcpy(&v, p, 4);
    return v;
  }
  double v;
  std::memcpy(&v, p, 8);
  return v;
}

std::string printable_magic(const uint8_t* p, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (p[i] >= 0x20 && p[i] < 0x7f) {
      out += static_cast<char>(p[i]);
    } else {
      static const char* kHex = "0123456789abcdef";
      out += "\\x";
      out += kHex[p[i] >> 4];
      out += kHex[p[i] & 15];
    }
  }
  return out;
}

}  // namespace

const char* value_type_name(ValueType type) {
  switch (type) {
    case ValueType::kUint8:
      return "uint8";
    case ValueType::kInt8:
      return "int8";
    case ValueType::kUint16:
      return "uint16";
    case ValueType::kInt16:
      return "int16";
    case ValueType::kUint32:
      return "uint32";
    case ValueType::kInt32:
      return "int32";
    case ValueType::kFloat32:
      return "float32";
    case ValueType::kBool:
      return "bool";
    case ValueType::kString:
      return "string";
    case ValueType::kArray:
      return "array";
    case ValueType::kUint64:
      return "uint64";
    case ValueType::kInt64:
      return "int64";
    case ValueType::kFloat64:
      return "float64";
  }
  return "unknown";
}

// ---- Value -------------------------------------------------------------------------------

std::string Value::type_name() const {
  if (type_ != ValueType::kArray) return value_type_name(type_);
  return detail::concat("array[", value_type_name(elem_type_), "]");
}

bool Value::is_integer() const { return is_integer_type(type_); }
bool Value::is_float() const { return is_float_type(type_); }

void Value::type_error(const char* wanted) const {
  throw Error(ErrorKind::kFormat, detail::concat(where_, ": expected ", wanted, ", found ", type_name()));
}

int64_t Value::as_int64() const {
  if (!is_integer()) type_error("an integer");
  OPINE_CHECK_FORMAT(type_ != ValueType::kUint64 || int_ >= 0, where_, ": value ",
                     static_cast<uint64_t>(int_), " does not fit in int64");
  return int_;
}

uint64_t Value::as_uint64() const {
  if (!is_integer()) type_error("an integer");
  OPINE_CHECK_FORMAT(type_ == ValueType::kUint64 || int_ >= 0, where_, ": expected a value >= 0, found ",
                     int_);
  return static_cast<uint64_t>(int_);
}

double Value::as_double() const {
  if (is_float()) return float_;
  if (type_ == ValueType::kUint64) return static_cast<double>(static_cast<uint64_t>(int_));
  if (is_integer()) return static_cast<double>(int_);
  type_error("a number");
}

bool Value::as_bool() const {
  if (type_ != ValueType::kBool) type_error("a bool");
  return int_ != 0;
}

const std::string& Value::as_string() const {
  if (type_ != ValueType::kString) type_error("a string");
  return string_;
}

void Value::require_array(const char* wanted) const {
  if (type_ != ValueType::kArray) type_error(wanted);
}

ValueType Value::array_type() const {
  require_array("an array");
  return elem_type_;
}

size_t Value::size() const {
  require_array("an array");
  switch (elem_type_) {
    case ValueType::kString:
      return strings_.size();
    case ValueType::kArray:
      return values_.size();
    case ValueType::kFloat32:
    case ValueType::kFloat64:
      return floats_.size();
    default:
      return ints_.size();
  }
}

std::vector<int64_t> Value::as_int_array() const {
  if (!is_array() || !is_integer_type(elem_type_)) type_error("an array of integers");
  if (elem_type_ == ValueType::kUint64) {
    for (size_t i = 0; i < ints_.size(); ++i)
      OPINE_CHECK_FORMAT(ints_[i] >= 0, where_, "[", i, "]: value ", static_cast<uint64_t>(ints_[i]),
                         " does not fit in int64");
  }
  return ints_;
}

std::vector<uint64_t> Value::as_uint_array() const {
  if (!is_array() || !is_integer_type(elem_type_)) type_error("an array of integers");
  std::vector<uint64_t> out(ints_.size());
  for (size_t i = 0; i < ints_.size(); ++i) {
    OPINE_CHECK_FORMAT(elem_type_ == ValueType::kUint64 || ints_[i] >= 0, where_, "[", i,
                       "]: expected a value >= 0, found ", ints_[i]);
    out[i] = static_cast<uint64_t>(ints_[i]);
  }
  return out;
}

std::vector<double> Value::as_double_array() const {
  if (!is_array()) type_error("an array of numbers");
  if (is_float_type(elem_type_)) return floats_;
  if (!is_integer_type(elem_type_)) type_error("an array of numbers");
  std::vector<double> out(ints_.size());
  for (size_t i = 0; i < ints_.size(); ++i)
    out[i] = elem_type_ == ValueType::kUint64 ? static_cast<double>(static_cast<uint64_t>(ints_[i]))
                                              : static_cast<double>(ints_[i]);
  return out;
}

std::vector<bool> Value::as_bool_array() const {
  if (!is_array() || elem_type_ != ValueType::kBool) type_error("an array of bools");
  std::vector<bool> out(ints_.size());
  for (size_t i = 0; i < ints_.size(); ++i) out[i] = ints_[i] != 0;
  return out;
}

const std::vector<std::string>& Value::as_string_array() const {
  if (!is_array() || elem_type_ != ValueType::kString) type_error("an array of strings");
  return strings_;
}

Value Value::at(size_t i) const {
  const size_t n = size();
  OPINE_CHECK_FORMAT(i < n, where_, ": index ", i, " out of range for an array of ", n);
  if (elem_type_ == ValueType::kArray) return values_[i];
  Value v;
  v.type_ = elem_type_;
  v.where_ = detail::concat(where_, "[", i, "]");
  if (elem_type_ == ValueType::kString) {
    v.string_ = strings_[i];
  } else if (is_float_type(elem_type_)) {
    v.float_ = floats_[i];
  } else {
    v.int_ = ints_[i];
  }
  return v;
}

std::string Value::to_string(size_t max_items) const {
  std::ostringstream out;
  switch (type_) {
    case ValueType::kString:
      out << '"' << string_ << '"';
      break;
    case ValueType::kBool:
      out << (int_ ? "true" : "false");
      break;
    case ValueType::kFloat32:
    case ValueType::kFloat64:
      out << float_;
      break;
    case ValueType::kUint64:
      out << static_cast<uint64_t>(int_);
      break;
    case ValueType::kArray: {
      const size_t n = size();
      out << type_name() << "(" << n << ")[";
      for (size_t i = 0; i < n && i < max_items; ++i) out << (i ? ", " : "") << at(i).to_string(max_items);
      out << (n > max_items ? ", ...]" : "]");
      break;
    }
    default:
      out << int_;
      break;
  }
  return out.str();
}

// ---- TensorInfo --------------------------------------------------------------------------

std::vector<int64_t> TensorInfo::torch_shape() const { return {ne.rbegin(), ne.rend()}; }

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;  // open() checked that this cannot overflow
  return n;
}

// ---- Parser ------------------------------------------------------------------------------

// Reads the header of a mapped file into a File; every read is bounds-checked, so a corrupt
// file ends in an opine::Error naming it and what was being read.
class Parser {
 public:
  explicit Parser(File& file)
      : file_(file), data_(file.file_->data()), size_(file.file_->size()), path_(file.file_->path()) {}

  void parse() {
    read_preamble();
    const uint64_t tensor_count = read<uint64_t>("the tensor count");
    const uint64_t kv_count = read<uint64_t>("the metadata count");
    OPINE_CHECK_FORMAT(kv_count <= remaining() / kMinKvBytes, path_, ": metadata count ", kv_count,
                       " cannot fit in the remaining ", remaining(), " bytes (corrupt or truncated header)");
    for (uint64_t i = 0; i < kv_count; ++i) read_kv(i);
    read_alignment();
    OPINE_CHECK_FORMAT(tensor_count <= remaining() / kMinTensorInfoBytes, path_, ": tensor count ",
                       tensor_count, " cannot fit in the remaining ", remaining(),
                       " bytes (corrupt or truncated header)");
    std::vector<uint64_t> relative(tensor_count);
    file_.tensors_.reserve(tensor_count);
    for (uint64_t i = 0; i < tensor_count; ++i) relative[i] = read_tensor_info(i);
    // The data section starts at the next multiple of the alignment after the header.
    const uint64_t a = file_.alignment_;
    file_.data_offset_ = (pos_ + a - 1) / a * a;
    for (size_t i = 0; i < file_.tensors_.size(); ++i) place_tensor(file_.tensors_[i], relative[i]);
  }

 private:
  size_t remaining() const { return size_ - pos_; }

  void need(uint64_t n, const std::string& what) const {
    OPINE_CHECK_FORMAT(n <= remaining(), path_, ": truncated GGUF file: ", what, " needs ", n,
                       " bytes at offset ", pos_, " but the file has ", remaining(), " left");
  }

  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const std::string& what) {
    const uint64_t n = read<uint64_t>(what);
    OPINE_CHECK_FORMAT(n <= remaining(), path_, ": ", what, " claims a string of ", n, " bytes at offset ",
                       pos_, " but the file has ", remaining(), " left");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }

  ValueType read_type(const std::string& label) {
    const uint32_t t = read<uint32_t>(label);
    OPINE_CHECK_FORMAT(t <= static_cast<uint32_t>(ValueType::kFloat64), path_, ": ", label,
                       ": unknown metadata value type ", t);
    return static_cast<ValueType>(t);
  }

  void read_preamble() {
    OPINE_CHECK_FORMAT(size_ >= 4 && std::memcmp(data_, "GGUF", 4) == 0, path_, ": not a GGUF file (magic '",
                       printable_magic(data_, std::min<size_t>(size_, 4)), "', expected 'GGUF')");
    pos_ = 4;
    const uint32_t version = read<uint32_t>("the version");
    // A big-endian file holds its small version number in the top byte.
    const uint32_t swapped = __builtin_bswap32(version);
    OPINE_CHECK_FORMAT(!(version > 0xFFFF && (swapped == 2 || swapped == 3)), path_,
                       ": big-endian GGUF (version ", swapped, ") is not supported");
    OPINE_CHECK_FORMAT(version == 2 || version == 3, path_, ": unsupported GGUF version ", version,
                       " (opine reads versions 2 and 3)");
    file_.version_ = version;
  }

  void read_kv(uint64_t index) {
    const std::string key = read_string(detail::concat("metadata key #", index));
    const std::string label = detail::concat("key '", key, "'");
    OPINE_CHECK_FORMAT(!file_.metadata_.count(key), path_, ": duplicate metadata key '", key, "'");
    const ValueType type = read_type(label);
    Value value = read_value(type, label, 0);
    file_.keys_.push_back(key);
    file_.metadata_.emplace(key, std::move(value));
  }

  // `label` names the value in messages ("key 'x'", "key 'x'[3]"); the Value keeps it with the
  // file's path for its own errors.
  Value read_value(ValueType type, const std::string& label, int depth) {
    Value v;
    v.type_ = type;
    v.where_ = detail::concat(label, " in ", path_);
    if (type == ValueType::kString) {
      v.string_ = read_string(label);
    } else if (type == ValueType::kArray) {
      read_array(v, label, depth);
    } else {
      need(value_size(type), label);
      if (is_float_type(type)) {
        v.float_ = load_float(type, data_ + pos_);
      } else {
        v.int_ = load_int(type, data_ + pos_);
      }
      pos_ += value_size(type);
    }
    return v;
  }

  void read_array(Value& v, const std::string& label, int depth) {
    OPINE_CHECK_FORMAT(depth < kMaxArrayNesting, path_, ": ", label, ": arrays nested deeper than ",
                       kMaxArrayNesting, " levels");
    v.elem_type_ = read_type(label);
    const uint64_t count = read<uint64_t>(label);
    const size_t elem = value_size(v.elem_type_);
    OPINE_CHECK_FORMAT(count <= remaining() / elem, path_, ": ", label, ": array of ", count, " ",
                       value_type_name(v.elem_type_), " elements cannot fit in the remaining ", remaining(),
                       " bytes");
    if (v.elem_type_ == ValueType::kString) {
      v.strings_.reserve(count);
      for (uint64_t i = 0; i < count; ++i) v.strings_.push_back(read_string(label));
    } else if (v.elem_type_ == ValueType::kArray) {
      v.values_.reserve(count);
      // Each element is an array body (element type, count, items) with no type tag of its own.
      for (uint64_t i = 0; i < count; ++i)
        v.values_.push_back(read_value(ValueType::kArray, detail::concat(label, "[", i, "]"), depth + 1));
    } else if (is_float_type(v.elem_type_)) {
      v.floats_.resize(count);
      for (uint64_t i = 0; i < count; ++i) v.floats_[i] = load_float(v.elem_type_, data_ + pos_ + i * elem);
      pos_ += count * elem;
    } else {
      v.ints_.resize(count);
      for (uint64_t i = 0; i < count; ++i) v.ints_[i] = load_int(v.elem_type_, data_ + pos_ + i * elem);
      pos_ += count * elem;
    }
  }

  void read_alignment() {
    file_.alignment_ = kDefaultAlignment;
    auto it = file_.metadata_.find("general.alignment");
    if (it == file_.metadata_.end()) return;
    const Value& v = it->second;
    OPINE_CHECK_FORMAT(v.is_integer(), v.where(), ": expected an integer, found ", v.type_name());
    const uint64_t a = v.as_uint64();
    OPINE_CHECK_FORMAT(a > 0 && std::has_single_bit(a) && a <= (1u << 30), v.where(), ": alignment ", a,
                       " is not a power of two (up to 2^30)");
    file_.alignment_ = a;
  }

  // Reads one tensor info; returns its offset relative to the data section.
  uint64_t read_tensor_info(uint64_t index) {
    TensorInfo t;
    t.name = read_string(detail::concat("the name of tensor #", index));
    const std::string label = detail::concat("tensor '", t.name, "'");
    const std::string where = detail::concat(path_, ": ", label);
    OPINE_CHECK_FORMAT(!file_.tensor_index_.count(t.name), path_, ": duplicate tensor name '", t.name, "'");
    const uint32_t n_dims = read<uint32_t>(label);
    OPINE_CHECK_FORMAT(n_dims <= kMaxDims, where, " has ", n_dims, " dimensions (at most ", kMaxDims, ")");
    int64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const int64_t n = read<int64_t>(label);
      OPINE_CHECK_FORMAT(n >= 0, where, ": negative dimension ne[", d, "] = ", n);
      OPINE_CHECK_FORMAT(n == 0 || numel <= std::numeric_limits<int64_t>::max() / n, where,
                         ": element count overflows");
      numel *= n;
      t.ne.push_back(n);
    }
    const uint32_t type = read<uint32_t>(label);
    OPINE_CHECK_FORMAT(ggml_type_known(type), where, ": unknown ggml type id ", type);
    t.type = static_cast<GgmlType>(type);
    const uint64_t offset = read<uint64_t>(label);

    const int64_t block = ggml_block_size(t.type), size = ggml_type_size(t.type);
    const int64_t row = t.ne.empty() ? 1 : t.ne[0];
    OPINE_CHECK_FORMAT(row % block == 0, where, " (", ggml_type_name(t.type), "): row length ne[0] = ", row,
                       " is not a multiple of the block size ", block);
    const uint64_t n_blocks = static_cast<uint64_t>(numel / block);
    OPINE_CHECK_FORMAT(n_blocks <= std::numeric_limits<uint64_t>::max() / size, where,
                       ": byte size overflows");
    t.nbytes = n_blocks * static_cast<uint64_t>(size);
    file_.tensor_index_.emplace(t.name, file_.tensors_.size());
    file_.tensors_.push_back(std::move(t));
    return offset;
  }

  void place_tensor(TensorInfo& t, uint64_t relative) {
    const std::string where = detail::concat(path_, ": tensor '", t.name, "'");
    OPINE_CHECK_FORMAT(relative % file_.alignment_ == 0, where, ": data offset ", relative,
                       " is not a multiple of the alignment ", file_.alignment_);
    const uint64_t start = file_.data_offset_;
    // Overflow-safe form of start + relative + nbytes <= size.
    OPINE_CHECK_FORMAT(start <= size_ && relative <= size_ - start && t.nbytes <= size_ - start - relative,
                       where, ": ", t.nbytes, " bytes at data offset ", relative, " (data section at ", start,
                       ") run past the end of the file (", size_, " bytes; truncated?)");
    t.offset = start + relative;
  }

  File& file_;
  const uint8_t* data_;
  size_t size_;
  const std::string& path_;
  size_t pos_ = 0;
};

// ---- File --------------------------------------------------------------------------------

File File::open(const std::string& path) {
  File file;
  file.file_ = MappedFile::open(path);
  Parser(file).parse();
  return file;
}

const Value& File::get(const std::string& key) const {
  auto it = metadata_.find(key);
  OPINE_CHECK_FORMAT(it != metadata_.end(), path(), ": no metadata key '", key, "'");
  return it->second;
}

std::optional<int64_t> File::get_int(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return get(key).as_int64();
}

std::optional<double> File::get_float(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return get(key).as_double();
}

std::optional<bool> File::get_bool(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return get(key).as_bool();
}

std::optional<std::string> File::get_string(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return get(key).as_string();
}

std::optional<std::vector<std::string>> File::get_string_array(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return get(key).as_string_array();
}

std::optional<std::vector<int64_t>> File::get_int_array(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return get(key).as_int_array();
}

std::optional<std::vector<double>> File::get_float_array(const std::string& key) const {
  if (!has(key)) return std::nullopt;
  return get(key).as_double_array();
}

const TensorInfo& File::tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  OPINE_CHECK_FORMAT(it != tensor_index_.end(), path(), ": no tensor '", name, "'");
  return tensors_[it->second];
}

const uint8_t* File::tensor_data(const TensorInfo& info) const {
  OPINE_ASSERT(info.offset <= file_->size() && info.nbytes <= file_->size() - info.offset, "tensor '",
               info.name, "' does not belong to ", path());
  return file_->data() + info.offset;
}

at::Tensor File::dequantize(const TensorInfo& info) const {
  OPINE_CHECK_FORMAT(can_dequantize(info.type), path(), ": tensor '", info.name, "' has type ",
                     ggml_type_name(info.type),
                     ", which opine cannot dequantize (it reads F32, F16, BF16, F64, I8-I64, Q4_0, "
                     "Q4_1, Q5_0, Q5_1, Q8_0, Q2_K-Q6_K and Q8_K)");
  const uint8_t* src = tensor_data(info);
  at::Tensor out = at::empty(info.torch_shape(), at::kFloat);
  const int64_t n = info.numel();
  if (n == 0) return out;
  const int64_t row = info.ne.empty() ? 1 : info.ne[0];
  const int64_t rows = n / row;
  const int64_t row_bytes = row / ggml_block_size(info.type) * ggml_type_size(info.type);
  float* dst = out.data_ptr<float>();
  const GgmlType type = info.type;
  // Rows are contiguous in both source and output, so a chunk of rows is one call.
  at::parallel_for(0, rows, std::max<int64_t>(1, kGrainElements / row), [&](int64_t begin, int64_t end) {
    dequantize_row(type, src + begin * row_bytes, dst + begin * row, (end - begin) * row);
  });
  return out;
}

std::map<std::string, int64_t> File::type_counts() const {
  std::map<std::string, int64_t> counts;
  for (const TensorInfo& t : tensors_) ++counts[ggml_type_name(t.type)];
  return counts;
}

}  // namespace opine::gguf
