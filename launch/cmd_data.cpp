// `opine data build|inspect`: the token cache of a dataset, built ahead of training or looked at.
#include <iostream>

#include "core/error.h"
#include "core/log.h"
#include "data/pipeline.h"
#include "launch/commands.h"
#include "launch/resolve.h"
#include "models/model_assets.h"

namespace opine::launch {

namespace {
const std::vector<FlagSpec> kBuildFlags = {
    {"model", "PATH", "model whose tokenizer and chat template to use (model.path)"},
    {"tokenizer", "PATH", "tokenizer file or folder instead of a model's (generate.tokenizer)"},
    {"rebuild", "", "rebuild even when the cache is up to date (data.rebuild)"},
    {"config", "FILE", "YAML configuration (data:, task:, model:)"},
    {"help", "", "show this help"},
};
const std::vector<FlagSpec> kInspectFlags = {{"help", "", "show this help"}};

int build(const std::vector<std::string>& argv) {
  Args args(kBuildFlags, argv);
  if (args.has("help")) {
    std::cout << "usage: opine data build --config FILE [--model MODEL | --tokenizer PATH] [--rebuild] [key=value ...]\n\n"
                 "Reads the dataset, normalises, augments the training split, renders the task template,\n"
                 "tokenizes and writes the HDF5 cache (reused while its inputs are unchanged). Prints the\n"
                 "cache's path and contents.\n\n"
              << format_flags(kBuildFlags);
    return 0;
  }
  OPINE_CHECK(args.positionals().empty(), "unexpected argument '", args.positionals().front(), "'");
  const OpineOptions o = resolve_options(
      args, {{"model", "model.path"}, {"tokenizer", "generate.tokenizer"}, {"rebuild", "data.rebuild", "true"}});
  const std::unique_ptr<models::Tokenizer> tokenizer = resolve_tokenizer(o);
  const data::Encoder encoder = make_encoder(o, *tokenizer);
  const data::PreparedData prepared = data::prepare_data(o.data, encoder);
  std::cout << prepared.path.string() << "\n" << data::describe_cache(prepared.cache);
  return 0;
}

int inspect(const std::vector<std::string>& argv) {
  Args args(kInspectFlags, argv);
  if (args.has("help")) {
    std::cout << "usage: opine data inspect CACHE\n\nCounts per split and class, lengths and hashes of a token cache.\n";
    return 0;
  }
  OPINE_CHECK(args.positionals().size() == 1, "opine data inspect takes one CACHE file");
  const std::string path = args.positionals().front();
  const data::CacheRead read = data::read_cache(path);
  OPINE_CHECK_KIND(read.status != data::CacheStatus::kMissing, ErrorKind::kIo, "no file ", path);
  OPINE_CHECK_FORMAT(read.status == data::CacheStatus::kValid, path, " is not a usable cache: ", read.why);
  std::cout << data::describe_cache(read.cache);
  return 0;
}
}  // namespace

int run_data(const std::vector<std::string>& argv) {
  const std::string usage =
      "usage: opine data build --config FILE [...]   build (or reuse) the token cache\n"
      "       opine data inspect CACHE                what a cache holds\n";
  if (argv.empty() || argv[0] == "--help" || argv[0] == "-h") {
    std::cout << usage;
    return argv.empty() ? 2 : 0;
  }
  const std::vector<std::string> rest(argv.begin() + 1, argv.end());
  if (argv[0] == "build") return build(rest);
  if (argv[0] == "inspect") return inspect(rest);
  OPINE_CHECK(false, "unknown `opine data` command '", argv[0], "'\n", usage);
  return 2;
}

}  // namespace opine::launch
