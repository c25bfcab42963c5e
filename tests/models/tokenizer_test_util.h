// What the tokenizer parity tests share: reading the reference files that
// tests/reference/*tokenizer_reference.py write (texts, and each tokenizer's ids in one binary file).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace opine::test {

inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::string ids_text(const std::vector<int64_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? " " : "") + std::to_string(ids[i]);
  return s + "]";
}

// NAME.ids: "OPTKIDS1", uint32 count, uint32 width, uint32 offsets[count + 1], ids (width bytes).
inline std::vector<std::vector<int64_t>> read_ids(const std::filesystem::path& path) {
  const std::string raw = slurp(path);
  EXPECT_EQ(raw.compare(0, 8, "OPTKIDS1"), 0) << path;
  uint32_t count = 0, width = 0;
  std::memcpy(&count, raw.data() + 8, 4);
  std::memcpy(&width, raw.data() + 12, 4);
  std::vector<uint32_t> offsets(count + 1);
  std::memcpy(offsets.data(), raw.data() + 16, offsets.size() * 4);
  const auto* ids = reinterpret_cast<const unsigned char*>(raw.data()) + 16 + offsets.size() * 4;
  std::vector<std::vector<int64_t>> out(count);
  for (uint32_t i = 0; i < count; ++i) {
    for (uint32_t k = offsets[i]; k < offsets[i + 1]; ++k) {
      int64_t v = 0;
      for (uint32_t b = 0; b < width; ++b) v |= static_cast<int64_t>(ids[k * width + b]) << (8 * b);
      out[i].push_back(v);
    }
  }
  return out;
}

}  // namespace opine::test
