#include "launch/resolve.h"

#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "core/log.h"
#include "launch/model_setup.h"
#include "models/model_assets.h"

namespace opine::launch {

OpineOptions resolve_options(const Args& args, const std::vector<FlagBinding>& bindings,
                             const std::string& default_config) {
  std::optional<std::string> file = args.get("config");
  if (!file && !default_config.empty()) file = default_config;
  YAML::Node root = file ? config::load_yaml_file(*file) : YAML::Node(YAML::NodeType::Map);
  std::set<std::string> overridden = config::apply_overrides(root, args.overrides());
  for (const FlagBinding& b : bindings) {
    if (std::optional<std::string> value = args.get(b.flag)) {
      config::set_string(root, b.key, b.value.empty() ? *value : b.value);
      overridden.insert(b.key);
    }
  }
  OpineOptions options = config::from_yaml<OpineOptions>(root, file.value_or("(command line)"), overridden);
  log::debug("resolved configuration:\n", config::to_yaml(options));
  return options;
}

at::Device parse_device(const std::string& name) {
  if (name == "cpu") return at::kCPU;
  OPINE_CHECK(name == "cuda" || name.rfind("cuda:", 0) == 0, "unknown device '", name,
              "' (use cpu, cuda or cuda:N)");
  OPINE_CHECK(at::hasCUDA(), "device ", name, " requested, but this opine has no usable CUDA");
  return at::Device(name);
}

std::vector<FlagSpec> with_model_setup_flags(std::vector<FlagSpec> flags) {
  // Before the trailing --config/--help, so help lists them with the model's own flags.
  std::vector<FlagSpec> shared = {
      {"quant", "nf4|fp4|none", "load the decoder's linear weights in 4 bits (model.quant)"},
      {"double-quant", "", "quantize the 4-bit scales again, as bitsandbytes does (the default)"},
      {"no-double-quant", "", "keep the 4-bit scales in float32 (model.double_quant=false)"},
      {"adapter", "DIR", "PEFT adapter folder to apply (model.adapter)"},
  };
  auto at = flags.end();
  while (at != flags.begin() && ((at - 1)->name == "config" || (at - 1)->name == "help")) --at;
  flags.insert(at, shared.begin(), shared.end());
  return flags;
}

std::vector<FlagBinding> with_model_setup_bindings(std::vector<FlagBinding> bindings) {
  bindings.insert(bindings.end(), {{"quant", "model.quant"},
                                   {"double-quant", "model.double_quant", "true"},
                                   {"no-double-quant", "model.double_quant", "false"},
                                   {"adapter", "model.adapter"}});
  return bindings;
}

models::LlamaModel build_model(models::ModelFile& file, const OpineOptions& options, at::Tensor* soft_prompt) {
  OPINE_CHECK(!file.encoder, file.path, " is a ", file.encoder ? file.encoder->model_type : "",
              " encoder: prompting and generation (eval.strategy loglik, generate, vote) need a decoder; an encoder "
              "predicts with a trained head (opine train, then opine eval --adapter RUN/adapter)");
  models::LlamaModel model = models::load_model(file, load_options(options.model, options.seed));
  if (options.model.quant != "none") apply_quantization(model, options.model);
  if (!options.model.adapter.empty()) {
    at::Tensor prompt = apply_adapter(model, options.model);
    OPINE_CHECK(!prompt.defined() || soft_prompt, "model.adapter=", options.model.adapter,
                ": a prompt-tuning adapter changes the input, which this command does not take");
    if (soft_prompt) *soft_prompt = prompt;
  }
  return model;
}

models::LoadOptions load_options(const ModelOptions& model, int seed) {
  OPINE_CHECK(!model.path.empty(), "no model given (--model PATH or model.path=PATH)");
  models::LoadOptions o;
  o.dtype = models::parse_dtype(model.dtype);
  o.device = parse_device(model.device);
  o.seed = static_cast<uint64_t>(seed);
  if (model.head == "classification") o.head = models::HeadKind::kClassification;
  if (model.head == "regression") o.head = models::HeadKind::kRegression;
  if (model.head == "causal-lm") o.head = models::HeadKind::kCausalLm;
  o.num_labels = model.num_labels;
  return o;
}

data::Encoder make_encoder(const OpineOptions& o, const models::Tokenizer& tokenizer) {
  data::Encoder encoder;
  encoder.tokenizer = &tokenizer;
  encoder.task = o.task;
  encoder.task.validate();
  encoder.format = o.data.format;
  encoder.max_length = o.data.max_length;
  if (o.data.chat && !o.model.path.empty()) {
    const models::ModelFile file = models::open_model_file(o.model.path);
    encoder.chat = models::load_model_chat_template(file, tokenizer);
    if (!encoder.chat) log::info("the model declares no chat template: prompts are plain text");
  }
  return encoder;
}

}  // namespace opine::launch
