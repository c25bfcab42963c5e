// Thin RAII over the HDF5 C library. Every call goes through OPINE_H5, which turns a failure
// into an opine::Error carrying file:line, the process (rank, host) and HDF5's own message
// (its error stack, which is otherwise printed to stderr).
#pragma once

#include <hdf5.h>

#include <string>

namespace opine::h5 {

// HDF5's error stack as one line; clears it.
std::string take_error_stack();
// "rank R on HOST": the launcher's rank variables (MPI, PMI, Slurm) before any runtime exists.
std::string process_description();
// Silences HDF5's automatic error printing for the process (errors come back through OPINE_H5).
void quiet();

[[noreturn]] void fail(const char* file, int line, const char* call, const std::string& what);

// An hid_t closed by the matching H5?close on destruction.
class Handle {
 public:
  Handle() = default;
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle();
  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  herr_t (*close_)(hid_t) = nullptr;
};

}  // namespace opine::h5

// Evaluates an HDF5 call; a negative result throws with the call, `what` (the file or object)
// and HDF5's message.
#define OPINE_H5(call, what)                                                  \
  ([&]() {                                                                    \
    auto opine_h5_result = (call);                                            \
    if (opine_h5_result < 0) ::opine::h5::fail(__FILE__, __LINE__, #call, what); \
    return opine_h5_result;                                                   \
  }())
