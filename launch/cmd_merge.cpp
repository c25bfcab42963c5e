// `opine merge`: a model with a LoRA adapter merged into its weights, written as a Hugging Face
// folder (config.json + model.safetensors) that transformers and opine load as a plain model.
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "launch/commands.h"
#include "launch/resolve.h"
#include "peft/adapter_io.h"
#include "peft/merge.h"

namespace opine::launch {

namespace {
const std::vector<FlagSpec> kFlags = {
    {"model", "PATH", "base model: folder, GGUF or llama2.c file (model.path)"},
    {"adapter", "DIR", "PEFT LoRA adapter folder (model.adapter)"},
    {"out", "DIR", "folder to write config.json and model.safetensors into"},
    {"dtype", "f32|bf16|f16", "dtype of the merge and of the written weights (model.dtype)"},
    {"device", "DEVICE", "cpu or cuda[:N] (model.device)"},
    {"config", "FILE", "YAML configuration"},
    {"help", "", "show this help"},
};
}  // namespace

int run_merge(const std::vector<std::string>& argv) {
  Args args(kFlags, argv);
  if (args.has("help")) {
    std::cout << "usage: opine merge --model MODEL --adapter ADAPTER --out DIR [--dtype f32|bf16|f16]\n\n"
                 "Merges a PEFT LoRA (or DoRA) adapter into the base weights and writes a Hugging Face\n"
                 "folder (config.json + model.safetensors, tokenizer files copied) that loads without PEFT.\n\n"
              << format_flags(kFlags);
    return 0;
  }
  OPINE_CHECK(args.positionals().empty(), "unexpected argument '", args.positionals().front(), "'");
  OpineOptions options = resolve_options(args, {{"model", "model.path"}, {"adapter", "model.adapter"},
                                                {"dtype", "model.dtype"}, {"device", "model.device"}});
  OPINE_CHECK(args.has("out"), "give the output folder (--out DIR)");
  OPINE_CHECK(!options.model.adapter.empty(), "give the adapter to merge (--adapter DIR or model.adapter=DIR)");
  OPINE_CHECK(options.model.quant == "none", "merge into the full-precision base (model.quant=none): a 4-bit "
              "base would quantize the update away");
  const std::string out = *args.get("out");
  models::ModelFile file = models::open_model_file(options.model.path);
  models::LlamaModel model = models::load_model(file, load_options(options.model, options.seed));
  const std::string type = peft::read_peft_type(options.model.adapter);
  OPINE_CHECK(type == "LORA", options.model.adapter, ": a ", type,
              " adapter has nothing to merge into the weights (only LoRA adapters do)");
  peft::LoraModel lora = peft::load_lora_adapter(options.model.adapter, model);
  const size_t layers = lora.layers().size();
  lora.merge_and_unload();
  peft::save_hf_model(out, model, options.model.path, model.dtype());
  nlohmann::json summary = {{"out", out}, {"merged_layers", layers}, {"dtype", models::dtype_name(model.dtype())}};
  std::cout << summary.dump() << "\n";
  return 0;
}

}  // namespace opine::launch
