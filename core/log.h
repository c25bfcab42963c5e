// Logging to stderr, one line per message:
//
//   2025-01-31 14:02:07.412 info [rank 1] loaded 291 tensors
//
// The rank appears when there is more than one process. By default only rank 0 prints info and
// debug lines (N ranks would say the same thing N times); every rank prints warnings and errors.
// The level comes from OPINE_LOG_LEVEL (debug, info, warn, error) or set_level(); info by default.
// Lines from different threads never interleave.
//
//   opine::log::info("loaded ", n, " tensors");
#pragma once

#include <sstream>
#include <string>

namespace opine::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void set_level(Level level);
Level level();
// "debug" | "info" | "warn" (or "warning") | "error", any case; anything else is an opine::Error.
Level parse_level(const std::string& name);
const char* level_name(Level level);
// Reads OPINE_LOG_LEVEL again (done once at start-up); a value that does not parse is reported
// on stderr and leaves the level as it was.
void configure_from_env();

// Called once the process knows its place (core/runtime); world_size 1 means a single process.
void set_rank(int rank, int world_size);
// Lets every rank print info and debug lines (debugging a hang on one rank).
void set_all_ranks(bool all);

// Whether a line of this level would be printed by this process.
bool enabled(Level level);
// Prints one line regardless of level and rank (the functions below filter first).
void write(Level level, const std::string& message);

template <typename... Args>
void message(Level lvl, const Args&... args) {
  if (!enabled(lvl)) return;  // nothing is formatted for a line nobody sees
  std::ostringstream out;
  (out << ... << args);
  write(lvl, out.str());
}
template <typename... Args> void debug(const Args&... args) { message(Level::kDebug, args...); }
template <typename... Args> void info(const Args&... args) { message(Level::kInfo, args...); }
template <typename... Args> void warn(const Args&... args) { message(Level::kWarn, args...); }
template <typename... Args> void error(const Args&... args) { message(Level::kError, args...); }

}  // namespace opine::log
