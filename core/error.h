// Errors and the two check macros.
//
// OPINE_CHECK reports a user mistake (bad file, bad key, bad flag): it throws a typed
// opine::Error that the command line prints without a stack trace. OPINE_ASSERT guards an
// internal invariant: a failure is a bug in opine and carries file:line.
// Library code never exits; only launch/main.cpp turns an error into an exit status.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace opine {

enum class ErrorKind {
  kUser,      // wrong flag, value or combination
  kConfig,    // a configuration key or value
  kFormat,    // a file that is corrupt, truncated or not what it claims to be
  kIo,        // a file that cannot be opened, read or written
  kInternal,  // a bug in opine
};

const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
[[noreturn]] void throw_internal(const char* file, int line, const char* condition,
                                 const std::string& message);
}  // namespace detail

}  // namespace opine

// Throws opine::Error of the given kind when `cond` is false; the rest is streamed into the message.
#define OPINE_CHECK_KIND(cond, kind, ...)                                           \
  do {                                                                              \
    if (!(cond)) throw ::opine::Error((kind), ::opine::detail::concat(__VA_ARGS__)); \
  } while (0)

#define OPINE_CHECK(cond, ...) OPINE_CHECK_KIND(cond, ::opine::ErrorKind::kUser, __VA_ARGS__)
#define OPINE_CHECK_FORMAT(cond, ...) \
  OPINE_CHECK_KIND(cond, ::opine::ErrorKind::kFormat, __VA_ARGS__)

// An internal invariant; a failure is a bug in opine.
#define OPINE_ASSERT(cond, ...)                                                          \
  do {                                                                                   \
    if (!(cond))                                                                         \
      ::opine::detail::throw_internal(__FILE__, __LINE__, #cond,                         \
                                      ::opine::detail::concat("" __VA_OPT__(, ) __VA_ARGS__)); \
  } while (0)
