// Logging to stderr: a time, a level, and the rank when there is more than one process. By
// default only rank 0 prints info and debug lines; every rank prints warnings and errors.
// The level comes from OPINE_LOG_LEVEL (debug, info, warn, error) or set_level().
#pragma once

#include <sstream>
#include <string>

namespace opine::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void set_level(Level level);
Level level();
// Parses "debug" | "info" | "warn" | "error"; anything else is an opine::Error.
Level parse_level(const std::string& name);
void set_rank(int rank, int world_size);
bool enabled(Level level);
void write(Level level, const std::string& message);

template <typename... Args>
void message(Level lvl, const Args&... args) {
  if (!enabled(lvl)) return;
  std::ostringstream out;
  (out << ... << args);
  write(lvl, out.str());
}
template <typename... Args> void debug(const Args&... args) { message(Level::kDebug, args...); }
template <typename... Args> void info(const Args&... args) { message(Level::kInfo, args...); }
template <typename... Args> void warn(const Args&... args) { message(Level::kWarn, args...); }
template <typename... Args> void error(const Args&... args) { message(Level::kError, args...); }

}  // namespace opine::log
