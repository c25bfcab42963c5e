#include "quant/bnb_format.h"

#include <charconv>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace opine::quant {

namespace {

const char* torch_dtype_name(at::ScalarType t) {
  if (t == at::kFloat) return "float32";
  if (t == at::kBFloat16) return "bfloat16";
  if (t == at::kHalf) return "float16";
  OPINE_CHECK(false, "no bitsandbytes name for dtype ", c10::toString(t));
}

at::ScalarType parse_torch_dtype(const std::string& name, const std::string& where) {
  if (name == "float32") return at::kFloat;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "float16") return at::kHalf;
  OPINE_CHECK_FORMAT(false, where, ": unknown dtype '", name, "'");
}

at::Tensor book_tensor(const float* values, int64_t n) {
  return at::from_blob(const_cast<float*>(values), {n}, at::kFloat).clone();
}

}  // namespace

std::vector<std::pair<std::string, at::Tensor>> to_bnb_state(const std::string& name, const QuantizedTensor& q) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  out.emplace_back(name, q.packed);
  out.emplace_back(name + ".absmax", q.absmax);
  out.emplace_back(name + ".quant_map", book_tensor(code_book(q.type).data(), 16));
  // The JSON exactly as bnb's json.dumps writes it (", " and ": " separators, shortest floats).
  std::string text = std::string("{\"quant_type\": \"") + quant_type_name(q.type) +
                     "\", \"blocksize\": " + std::to_string(q.block_size) + ", \"dtype\": \"" +
                     torch_dtype_name(q.dtype) + "\", \"shape\": [";
  for (size_t i = 0; i < q.shape.size(); ++i) text += (i ? ", " : "") + std::to_string(q.shape[i]);
  text += "]";
  if (q.nested()) {
    out.emplace_back(name + ".nested_absmax", q.nested_absmax);
    out.emplace_back(name + ".nested_quant_map", book_tensor(dynamic_map().data(), 256));
    char buf[64];
    const auto res = std::to_chars(buf, buf + sizeof(buf), static_cast<double>(q.offset));
    std::string offset(buf, res.ptr);
    if (offset.find_first_of(".en") == std::string::npos) offset += ".0";
    text += ", \"nested_blocksize\": " + std::to_string(kNestedBlockSize) +
            ", \"nested_dtype\": \"float32\", \"nested_offset\": " + offset;
  }
  text += "}";
  at::Tensor bytes = at::empty({int64_t(text.size())}, at::kByte);
  std::memcpy(bytes.data_ptr<uint8_t>(), text.data(), text.size());
  out.emplace_back(name + ".quant_state.bitsandbytes__" + quant_type_name(q.type), bytes);
  return out;
}

bool has_bnb_state(const std::string& name, const std::function<bool(const std::string&)>& has) {
  return has(name + ".quant_state.bitsandbytes__nf4") || has(name + ".quant_state.bitsandbytes__fp4");
}

QuantizedTensor from_bnb_state(const std::string& name, const std::function<at::Tensor(const std::string&)>& get) {
  at::Tensor state = get(name + ".quant_state.bitsandbytes__nf4");
  if (!state.defined()) state = get(name + ".quant_state.bitsandbytes__fp4");
  OPINE_CHECK_FORMAT(state.defined(), name, ": no bitsandbytes quant_state (", name,
                     ".quant_state.bitsandbytes__nf4 or __fp4)");
  const at::Tensor bytes = state.to(at::kCPU).contiguous();
  OPINE_CHECK_FORMAT(bytes.scalar_type() == at::kByte, name, ": quant_state must be uint8 bytes");
  const std::string text(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), bytes.numel());
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    OPINE_CHECK_FORMAT(false, name, ": quant_state is not JSON (", e.what(), ")");
  }
  QuantizedTensor q;
  try {
    q.type = parse_quant_type(j.at("quant_type").get<std::string>());
    q.block_size = j.at("blocksize").get<int64_t>();
    q.dtype = parse_torch_dtype(j.at("dtype").get<std::string>(), name);
    q.shape = j.at("shape").get<std::vector<int64_t>>();
    if (j.contains("nested_offset")) {
      OPINE_CHECK_FORMAT(j.value("nested_blocksize", int64_t{0}) == kNestedBlockSize, name,
                         ": nested block size must be ", kNestedBlockSize);
      q.offset = j.at("nested_offset").get<float>();
    }
  } catch (const nlohmann::json::exception& e) {
    OPINE_CHECK_FORMAT(false, name, ": quant_state misses a field (", e.what(), ")");
  }
  q.packed = get(name);
  q.absmax = get(name + ".absmax");
  OPINE_CHECK_FORMAT(q.packed.defined() && q.absmax.defined(), name, ": packed weight or ", name,
                     ".absmax missing");
  const at::Tensor map = get(name + ".quant_map");
  if (map.defined())
    OPINE_CHECK_FORMAT(map.to(at::kFloat).to(at::kCPU).equal(book_tensor(code_book(q.type).data(), 16)), name,
                       ".quant_map is not bitsandbytes' ", quant_type_name(q.type), " code book");
  if (j.contains("nested_offset")) {
    q.nested_absmax = get(name + ".nested_absmax");
    OPINE_CHECK_FORMAT(q.nested_absmax.defined(), name, ".nested_absmax missing");
    const at::Tensor nmap = get(name + ".nested_quant_map");
    if (nmap.defined())
      OPINE_CHECK_FORMAT(nmap.to(at::kFloat).to(at::kCPU).equal(book_tensor(dynamic_map().data(), 256)), name,
                         ".nested_quant_map is not bitsandbytes' dynamic map");
  }
  OPINE_CHECK_FORMAT(q.codes().numel() == (q.numel() + 1) / 2, name, ": ", q.codes().numel(),
                     " packed bytes do not fit shape ", at::IntArrayRef(q.shape));
  OPINE_CHECK_FORMAT(q.absmax.numel() == q.blocks(), name, ".absmax has ", q.absmax.numel(), " values, expected ",
                     q.blocks());
  return q;
}

}  // namespace opine::quant
