#include "core/tensorboard.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/host.h"

namespace opine {
namespace fs = std::filesystem;

namespace tensorboard {
namespace {

// The reflected table of polynomial 0x82F63B78 (Castagnoli).
constexpr std::array<uint32_t, 256> make_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = make_table();

// ---- protobuf wire format: what tensorflow.Event needs -----------------------------------------
enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_key(std::string& out, uint32_t field, WireType type) {
  put_varint(out, (uint64_t{field} << 3) | type);
}
template <class T>
void put_fixed(std::string& out, T value) {  // little-endian host
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}
void put_bytes(std::string& out, uint32_t field, const std::string& bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out += bytes;
}

// tensorflow.Event fields: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string),
// summary = 5 (Summary), session_log = 7 (SessionLog). wall_time and step are plain proto3
// fields (omitted at 0); the rest are members of a oneof (always written once set).
std::string event(double wall_time, int64_t step) {
  std::string out;
  if (wall_time != 0.0 || std::signbit(wall_time)) {
    put_key(out, 1, kFixed64);
    put_fixed(out, wall_time);
  }
  if (step != 0) {
    put_key(out, 2, kVarint);
    put_varint(out, static_cast<uint64_t>(step));  // negative: ten bytes, two's complement
  }
  return out;
}

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) c = kCrcTable[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t c = crc32c(data, size);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string tf_record(const std::string& data) {
  std::string out;
  const uint64_t length = data.size();
  put_fixed(out, length);
  put_fixed(out, masked_crc32c(out.data(), sizeof length));
  out += data;
  put_fixed(out, masked_crc32c(data.data(), data.size()));
  return out;
}

std::string file_version_event(double wall_time, const std::string& version) {
  std::string out = event(wall_time, 0);
  put_bytes(out, 3, version);
  return out;
}

std::string scalar_event(double wall_time, int64_t step, const std::string& tag, float value) {
  // Summary.Value: tag = 1 (string), simple_value = 2 (float, in a oneof).
  std::string v;
  if (!tag.empty()) put_bytes(v, 1, tag);
  put_key(v, 2, kFixed32);
  put_fixed(v, value);
  std::string summary;  // Summary: repeated Value value = 1
  put_bytes(summary, 1, v);
  std::string out = event(wall_time, step);
  put_bytes(out, 5, summary);
  return out;
}

std::string session_start_event(double wall_time, int64_t step) {
  std::string log;  // SessionLog: status = 1 (enum; START = 1)
  put_key(log, 1, kVarint);
  put_varint(log, 1);
  std::string out = event(wall_time, step);
  put_bytes(out, 7, log);
  return out;
}

}  // namespace tensorboard

namespace {
double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

EventWriter::EventWriter(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  OPINE_CHECK_KIND(!ec, ErrorKind::kIo, "cannot create the TensorBoard folder ", dir.string(), ": ",
                   ec.message());
  const double now = now_seconds();
  const std::string base =
      "events.out.tfevents." + std::to_string(static_cast<int64_t>(now)) + "." + host_name();
  path_ = dir / base;
  for (int n = 1; fs::exists(path_); ++n) path_ = dir / (base + "." + std::to_string(n));
  out_.open(path_, std::ios::binary | std::ios::trunc);
  OPINE_CHECK_KIND(out_.good(), ErrorKind::kIo, "cannot create ", path_.string());
  write_record(tensorboard::file_version_event(now, "brain.Event:2"));
  flush();
}

EventWriter::~EventWriter() { out_.flush(); }

void EventWriter::write_record(const std::string& data) {
  const std::string record = tensorboard::tf_record(data);
  out_.write(record.data(), static_cast<std::streamsize>(record.size()));
  OPINE_CHECK_KIND(out_.good(), ErrorKind::kIo, "cannot write ", path_.string());
}

void EventWriter::add_scalar(const std::string& tag, double value, int64_t step) {
  write_record(tensorboard::scalar_event(now_seconds(), step, tag, static_cast<float>(value)));
}

void EventWriter::add_session_start(int64_t step) {
  write_record(tensorboard::session_start_event(now_seconds(), step));
}

void EventWriter::flush() {
  out_.flush();
  OPINE_CHECK_KIND(out_.good(), ErrorKind::kIo, "cannot write ", path_.string());
}

}  // namespace opine
