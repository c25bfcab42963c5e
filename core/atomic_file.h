// Atomic file writes: the bytes go to a temporary file beside the target ("NAME.tmp.PID"),
// are flushed to disk (fsync), and the temporary is renamed over the target, so a reader (or
// a resumed run after a crash) sees the old file or the new one, never half of one.
#pragma once

#include <filesystem>
#include <functional>
#include <ostream>
#include <string>

namespace opine {

// Calls `write` on a stream into the temporary, then renames it to `path`. Failures are
// opine::Error (kIo) naming the file; the temporary is removed on any failure.
void write_file_atomic(const std::filesystem::path& path, const std::function<void(std::ostream&)>& write);

void write_text_atomic(const std::filesystem::path& path, const std::string& text);

}  // namespace opine
