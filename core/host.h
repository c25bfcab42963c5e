// This machine's name, for messages, manifests and file names.
#pragma once

#include <unistd.h>

#include <string>

namespace opine {

// gethostname(), or "unknown" when it fails or is empty.
inline std::string host_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || !host[0]) return "unknown";
  return host;
}

}  // namespace opine
