// The options behind `opine` subcommands, as typed structs filled from YAML (core/config.h):
// `--config FILE`, then `a.b=c` overrides, then the subcommand's own flags.
#pragma once

#include <string>

#include "core/config.h"
#include "data/pipeline.h"
#include "data/task_template.h"
#include "launch/eval_options.h"
#include "launch/train_options.h"

namespace opine::launch {

struct ModelOptions {
  std::string path;     // folder, GGUF or llama2.c file
  std::string dtype = "f32";
  std::string device = "cpu";
  std::string head = "auto";  // auto (as the checkpoint says) | causal-lm | classification | regression
  int num_labels = 0;          // for a new classification head
  std::string quant = "none";  // none | nf4 | fp4: the decoder's linear weights in 4 bits
  bool double_quant = true;    // quantize the 4-bit block scales again (8-bit, blocks of 256)
  int quant_block_size = 64;
  std::string quant_storage = "uint8";  // uint8 | bf16: the dtype packed 4-bit codes are stored in
  std::string adapter;                  // PEFT adapter folder to apply on top
  template <class V>
  void visit(V& v) {
    v("path", path, "model: a Hugging Face folder, a GGUF file or a llama2.c checkpoint");
    v("dtype", dtype, "compute dtype", config::one_of({"f32", "bf16", "f16"}));
    v("device", device, "cpu, cuda or cuda:N");
    v("head", head, "head on top of the decoder",
      config::one_of({"auto", "causal-lm", "classification", "regression"}));
    v("num_labels", num_labels, "classes of a new classification head", config::at_least(0));
    v("quant", quant, "4-bit quantization of the decoder's linear layers (QLoRA base)",
      config::one_of({"none", "nf4", "fp4"}));
    v("double_quant", double_quant, "quantize the 4-bit block scales again (as bitsandbytes' double quant)");
    v("quant_block_size", quant_block_size, "elements per 4-bit block",
      config::rule("32, 64, 128 or 256", [](int n) -> std::string {
        return n == 32 || n == 64 || n == 128 || n == 256 ? "" : "must be 32, 64, 128 or 256, got " + std::to_string(n);
      }));
    v("quant_storage", quant_storage, "dtype that holds the packed 4-bit codes (bf16 lets them shard with bf16 parameters)",
      config::one_of({"uint8", "bf16"}));
    v("adapter", adapter, "PEFT adapter folder (adapter_config.json + adapter_model.safetensors)");
  }
};

struct GenerateOptions {
  std::string tokenizer;  // defaults to the one beside or inside the model
  int max_new_tokens = 128;
  double temperature = 0.0;
  int top_k = 0;
  double top_p = 1.0;
  template <class V>
  void visit(V& v) {
    v("tokenizer", tokenizer, "tokenizer file (llama2.c tokenizer.bin for now)");
    v("max_new_tokens", max_new_tokens, "tokens to generate at most", config::at_least(0));
    v("temperature", temperature, "0 = greedy", config::at_least(0.0));
    v("top_k", top_k, "sample among the k most likely tokens (0 = all)", config::at_least(0));
    v("top_p", top_p, "nucleus sampling mass", config::in_range(0.0, 1.0));
  }
};

struct OpineOptions {
  ModelOptions model;
  GenerateOptions generate;
  data::DataOptions data;
  data::TaskTemplate task;
  PeftOptions peft;
  TrainOptions train;
  EvalOptions eval;
  int seed = 0;
  template <class V>
  void visit(V& v) {
    v("model", model, "the model");
    v("generate", generate, "text generation");
    v("data", data, "dataset, normalisation, augmentation and the token cache");
    v("task", task, "how an example becomes a prompt (and its answer)");
    v("peft", peft, "what adapts the model in training");
    v("train", train, "training: optimizer, schedule, evaluation, sharding, checkpoints");
    v("eval", eval, "evaluation and prediction: strategy, k-shot selection, sampling, outputs");
    v("seed", seed, "random seed for everything seeded");
  }
};

}  // namespace opine::launch
