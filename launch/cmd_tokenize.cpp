// `opine tokenize`: text to token ids, as JSON.
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "launch/commands.h"
#include "launch/resolve.h"
#include "models/model_assets.h"

namespace opine::launch {

namespace {
const std::vector<FlagSpec> kFlags = {
    {"model", "PATH", "model whose tokenizer to use (model.path)"},
    {"tokenizer", "PATH", "a tokenizer file or folder, instead of a model's (generate.tokenizer)"},
    {"text", "TEXT", "one text"},
    {"file", "FILE", "one text per line; prints one JSON array per line"},
    {"no-special", "", "do not add BOS/EOS (HF add_special_tokens=False)"},
    {"threads", "N", "threads for --file (default: all cores)"},
    {"config", "FILE", "YAML configuration"},
    {"help", "", "show this help"},
};
}  // namespace

std::unique_ptr<models::Tokenizer> resolve_tokenizer(const OpineOptions& o) {
  if (!o.generate.tokenizer.empty() && o.model.path.empty()) return models::load_tokenizer(o.generate.tokenizer);
  OPINE_CHECK(!o.model.path.empty(), "give --model or --tokenizer");
  const models::ModelFile file = models::open_model_file(o.model.path);
  return models::load_model_tokenizer(file, o.generate.tokenizer);
}

int run_tokenize(const std::vector<std::string>& argv) {
  Args args(kFlags, argv);
  if (args.has("help")) {
    std::cout << "usage: opine tokenize (--model MODEL | --tokenizer PATH) (--text TEXT | --file FILE)\n\n"
                 "Prints the token ids as JSON. PATH is a tokenizer.json, tokenizer.model,\n"
                 "vocab.json + merges.txt folder, GGUF file, or a folder holding one of them.\n\n"
              << format_flags(kFlags);
    return 0;
  }
  OPINE_CHECK(args.positionals().empty(), "unexpected argument '", args.positionals().front(), "'");
  OPINE_CHECK(args.has("text") != args.has("file"), "give exactly one of --text and --file");
  const OpineOptions o = resolve_options(args, {{"model", "model.path"}, {"tokenizer", "generate.tokenizer"}});
  const auto tokenizer = resolve_tokenizer(o);
  const bool special = !args.has("no-special");
  if (args.has("text")) {
    std::cout << nlohmann::json(tokenizer->encode(*args.get("text"), special)).dump() << "\n";
    return 0;
  }
  const std::string path = *args.get("file");
  std::ifstream in(path);
  OPINE_CHECK_KIND(in.good(), ErrorKind::kIo, "cannot open ", path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    try {
      models::check_utf8(line);
    } catch (const Error& e) {
      throw Error(ErrorKind::kUser, path + ":" + std::to_string(lines.size() + 1) + ": " + e.what());
    }
    lines.push_back(std::move(line));
  }
  const int threads = args.has("threads") ? std::stoi(*args.get("threads")) : 0;
  for (const auto& ids : tokenizer->encode_batch(lines, special, threads)) std::cout << nlohmann::json(ids).dump() << "\n";
  return 0;
}

}  // namespace opine::launch
