// The encoder family: BERT, RoBERTa and XLM-RoBERTa in one file, as transformers defines
// BertModel / RobertaModel and their *ForSequenceClassification heads. Word, position (RoBERTa's
// start after the padding index) and token-type embeddings; post-LayerNorm layers with GELU; the
// pooler (BERT); the classification / regression heads: BERT's classifier over the pooled [CLS],
// RoBERTa's dense + tanh + out_proj over <s>.
//
// forward() does no I/O and no collectives. Weights are plain tensors named by the explicit
// table weight_table(), under the names of the *ForSequenceClassification model ("bert.",
// "roberta." prefixes); loaders map bare checkpoints onto them (models/loader.cpp).
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "core/linear.h"
#include "models/backbone.h"
#include "models/encoder_config.h"

namespace opine::models {

struct EncoderLayer {
  Linear query, key, value, attention_output;  // attention.self.{query,key,value}, attention.output.dense
  at::Tensor attention_norm_weight, attention_norm_bias;  // attention.output.LayerNorm
  Linear intermediate, output;                            // intermediate.dense, output.dense
  at::Tensor output_norm_weight, output_norm_bias;        // output.LayerNorm
};

struct EncoderOutput {
  at::Tensor hidden;  // [batch, seq, hidden], the last layer's output
  at::Tensor pooled;  // [batch, hidden], BERT's pooler over [CLS]; undefined without a pooler
};

class EncoderModel final : public Backbone {
 public:
  EncoderModel() = default;
  // Allocates every weight (uninitialised) in `dtype` on `device`; loaders then fill them.
  // `meta_layers`: the layers get shape-only (meta) tensors, for a rank of a sharded run.
  EncoderModel(EncoderConfig config, at::ScalarType dtype, at::Device device = at::kCPU, bool meta_layers = false);

  const EncoderConfig& config() const { return config_; }
  std::string model_type() const override { return config_.model_type; }
  bool is_encoder() const override { return true; }
  at::ScalarType dtype() const override { return dtype_; }
  at::Device device() const override { return device_; }
  HeadKind head_kind() const override;
  int num_layers() const override { return static_cast<int>(layers.size()); }
  bool has_pooler() const { return pooler.weight.defined() || pooler.op; }

  void set_layer_runner(LayerRunner runner) override { layer_runner_ = std::move(runner); }
  void set_training(bool training) override { training_ = training; }

  // input_ids [batch, seq] int64; attention_mask [batch, seq] (1 = token, 0 = padding) or
  // undefined; token_type_ids [batch, seq] or undefined (all zeros, as transformers defaults).
  EncoderOutput forward(const at::Tensor& input_ids, const at::Tensor& attention_mask = {},
                        const at::Tensor& token_type_ids = {}) const;
  // The head over forward()'s output: [batch, num_labels].
  at::Tensor head_logits(const EncoderOutput& out) const;
  at::Tensor classify(const at::Tensor& input_ids, const at::Tensor& attention_mask) const override;

  std::vector<WeightSlotRef> weight_table() override;
  std::vector<LinearSlotRef> linear_table() override;
  std::vector<TensorSlot> layer_slots(int index) override;
  std::vector<TensorSlot> root_slots() override;
  std::vector<TensorSlot> head_slots() override;
  std::string layer_prefix() const override { return config_.base_prefix() + "encoder.layer."; }
  std::vector<std::string> default_lora_targets() const override { return {"query", "value"}; }
  void to(at::ScalarType dtype, at::Device device) override;
  int64_t resident_bytes() const override;

  // Gives the head (and a missing BERT pooler) transformers' initialisation: weights N(0,
  // initializer_range), biases zero, drawn from `seed`.
  void initialize_head(uint64_t seed, bool pooler_too);

  at::Tensor word_embeddings, position_embeddings, token_type_embeddings;
  at::Tensor embeddings_norm_weight, embeddings_norm_bias;
  std::vector<EncoderLayer> layers;
  Linear pooler;  // BERT only: pooler.dense (a projection LoRA may adapt, as PEFT does)
  // BERT: classifier [num_labels, hidden]. RoBERTa: classifier.dense then classifier.out_proj.
  at::Tensor classifier_weight, classifier_bias;
  at::Tensor classifier_dense_weight, classifier_dense_bias;

 private:
  at::Tensor layer_forward(const EncoderLayer& l, const at::Tensor& x, const at::Tensor& mask) const;
  at::Tensor dropout(const at::Tensor& x, double p) const;

  EncoderConfig config_;
  at::ScalarType dtype_ = at::kFloat;
  at::Device device_ = at::kCPU;
  bool training_ = false;
  LayerRunner layer_runner_;
};

}  // namespace opine::models
