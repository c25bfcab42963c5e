// `opine config`: the configuration every command would run with, after file and overrides.
#include <iostream>

#include "launch/commands.h"
#include "launch/resolve.h"

namespace opine::launch {

namespace {
const std::vector<FlagSpec> kFlags = {
    {"config", "FILE", "YAML configuration"},
    {"describe", "", "list every key with its type, default and meaning"},
    {"help", "", "show this help"},
};
}  // namespace

int run_config(const std::vector<std::string>& argv) {
  Args args(kFlags, argv);
  if (args.has("help")) {
    std::cout << "usage: opine config [--config FILE] [key=value ...] [--describe]\n\n"
                 "Prints the resolved configuration as YAML: defaults, then FILE, then overrides.\n"
                 "Unknown keys and wrong types are errors naming the key and the file.\n\n"
              << format_flags(kFlags);
    return 0;
  }
  if (args.has("describe")) {
    std::cout << config::describe(OpineOptions{});
    return 0;
  }
  std::cout << config::to_yaml(resolve_options(args, {})) << "\n";
  return 0;
}

}  // namespace opine::launch
