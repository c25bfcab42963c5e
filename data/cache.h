// The HDF5 cache of tokenized, templated datasets.
//
// Layout (schema 1): root attributes `opine_cache_schema` (int), `content_hash` (the SHA-256 hex
// of everything that decides the content), `classes` (JSON list) and `description` (JSON: what
// went into the hash, for `opine data inspect`); one group per split with 1-D datasets
//   ids int32 (all examples' tokens end to end), offsets int64 (n + 1; example i is
//   ids[offsets[i]:offsets[i+1]]), prompt_lengths int32, labels int32, targets float32,
//   rows int64, sources int32, augmented uint8.
// No timestamps are stored, so the same content gives the same bytes.
//
// Writes go to a temporary file beside the cache and are renamed into place: a killed writer
// leaves either the old cache or none, never a half-written one under the cache's name.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "data/batch.h"

namespace opine::data {

constexpr int kCacheSchema = 1;

struct CachedSplit {
  std::vector<int32_t> ids;
  std::vector<int64_t> offsets{0};
  std::vector<int32_t> prompt_lengths, labels;
  std::vector<float> targets;
  std::vector<int64_t> rows;
  std::vector<int32_t> sources;
  std::vector<uint8_t> augmented;

  size_t size() const { return offsets.size() - 1; }
  void append(const TokenizedExample& e, int64_t row, int32_t source);
  TokenizedExample example(size_t i) const;  // index = i
  int64_t length(size_t i) const { return offsets[i + 1] - offsets[i]; }
};

struct TokenCache {
  std::string content_hash;
  std::vector<std::string> classes;
  std::string description;  // JSON
  std::map<std::string, CachedSplit> splits;
};

// Writes atomically (temporary file + rename). `before_rename`, when set, runs after the data
// is written and before the rename (tests kill the writer there).
void write_cache(const std::filesystem::path& path, const TokenCache& cache,
                 const std::function<void()>& before_rename = {});

// What reading found.
enum class CacheStatus { kValid, kMissing, kStale, kCorrupt };
struct CacheRead {
  CacheStatus status = CacheStatus::kMissing;
  std::string why;  // for kStale / kCorrupt
  TokenCache cache;
};
// Reads and checks a cache; `expected_hash` empty accepts any content. A file that is HDF5 but
// not an opine cache is an error (it is not ours to overwrite); a truncated or inconsistent one
// is kCorrupt.
CacheRead read_cache(const std::filesystem::path& path, const std::string& expected_hash = {});

// The cache at `path` for `content_hash`: read when valid, else built by `build` on rank 0 and
// written atomically; other ranks call `barrier` and then read. `rebuild` ignores a valid cache.
struct CacheCoordination {
  int rank = 0;
  std::function<void()> barrier;  // all ranks meet (no-op on one process)
};
TokenCache load_or_build_cache(const std::filesystem::path& path, const std::string& content_hash, bool rebuild,
                               const std::function<TokenCache()>& build, const CacheCoordination& coordination = {});

}  // namespace opine::data
