#include "models/spm_proto.h"

#include <functional>

#include "core/error.h"

namespace opine::models::spm_proto {

namespace {

// Calls `field(number, wire_type, value, bytes)` for every field of `msg`: `value` for varints,
// `bytes` for length-delimited fields.
void visit(std::string_view msg, const std::string& where,
           const std::function<void(uint32_t, int, uint64_t, std::string_view)>& field) {
  size_t i = 0;
  auto read_varint = [&]() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      OPINE_CHECK_FORMAT(i < msg.size(), where, ": truncated protobuf");
      const auto b = static_cast<uint8_t>(msg[i++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    throw Error(ErrorKind::kFormat, where + ": malformed protobuf varint");
  };
  auto skip = [&](size_t n) {
    OPINE_CHECK_FORMAT(n <= msg.size() - i, where, ": truncated protobuf");
    i += n;
  };
  while (i < msg.size()) {
    const uint64_t key = read_varint();
    const auto number = static_cast<uint32_t>(key >> 3);
    switch (key & 7) {
      case 0:
        field(number, 0, read_varint(), {});
        break;
      case 1:
        skip(8);
        break;
      case 2: {
        const uint64_t len = read_varint();
        OPINE_CHECK_FORMAT(len <= msg.size() - i, where, ": truncated protobuf");
        field(number, 2, 0, msg.substr(i, len));
        i += len;
        break;
      }
      case 5:
        skip(4);
        break;
      default:
        throw Error(ErrorKind::kFormat, where + ": unexpected protobuf wire type");
    }
  }
}

}  // namespace

std::optional<std::string_view> bytes(std::string_view msg, uint32_t number, const std::string& where) {
  std::optional<std::string_view> found;
  visit(msg, where, [&](uint32_t n, int wire, uint64_t, std::string_view b) {
    if (n == number && wire == 2) found = b;
  });
  return found;
}

std::vector<std::string_view> all_bytes(std::string_view msg, uint32_t number, const std::string& where) {
  std::vector<std::string_view> found;
  visit(msg, where, [&](uint32_t n, int wire, uint64_t, std::string_view b) {
    if (n == number && wire == 2) found.push_back(b);
  });
  return found;
}

std::optional<uint64_t> varint(std::string_view msg, uint32_t number, const std::string& where) {
  std::optional<uint64_t> found;
  visit(msg, where, [&](uint32_t n, int wire, uint64_t v, std::string_view) {
    if (n == number && wire == 0) found = v;
  });
  return found;
}

}  // namespace opine::models::spm_proto
