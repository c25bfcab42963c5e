// The model a training run adapts: a decoder or an encoder (4-bit or not) with its head, what
// trains (LoRA, a soft prompt, every weight, or the head alone), spread over the ranks by
// core/shard.h, and the forward passes and loss sums the trainer and the evaluator need.
//
// Loading happens once per node: the node's first rank reads, quantizes and attaches LoRA; the
// other ranks build a skeleton whose layers are shape-only, and receive their shard.
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/runtime.h"
#include "core/shard.h"
#include "data/batch.h"
#include "launch/options.h"
#include "models/backbone.h"
#include "models/llama.h"
#include "models/loader.h"
#include "models/tokenizer.h"
#include "peft/lora_model.h"
#include "peft/prompt_tuning.h"

namespace opine::launch {

// A loss summed over a batch and what it is a sum over (examples, class weights or tokens), so
// the trainer can divide by the global count of a whole step.
struct LossSum {
  at::Tensor sum;  // scalar float32, with grad
  double count = 0;
};

// What a batch's loss is a sum over: examples, their class weights, or answer tokens. Known
// before the forward, so a step's global count can be reduced first.
double loss_count(const data::Batch& batch, data::LabelKind kind, const at::Tensor& class_weights);

// What the model predicted for a batch: a class and its probabilities, or a score.
struct Predictions {
  at::Tensor classes;        // [B] int64 (classification)
  at::Tensor probabilities;  // [B, C] float32 (classification)
  at::Tensor scores;         // [B] float32 (regression)
};

class Trainable {
 public:
  // `classes`: the dataset's (empty for regression); decides the head with data.format.
  Trainable(const OpineOptions& options, dist::Runtime& runtime, at::Device device, models::ModelFile& file,
            const std::vector<std::string>& classes, const models::Tokenizer& tokenizer);
  ~Trainable();

  data::LabelKind label_kind() const { return labels_; }
  models::Backbone& model() { return *model_; }
  dist::ShardedModel& sharded() { return *sharded_; }
  at::Device device() const { return device_; }

  void set_training(bool training);
  // Loss of one batch, summed (class weights apply to classification).
  LossSum loss_sum(const data::Batch& batch, const at::Tensor& class_weights) const;
  // No grad: predictions and the loss sum of a batch.
  std::pair<Predictions, LossSum> predict(const data::Batch& batch, const at::Tensor& class_weights) const;
  // No grad, no labels needed: the head's predictions (classification or regression models).
  Predictions infer(const data::Batch& batch) const;

  // The optimizer's groups: the sharded flat parameters and root tensors, with the adapter's
  // learning-rate scales (LoRA+) and weight-decay exclusions.
  std::vector<OptimGroup> optimizer_groups() const;

  // The adapter in PEFT's format (every rank calls; `write` on one of them). With
  // peft.method=full, a whole Hugging Face model folder (config.json, model.safetensors, the
  // tokenizer's files) that transformers loads as it is.
  void save_adapter(const std::filesystem::path& dir, bool write);
  // Sets the trainable values from a folder save_adapter() wrote (every rank calls).
  void load_adapter_values(const std::filesystem::path& dir);
  std::string describe_trainable() const;

 private:
  at::Tensor sequence_output(const data::Batch& batch) const;  // [B, C]
  Predictions predictions_of(const at::Tensor& out) const;     // from float32 [B, C]
  at::Tensor lm_logits(const data::Batch& batch) const;        // [B, T, V], position t after token t
  // Classification / regression loss of the head's output [B, C].
  LossSum sequence_loss(const at::Tensor& out, const data::Batch& batch,
                        const at::Tensor& class_weights) const;
  std::vector<std::pair<std::string, at::Tensor>> named_trainable() const;

  // The decoder, when the model is one (prompt tuning and causal-LM heads need it).
  models::LlamaModel& llama() const;

  std::string method_;
  data::LabelKind labels_;
  at::Device device_;
  std::string model_path_;
  std::vector<std::string> classes_;  // named in a saved model's id2label
  std::unique_ptr<models::Backbone> model_;  // LoRA and sharding point into it: it never moves
  std::unique_ptr<peft::LoraModel> lora_;
  std::unique_ptr<peft::PromptTuning> prompt_;
  std::unique_ptr<dist::ShardedModel> sharded_;
  std::vector<peft::ParamGroup> groups_;  // the adapter's groups by PEFT tensor name
  std::vector<std::string> group_names_;
};

}  // namespace opine::launch
