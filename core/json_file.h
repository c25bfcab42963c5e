// Reading a JSON file with errors that name it: a missing or unreadable file is kIo, a file that
// does not parse is kFormat with the parser's message. One reader for every config.json,
// tokenizer.json, adapter_config.json and run file opine opens.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

namespace opine {

nlohmann::json read_json_file(const std::filesystem::path& path);

}  // namespace opine
