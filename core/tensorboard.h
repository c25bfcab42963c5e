// TensorBoard event files without TensorFlow or protobuf: scalars written as tensorflow.Event
// protobufs (encoded by hand, proto3 rules) framed as TFRecords:
//
//   uint64 length | uint32 masked crc32c(length) | data | uint32 masked crc32c(data)
//
// all little-endian. The first record says file_version "brain.Event:2", as TensorFlow's and
// PyTorch's writers do. TensorBoard reads every events.out.tfevents.* file of a folder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace opine {

class EventWriter {
 public:
  // Creates `dir` and dir/events.out.tfevents.<unix time>.<host> (".<n>" added when that name is
  // taken, e.g. a resumed run started in the same second).
  explicit EventWriter(const std::filesystem::path& dir);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // `value` is stored as float32 (TensorBoard's simple_value).
  void add_scalar(const std::string& tag, double value, int64_t step);
  // Marks a (re)start at `step`: TensorBoard then drops the events at this step and later that
  // earlier files of the folder hold (a resumed run's steps replace the ones logged after the
  // checkpoint it resumed from).
  void add_session_start(int64_t step);
  void flush();

  const std::filesystem::path& path() const { return path_; }

 private:
  void write_record(const std::string& data);

  std::filesystem::path path_;
  std::ofstream out_;
};

// The pieces, for tests.
namespace tensorboard {

// CRC-32C (Castagnoli), as TFRecord uses it.
uint32_t crc32c(const void* data, size_t size);
// TFRecord's masked CRC: rotated right by 15 bits plus 0xa282ead8.
uint32_t masked_crc32c(const void* data, size_t size);
// `data` framed as one TFRecord.
std::string tf_record(const std::string& data);
// tensorflow.Event protobufs (fields at their proto3 defaults are omitted, as protobuf does).
std::string file_version_event(double wall_time, const std::string& version);
std::string scalar_event(double wall_time, int64_t step, const std::string& tag, float value);
std::string session_start_event(double wall_time, int64_t step);

}  // namespace tensorboard
}  // namespace opine
