#include "core/hdf5.h"

#include "core/host.h"

#include <unistd.h>

#include <cstdlib>

#include "core/error.h"

namespace opine::h5 {

namespace {
herr_t collect(unsigned n, const H5E_error2_t* e, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (!out->empty()) *out += "; ";
  *out += e->func_name ? e->func_name : "?";
  *out += ": ";
  *out += e->desc ? e->desc : "?";
  return 0;
}
}  // namespace

std::string take_error_stack() {
  std::string out;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect, &out);
  H5Eclear2(H5E_DEFAULT);
  return out.empty() ? "no HDF5 message" : out;
}

std::string process_description() {
  std::string rank = "0";
  for (const char* var : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"})
    if (const char* v = std::getenv(var); v && *v) {
      rank = v;
      break;
    }
  return "rank " + rank + " on " + host_name();
}

void quiet() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

void fail(const char* file, int line, const char* call, const std::string& what) {
  const std::string stack = take_error_stack();
  throw Error(ErrorKind::kIo, detail::concat("HDF5 failed on ", what, " (", process_description(), "): ", stack,
                                             " [", call, " at ", file, ":", line, "]"));
}

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    this->~Handle();
    id_ = o.id_;
    close_ = o.close_;
    o.id_ = H5I_INVALID_HID;
  }
  return *this;
}

Handle::~Handle() {
  if (id_ >= 0 && close_) close_(id_);
}

}  // namespace opine::h5
