// From command-line arguments to resolved options and a loaded model, shared by subcommands.
#pragma once

#include <string>
#include <vector>

#include "launch/args.h"
#include "data/pipeline.h"
#include "launch/options.h"
#include "models/loader.h"
#include "models/tokenizer.h"

namespace opine::launch {

// A flag that sets a configuration key (`--dtype bf16` is `model.dtype=bf16`).
// A flag without a value sets the key to `value` (`--no-double-quant` is model.double_quant=false).
struct FlagBinding {
  std::string flag;
  std::string key;
  std::string value = {};
};

// `flags` followed by the flags every command that loads a model shares (--quant,
// --double-quant, --adapter ...); `bindings` followed by theirs.
std::vector<FlagSpec> with_model_setup_flags(std::vector<FlagSpec> flags);
std::vector<FlagBinding> with_model_setup_bindings(std::vector<FlagBinding> bindings);

// --config FILE (else `default_config`, when not empty), then key=value overrides, then bound
// flags (the most specific wins).
OpineOptions resolve_options(const Args& args, const std::vector<FlagBinding>& bindings,
                             const std::string& default_config = {});

// The tokenizer the options name: generate.tokenizer alone, or the model's (generate.tokenizer
// overriding it).
std::unique_ptr<models::Tokenizer> resolve_tokenizer(const OpineOptions& options);

models::LoadOptions load_options(const ModelOptions& model, int seed);
// What turns examples into tokens for these options: the task template, the format, the
// length limit and, with data.chat, the chat template of model.path.
data::Encoder make_encoder(const OpineOptions& options, const models::Tokenizer& tokenizer);
// Loads the model the options describe, quantized and with its adapter as they say. A
// prompt-tuning adapter's soft prompt goes to `soft_prompt`; without one such an adapter is an error.
models::LlamaModel build_model(models::ModelFile& file, const OpineOptions& options, at::Tensor* soft_prompt = nullptr);
at::Device parse_device(const std::string& name);

}  // namespace opine::launch
