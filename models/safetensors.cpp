#include "models/safetensors.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace opine::models {

namespace {

using nlohmann::json;

}  // namespace

SafetensorsSource::SafetensorsSource(const std::string& folder) {
  namespace fs = std::filesystem;
  const fs::path dir(folder);
  const fs::path single = dir / "model.safetensors";
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    description_ = index.string();
    std::ifstream in(index);
    json j;
    try {
      j = json::parse(in);
    } catch (const json::parse_error& e) {
      throw Error(ErrorKind::kFormat, detail::concat(index.string(), ": not valid JSON: ", e.what()));
    }
    OPINE_CHECK_FORMAT(j.contains("weight_map") && j.at("weight_map").is_object(), index.string(),
                       ": missing weight_map");
    std::map<std::string, size_t> file_index;
    for (const auto& [name, shard] : j.at("weight_map").items()) {
      const std::string shard_name = shard.get<std::string>();
      auto it = file_index.find(shard_name);
      if (it == file_index.end()) {
        files_.push_back(SafetensorsFile::open((dir / shard_name).string()));
        it = file_index.emplace(shard_name, files_.size() - 1).first;
      }
      OPINE_CHECK_FORMAT(files_[it->second].entries().count(name), index.string(), ": lists ", name, " in ",
                         shard_name, ", which does not hold it");
      owner_[name] = it->second;
    }
    // A shard may hold tensors the index forgot; they are unexpected all the same.
    for (size_t i = 0; i < files_.size(); ++i)
      for (const auto& [name, e] : files_[i].entries())
        if (!owner_.count(name)) owner_[name] = i;
  } else {
    OPINE_CHECK_KIND(fs::exists(single), ErrorKind::kIo, folder,
                     ": no model.safetensors or model.safetensors.index.json");
    description_ = single.string();
    files_.push_back(SafetensorsFile::open(single.string()));
    for (const auto& [name, e] : files_[0].entries()) owner_[name] = 0;
  }
}

const SafetensorsFile& SafetensorsSource::file_of(const std::string& name) const {
  auto it = owner_.find(name);
  OPINE_CHECK_FORMAT(it != owner_.end(), description_, ": no tensor named ", name);
  return files_[it->second];
}

std::vector<std::string> SafetensorsSource::names() const {
  std::vector<std::string> out;
  for (const auto& [name, i] : owner_) out.push_back(name);
  return out;
}

std::vector<int64_t> SafetensorsSource::shape(const std::string& name) const {
  return file_of(name).entries().at(name).shape;
}

at::Tensor SafetensorsSource::get(const std::string& name) const { return file_of(name).tensor(name); }

std::map<std::string, int64_t> SafetensorsSource::dtype_counts() const {
  std::map<std::string, int64_t> counts;
  for (const auto& [name, i] : owner_) counts[files_[i].entries().at(name).dtype_name]++;
  return counts;
}

}  // namespace opine::models
