#include "core/log.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

#include "core/error.h"

namespace opine::log {

namespace {

constexpr Level kLevels[] = {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError};

// Reads the variable; `fallback` when unset or unreadable (a mistyped variable must not stop a run).
int level_from_env(int fallback) {
  const char* env = std::getenv("OPINE_LOG_LEVEL");
  if (!env || !*env) return fallback;
  try {
    return static_cast<int>(parse_level(env));
  } catch (const Error& e) {
    std::fprintf(stderr, "opine: ignoring OPINE_LOG_LEVEL: %s\n", e.what());
    return fallback;
  }
}

std::atomic<int> g_level{level_from_env(static_cast<int>(Level::kInfo))};
std::atomic<int> g_rank{0};
std::atomic<int> g_world{1};
std::atomic<bool> g_all_ranks{false};
std::mutex g_mutex;

}  // namespace

const char* level_name(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "?";
}

Level parse_level(const std::string& text) {
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "warning") return Level::kWarn;
  for (Level l : kLevels)
    if (lower == level_name(l)) return l;
  throw Error(ErrorKind::kUser, "unknown log level '" + text + "' (debug, info, warn, error)");
}

void set_level(Level l) { g_level = static_cast<int>(l); }
Level level() { return static_cast<Level>(g_level.load()); }
void configure_from_env() { g_level = level_from_env(g_level.load()); }

void set_rank(int rank, int world_size) {
  g_rank = rank;
  g_world = world_size;
}
void set_all_ranks(bool all) { g_all_ranks = all; }

bool enabled(Level l) {
  if (static_cast<int>(l) < g_level.load()) return false;
  return l >= Level::kWarn || g_rank.load() == 0 || g_all_ranks.load();
}

void write(Level l, const std::string& message) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const long ms = static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
  char head[96];
  if (g_world.load() > 1)
    std::snprintf(head, sizeof(head), "%s.%03ld %s [rank %d] ", stamp, ms, level_name(l), g_rank.load());
  else
    std::snprintf(head, sizeof(head), "%s.%03ld %s ", stamp, ms, level_name(l));
  const std::string line = head + message + "\n";
  // One fwrite of the whole line under a lock: lines from threads never interleave.
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace opine::log
