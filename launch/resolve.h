// From command-line arguments to resolved options and a loaded model, shared by subcommands.
#pragma once

#include <string>
#include <vector>

#include "launch/args.h"
#include "launch/options.h"
#include "models/loader.h"

namespace opine::launch {

// A flag that sets a configuration key (`--dtype bf16` is `model.dtype=bf16`).
struct FlagBinding {
  std::string flag;
  std::string key;
};

// --config FILE, then key=value overrides, then bound flags (the most specific wins).
OpineOptions resolve_options(const Args& args, const std::vector<FlagBinding>& bindings);

models::LoadOptions load_options(const ModelOptions& model, int seed);
at::Device parse_device(const std::string& name);

}  // namespace opine::launch
