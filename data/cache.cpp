#include "data/cache.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/hdf5.h"
#include "core/log.h"

namespace opine::data {

namespace {

namespace fs = std::filesystem;
using h5::Handle;

template <class T> hid_t native();
template <> hid_t native<int32_t>() { return H5T_NATIVE_INT32; }
template <> hid_t native<int64_t>() { return H5T_NATIVE_INT64; }
template <> hid_t native<float>() { return H5T_NATIVE_FLOAT; }
template <> hid_t native<uint8_t>() { return H5T_NATIVE_UINT8; }

// Object creation properties without modification times, so equal content gives equal bytes.
Handle untimed(hid_t cls, const std::string& what) {
  Handle p(OPINE_H5(H5Pcreate(cls), what), H5Pclose);
  OPINE_H5(H5Pset_obj_track_times(p, false), what);
  return p;
}

template <class T>
void write_vector(hid_t group, const char* name, const std::vector<T>& v, const std::string& what) {
  const hsize_t n = v.size();
  Handle space(OPINE_H5(H5Screate_simple(1, &n, nullptr), what), H5Sclose);
  Handle dcpl = untimed(H5P_DATASET_CREATE, what);
  Handle set(OPINE_H5(H5Dcreate2(group, name, native<T>(), space, H5P_DEFAULT, dcpl, H5P_DEFAULT), what + "/" + name),
             H5Dclose);
  if (n) OPINE_H5(H5Dwrite(set, native<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), what + "/" + name);
}

template <class T>
std::vector<T> read_vector(hid_t group, const char* name, const std::string& what) {
  Handle set(OPINE_H5(H5Dopen2(group, name, H5P_DEFAULT), what + "/" + name), H5Dclose);
  Handle space(OPINE_H5(H5Dget_space(set), what + "/" + name), H5Sclose);
  OPINE_CHECK_FORMAT(H5Sget_simple_extent_ndims(space) == 1, what, "/", name, " is not 1-D");
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space, &n, nullptr);
  std::vector<T> v(n);
  if (n) OPINE_H5(H5Dread(set, native<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), what + "/" + name);
  return v;
}

void write_string_attribute(hid_t object, const char* name, const std::string& value, const std::string& what) {
  Handle type(OPINE_H5(H5Tcopy(H5T_C_S1), what), H5Tclose);
  OPINE_H5(H5Tset_size(type, std::max<size_t>(value.size(), 1)), what);
  Handle space(OPINE_H5(H5Screate(H5S_SCALAR), what), H5Sclose);
  Handle attr(OPINE_H5(H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT), what), H5Aclose);
  const std::string padded = value.empty() ? std::string(1, '\0') : value;
  OPINE_H5(H5Awrite(attr, type, padded.data()), what);
}

std::string read_string_attribute(hid_t object, const char* name, const std::string& what) {
  Handle attr(OPINE_H5(H5Aopen(object, name, H5P_DEFAULT), what + " attribute " + name), H5Aclose);
  Handle type(OPINE_H5(H5Aget_type(attr), what), H5Tclose);
  OPINE_CHECK_FORMAT(H5Tget_class(type) == H5T_STRING && !H5Tis_variable_str(type), what, " attribute ", name,
                     " is not a fixed-length string");
  std::string value(H5Tget_size(type), '\0');
  OPINE_H5(H5Aread(attr, type, value.data()), what);
  value.resize(value.find('\0') == std::string::npos ? value.size() : value.find('\0'));
  return value;
}

void check_split(const CachedSplit& s, const std::string& what) {
  const size_t n = s.size();
  OPINE_CHECK_FORMAT(!s.offsets.empty() && s.offsets.front() == 0 && s.offsets.back() == int64_t(s.ids.size()),
                     what, ": offsets do not span the ids");
  for (size_t i = 0; i < n; ++i) OPINE_CHECK_FORMAT(s.offsets[i] <= s.offsets[i + 1], what, ": offsets decrease at ", i);
  OPINE_CHECK_FORMAT(s.prompt_lengths.size() == n && s.labels.size() == n && s.targets.size() == n &&
                         s.rows.size() == n && s.sources.size() == n && s.augmented.size() == n,
                     what, ": per-example arrays disagree on the number of examples (", n, ")");
}

}  // namespace

void CachedSplit::append(const TokenizedExample& e, int64_t row, int32_t source) {
  ids.insert(ids.end(), e.ids.begin(), e.ids.end());
  offsets.push_back(int64_t(ids.size()));
  prompt_lengths.push_back(e.prompt_length);
  labels.push_back(e.label);
  targets.push_back(e.target);
  rows.push_back(row);
  sources.push_back(source);
  augmented.push_back(e.augmented ? 1 : 0);
}

TokenizedExample CachedSplit::example(size_t i) const {
  TokenizedExample e;
  e.ids.assign(ids.begin() + offsets[i], ids.begin() + offsets[i + 1]);
  e.prompt_length = prompt_lengths[i];
  e.label = labels[i];
  e.target = targets[i];
  e.index = int64_t(i);
  e.augmented = augmented[i] != 0;
  return e;
}

namespace {
// Temporary files of writers that died before their rename ("NAME.tmp.PID" with PID gone).
void sweep_dead_writers(const fs::path& path) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const std::string prefix = path.filename().string() + ".tmp.";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string pid = name.substr(prefix.size());
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (::kill(pid_t(std::stol(pid)), 0) != 0 && errno == ESRCH) fs::remove(entry.path(), ec);
  }
}

}  // namespace

void write_cache(const fs::path& path, const TokenCache& cache, const std::function<void()>& before_rename) {
  h5::quiet();
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  sweep_dead_writers(path);
  const fs::path temp = path.string() + ".tmp." + std::to_string(::getpid());
  const std::string what = temp.string();
  {
    Handle fcpl = untimed(H5P_FILE_CREATE, what);
    Handle file(OPINE_H5(H5Fcreate(temp.c_str(), H5F_ACC_TRUNC, fcpl, H5P_DEFAULT), what), H5Fclose);
    Handle root(OPINE_H5(H5Gopen2(file, "/", H5P_DEFAULT), what), H5Gclose);
    const int schema = kCacheSchema;
    Handle space(OPINE_H5(H5Screate(H5S_SCALAR), what), H5Sclose);
    Handle attr(OPINE_H5(H5Acreate2(root, "opine_cache_schema", H5T_NATIVE_INT, space, H5P_DEFAULT, H5P_DEFAULT), what),
                H5Aclose);
    OPINE_H5(H5Awrite(attr, H5T_NATIVE_INT, &schema), what);
    write_string_attribute(root, "content_hash", cache.content_hash, what);
    write_string_attribute(root, "classes", nlohmann::json(cache.classes).dump(), what);
    write_string_attribute(root, "description", cache.description, what);
    for (const auto& [name, split] : cache.splits) {
      const std::string where = what + ":/" + name;
      check_split(split, where);
      Handle gcpl = untimed(H5P_GROUP_CREATE, where);
      Handle group(OPINE_H5(H5Gcreate2(file, name.c_str(), H5P_DEFAULT, gcpl, H5P_DEFAULT), where), H5Gclose);
      write_vector(group, "ids", split.ids, where);
      write_vector(group, "offsets", split.offsets, where);
      write_vector(group, "prompt_lengths", split.prompt_lengths, where);
      write_vector(group, "labels", split.labels, where);
      write_vector(group, "targets", split.targets, where);
      write_vector(group, "rows", split.rows, where);
      write_vector(group, "sources", split.sources, where);
      write_vector(group, "augmented", split.augmented, where);
    }
    OPINE_H5(H5Fflush(file, H5F_SCOPE_GLOBAL), what);
  }
  if (before_rename) before_rename();
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec) {
    fs::remove(temp);
    OPINE_CHECK_KIND(false, ErrorKind::kIo, "cannot move ", temp.string(), " to ", path.string(), ": ", ec.message());
  }
}

CacheRead read_cache(const fs::path& path, const std::string& expected_hash) {
  h5::quiet();
  CacheRead out;
  if (!fs::exists(path)) return out;
  const std::string what = path.string();
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    h5::take_error_stack();
    if (fs::file_size(path) == 0) {  // an empty file holds nothing anyone could lose
      out.status = CacheStatus::kCorrupt;
      out.why = "empty file";
      return out;
    }
    // Our writes are atomic, so other bytes here are not a cache we wrote: never overwrite them.
    OPINE_CHECK_FORMAT(false, what, " is not an HDF5 file, so not an opine cache; move it away or choose another cache path");
  }
  // Reads into `out`; a file that opens but is not ours sets `foreign` (refused below, never
  // rebuilt over); one that fails to read is corrupt.
  bool foreign = false;
  auto read = [&] {
    Handle file(OPINE_H5(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), what), H5Fclose);
    Handle root(OPINE_H5(H5Gopen2(file, "/", H5P_DEFAULT), what), H5Gclose);
    if (H5Aexists(root, "opine_cache_schema") <= 0) {
      foreign = true;
      return;
    }
    int schema = 0;
    {
      Handle attr(OPINE_H5(H5Aopen(root, "opine_cache_schema", H5P_DEFAULT), what), H5Aclose);
      OPINE_H5(H5Aread(attr, H5T_NATIVE_INT, &schema), what);
    }
    if (schema != kCacheSchema) {
      out.status = CacheStatus::kStale;
      out.why = "schema " + std::to_string(schema) + ", this opine writes " + std::to_string(kCacheSchema);
      return;
    }
    out.cache.content_hash = read_string_attribute(root, "content_hash", what);
    if (!expected_hash.empty() && out.cache.content_hash != expected_hash) {
      out.status = CacheStatus::kStale;
      out.why = "built from other inputs (hash " + out.cache.content_hash.substr(0, 12) + ", wanted " +
                expected_hash.substr(0, 12) + ")";
      return;
    }
    out.cache.classes = nlohmann::json::parse(read_string_attribute(root, "classes", what)).get<std::vector<std::string>>();
    out.cache.description = read_string_attribute(root, "description", what);
    hsize_t count = 0;
    OPINE_H5(H5Gget_num_objs(root, &count), what);
    for (hsize_t i = 0; i < count; ++i) {
      char name[256] = {};
      H5Gget_objname_by_idx(root, i, name, sizeof name - 1);
      const std::string where = what + ":/" + name;
      Handle group(OPINE_H5(H5Gopen2(file, name, H5P_DEFAULT), where), H5Gclose);
      CachedSplit s;
      s.ids = read_vector<int32_t>(group, "ids", where);
      s.offsets = read_vector<int64_t>(group, "offsets", where);
      s.prompt_lengths = read_vector<int32_t>(group, "prompt_lengths", where);
      s.labels = read_vector<int32_t>(group, "labels", where);
      s.targets = read_vector<float>(group, "targets", where);
      s.rows = read_vector<int64_t>(group, "rows", where);
      s.sources = read_vector<int32_t>(group, "sources", where);
      s.augmented = read_vector<uint8_t>(group, "augmented", where);
      check_split(s, where);
      out.cache.splits[name] = std::move(s);
    }
    out.status = CacheStatus::kValid;
  };
  try {
    read();
  } catch (const Error& e) {
    out.status = CacheStatus::kCorrupt;
    out.why = e.what();
    out.cache = {};
  }
  OPINE_CHECK_FORMAT(!foreign, what,
                     " is an HDF5 file but not an opine cache (no opine_cache_schema attribute); move it away");
  return out;
}

TokenCache load_or_build_cache(const fs::path& path, const std::string& content_hash, bool rebuild,
                               const std::function<TokenCache()>& build, const CacheCoordination& c) {
  std::optional<TokenCache> mine;  // rank 0 keeps what it read or built; only the others read after the barrier
  if (c.rank == 0) {
    CacheRead found = rebuild ? CacheRead{} : read_cache(path, content_hash);
    if (found.status == CacheStatus::kValid) {
      mine = std::move(found.cache);
    } else {
      if (rebuild) log::info("cache ", path.string(), ": rebuilding (asked to)");
      else if (found.status == CacheStatus::kMissing) log::info("cache ", path.string(), ": building");
      else log::warn("cache ", path.string(), ": rebuilding, ", found.why);
      mine = build();
      mine->content_hash = content_hash;
      write_cache(path, *mine);
    }
  }
  if (c.barrier) c.barrier();
  if (mine) return std::move(*mine);
  CacheRead ready = read_cache(path, content_hash);
  OPINE_CHECK_FORMAT(ready.status == CacheStatus::kValid, "cache ", path.string(), " is not usable after rank 0 built it: ",
                     ready.why);
  return std::move(ready.cache);
}

}  // namespace opine::data
