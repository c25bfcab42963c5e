#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>

#include "core/error.h"

namespace opine {
namespace fs = std::filesystem;

namespace {
// fsync through a fresh descriptor: ofstream hides its own, and Linux flushes the file's pages
// whichever descriptor asks.
bool sync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}
}  // namespace

void write_file_atomic(const fs::path& path, const std::function<void(std::ostream&)>& write) {
  const fs::path tmp = path.string() + ".tmp." + std::to_string(::getpid());
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      OPINE_CHECK_KIND(out.good(), ErrorKind::kIo, "cannot write ", tmp.string());
      write(out);
      out.flush();
      OPINE_CHECK_KIND(out.good(), ErrorKind::kIo, "cannot write ", tmp.string(), " (disk full?)");
    }
    OPINE_CHECK_KIND(sync_path(tmp, false), ErrorKind::kIo, "cannot flush ", tmp.string(), " to disk");
    std::error_code ec;
    fs::rename(tmp, path, ec);
    OPINE_CHECK_KIND(!ec, ErrorKind::kIo, "cannot rename ", tmp.string(), " to ", path.string(), ": ",
                     ec.message());
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
  // The rename itself is durable once the folder is synced; a failure here loses nothing already
  // written, so it is not an error.
  sync_path(path.has_parent_path() ? path.parent_path() : fs::path("."), true);
}

void write_text_atomic(const fs::path& path, const std::string& text) {
  write_file_atomic(path, [&](std::ostream& out) { out << text; });
}

}  // namespace opine
