// The training recipe behind `opine train`, and the evaluation it shares with `opine eval`.
// A straight-line program: set-up (runtime, run folder, data, model, optimizer), the loop
// (micro-batches, backward, reduce, clip, step, log, evaluate, checkpoint), save, clean-up.
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/adamw.h"
#include "core/comm.h"
#include "core/runtime.h"
#include "data/batch.h"
#include "data/cache.h"
#include "launch/options.h"
#include "launch/strategies.h"
#include "launch/trainable.h"

namespace opine::launch {

struct TrainResult {
  int64_t steps = 0;
  std::filesystem::path run_dir;
  std::filesystem::path adapter_dir;
  nlohmann::json metrics;  // the last evaluation
  bool stopped_by_hook = false;  // an EvalHook asked to stop (a pruned sweep trial)
};

// Called on every rank after each evaluation with the step, the value of train.metric and the
// whole report; returning true stops the run there (after its checkpoint). Every rank must
// return the same answer (a sweep's rank 0 decides and broadcasts).
using EvalHook = std::function<bool(int64_t step, double value, const nlohmann::json& report)>;

// What one optimizer step did, summed over every rank: the mean loss, the gradients' norm before
// clipping, the real tokens it trained on.
struct StepStats {
  double loss = 0;
  double grad_norm = 0;
  double tokens = 0;
};

// One optimizer step of `opine train` (every rank calls, each with the micro-batches it drew):
// the step's global loss count, forward and backward per micro-batch, the gradients reduced over
// the ranks and clipped (train.max_grad_norm), the optimizer, the sharded parameters refreshed.
// bench/bench_train times exactly this.
StepStats train_step(Trainable& model, AdamW& optimizer, const std::vector<data::Batch>& micro,
                     const at::Tensor& class_weights, const TrainOptions& t, double lr_multiplier,
                     dist::Communicator& cpu);

// `resolved_yaml`: the options as resolved, written to the run folder. `resume`: continue the
// run in train.run_dir from its latest complete checkpoint.
TrainResult train(const OpineOptions& options, const std::string& resolved_yaml, bool resume,
                  dist::Runtime& runtime, const EvalHook& on_eval = {});

// Metrics of `model` on `split` (every rank calls; every rank gets them): accuracy, F1 ... for
// classes, MSE ... for regression, and the loss for every kind. `per_example` (optional) gets
// each example's prediction, in split order (classification and regression heads).
nlohmann::json evaluate(Trainable& model, const data::CachedSplit& split,
                        const std::vector<std::string>& classes, const data::CollateOptions& collate,
                        int64_t batch_size, const at::Tensor& class_weights, dist::Communicator& comm,
                        std::vector<ExamplePrediction>* per_example = nullptr);

// The collation a run uses: the tokenizer's padding id, right padding, data.max_length.
data::CollateOptions collate_options(const OpineOptions& options, const models::Tokenizer& tokenizer);

// The loss's class weights: none (undefined), or balanced as scikit-learn's
// compute_class_weight("balanced"): n / (classes * count of the class) over the train split.
at::Tensor class_weights_for(const std::string& mode, const data::CachedSplit& train, size_t classes);

// The metric a run ranks checkpoints by (train.metric, "auto" resolved for the label kind).
std::string resolve_metric(const std::string& metric, data::LabelKind kind);

}  // namespace opine::launch
