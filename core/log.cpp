#include "core/log.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <mutex>

#include "core/error.h"

namespace opine::log {

namespace {

Level initial_level() {
  const char* env = std::getenv("OPINE_LOG_LEVEL");
  if (!env || !*env) return Level::kInfo;
  try {
    return parse_level(env);
  } catch (const Error&) {
    return Level::kInfo;  // a mistyped variable must not stop a run
  }
}

std::atomic<int> g_level{static_cast<int>(initial_level())};
std::atomic<int> g_rank{0};
std::atomic<int> g_world{1};
std::mutex g_mutex;

const char* name(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "?";
}

}  // namespace

Level parse_level(const std::string& text) {
  for (Level l : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError})
    if (text == name(l)) return l;
  throw Error(ErrorKind::kUser, "unknown log level '" + text + "' (debug, info, warn, error)");
}

void set_level(Level l) { g_level = static_cast<int>(l); }
Level level() { return static_cast<Level>(g_level.load()); }
void set_rank(int rank, int world_size) {
  g_rank = rank;
  g_world = world_size;
}

bool enabled(Level l) {
  if (static_cast<int>(l) < g_level.load()) return false;
  return l >= Level::kWarn || g_rank.load() == 0;
}

void write(Level l, const std::string& message) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  localtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
  std::ostringstream line;
  line << stamp << "." << (ms < 100 ? (ms < 10 ? "00" : "0") : "") << ms << " " << name(l);
  if (g_world.load() > 1) line << " [rank " << g_rank.load() << "]";
  line << " " << message << "\n";
  std::lock_guard<std::mutex> lock(g_mutex);
  std::cerr << line.str() << std::flush;
}

}  // namespace opine::log
