#include "core/json_file.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace opine {

nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  OPINE_CHECK_KIND(in.good(), ErrorKind::kIo, "cannot open ", path.string());
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::kFormat, path.string() + ": not valid JSON: " + e.what());
  }
}

}  // namespace opine
