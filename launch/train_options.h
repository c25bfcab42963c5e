// The options of `opine train` (and of `opine eval` on a trained run): what adapts the model
// (`peft:`) and how it trains (`train:`), beside the model, data and task options.
//
//   peft:
//     method: lora               # lora | prompt_tuning | none (the head alone trains)
//     lora: {r: 16, lora_alpha: 32, target_modules: [all-linear]}
//   train:
//     epochs: 3
//     sampler: {batch_size: 16}
//     optimizer: {lr: 2.0e-4, weight_decay: 0.01}
//     schedule: {kind: linear, warmup_ratio: 0.1}
//     eval_every: 50
//     metric: f1_macro
//     shard: {mode: full_shard}
//     run_dir: runs/abortion-lora
#pragma once

#include <string>
#include <vector>

#include "core/adamw.h"
#include "core/config.h"
#include "core/schedule.h"
#include "core/shard.h"
#include "data/sampler.h"
#include "peft/lora_config.h"
#include "peft/prompt_tuning.h"

namespace opine::launch {

struct PeftOptions {
  std::string method = "lora";
  peft::LoraConfig lora;
  peft::PromptTuningConfig prompt_tuning;
  template <class V>
  void visit(V& v) {
    v("method", method,
      "lora: low-rank adapters; prompt_tuning: a learned soft prompt; full: every weight trains (the run "
      "saves a whole model); none: only the head trains",
      config::one_of({"lora", "prompt_tuning", "full", "none"}));
    v("lora", lora, "LoRA settings, as PEFT's LoraConfig");
    v("prompt_tuning", prompt_tuning, "prompt-tuning settings, as PEFT's PromptTuningConfig");
  }
};

struct CheckpointOptions {
  int64_t every = 0;  // steps; 0: at every evaluation
  int keep_last = 2;
  template <class V>
  void visit(V& v) {
    v("every", every, "checkpoint every N optimizer steps (0: at every evaluation)",
      config::at_least(int64_t{0}));
    v("keep_last", keep_last, "complete checkpoints kept besides the best", config::at_least(1));
  }
};

struct TrainOptions {
  int64_t epochs = 3;
  int64_t max_steps = 0;  // > 0: stop after this many optimizer steps (wins over epochs)
  data::SamplerOptions sampler;
  int grad_accumulation = 1;
  AdamWOptions optimizer;
  ScheduleOptions schedule;
  double max_grad_norm = 1.0;
  int64_t eval_every = 0;  // optimizer steps; 0: at the end of each epoch
  std::string eval_split = "val";
  int64_t eval_batch_size = 32;
  std::string metric = "auto";  // for the best checkpoint and early stopping
  int patience = 0;             // evaluations without improvement before stopping (0: never stop early)
  std::string class_weights = "none";
  dist::ShardOptions shard;
  int64_t log_every = 1;
  CheckpointOptions checkpoint;
  std::string run_dir = "runs/train";
  int64_t stop_at_step = 0;
  template <class V>
  void visit(V& v) {
    v("epochs", epochs, "passes over the training split", config::at_least(int64_t{0}));
    v("max_steps", max_steps, "optimizer steps to take (> 0 wins over epochs)", config::at_least(int64_t{0}));
    v("sampler", sampler, "batches: size per rank, shuffling, length grouping");
    v("grad_accumulation", grad_accumulation, "batches per optimizer step", config::at_least(1));
    v("optimizer", optimizer, "AdamW");
    v("schedule", schedule, "learning-rate schedule");
    v("max_grad_norm", max_grad_norm, "clip the global gradient norm to this (0: no clipping)",
      config::at_least(0.0));
    v("eval_every", eval_every, "evaluate every N optimizer steps (0: at the end of each epoch)",
      config::at_least(int64_t{0}));
    v("eval_split", eval_split, "split evaluated during training");
    v("eval_batch_size", eval_batch_size, "examples per evaluation batch on each rank",
      config::at_least(int64_t{1}));
    v("metric", metric,
      "metric for the best checkpoint and early stopping (auto: f1_macro for classes, mse for regression, "
      "loss for sft)");
    v("patience", patience, "evaluations without improvement before stopping (0: never stop early)",
      config::at_least(0));
    v("class_weights", class_weights, "none, or balanced (n / (classes * count), as scikit-learn)",
      config::one_of({"none", "balanced"}));
    v("shard", shard, "how the model is spread over ranks");
    v("log_every", log_every, "write metrics every N optimizer steps", config::at_least(int64_t{1}));
    v("checkpoint", checkpoint, "checkpoints");
    v("run_dir", run_dir, "the run's folder");
    v("stop_at_step", stop_at_step,
      "stop after this step's checkpoint, as a job at its time limit would (--resume continues; 0: never)",
      config::at_least(int64_t{0}));
  }
};

}  // namespace opine::launch
