#include "core/error.h"

namespace opine {

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kUser: return "error";
    case ErrorKind::kConfig: return "config error";
    case ErrorKind::kFormat: return "format error";
    case ErrorKind::kIo: return "I/O error";
    case ErrorKind::kInternal: return "internal error";
  }
  return "error";
}

namespace detail {
void throw_internal(const char* file, int line, const char* condition, const std::string& message) {
  throw Error(ErrorKind::kInternal, concat(file, ":", line, ": assertion `", condition, "` failed",
                                           message.empty() ? "" : ": ", message));
}
}  // namespace detail

}  // namespace opine
