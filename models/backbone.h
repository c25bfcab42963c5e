// What training, adapters and sharding need from a model, whatever its family: its weights and
// projections by Hugging Face name, its layers as units a runner can wrap, and its sequence head.
// LlamaModel (decoders) and EncoderModel (BERT / RoBERTa / XLM-R) implement it; code that needs
// one family's own API (generation, KV caches) keeps using the concrete class.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

#include "core/linear.h"
#include "models/llama_config.h"
#include "models/weights.h"

namespace opine::models {

class Backbone {
 public:
  // How the model runs each layer: `layer` maps the layer's input to its output and owns copies
  // of everything it needs (it may be called again later, e.g. to recompute in backward). A
  // trainer installs a runner that gathers sharded weights around it (core/shard.h).
  using LayerFn = std::function<at::Tensor(const at::Tensor&)>;
  using LayerRunner = std::function<at::Tensor(int index, const at::Tensor& x, const LayerFn& layer)>;

  virtual ~Backbone() = default;

  // "llama", "qwen2", "mistral", "bert", "roberta", "xlm-roberta" (config.json's model_type).
  virtual std::string model_type() const = 0;
  virtual bool is_encoder() const = 0;
  virtual at::ScalarType dtype() const = 0;
  virtual at::Device device() const = 0;
  virtual HeadKind head_kind() const = 0;
  virtual int num_layers() const = 0;

  virtual void set_layer_runner(LayerRunner runner) = 0;
  // Dropout (the encoders') is active only while training.
  virtual void set_training(bool /*training*/) {}

  // Classification logits or regression outputs [batch, num_labels] of input_ids [batch, seq]
  // with attention_mask [batch, seq] (1 = token, 0 = padding).
  virtual at::Tensor classify(const at::Tensor& input_ids, const at::Tensor& attention_mask) const = 0;

  // Weights by Hugging Face name (in the order transformers lists them); the projections by
  // module name; layer `index`'s tensors as reassignable slots (names relative to the layer);
  // the tensors outside the layers; the classification / regression head's tensors.
  virtual std::vector<WeightSlotRef> weight_table() = 0;
  virtual std::vector<LinearSlotRef> linear_table() = 0;
  virtual std::vector<TensorSlot> layer_slots(int index) = 0;
  virtual std::vector<TensorSlot> root_slots() = 0;
  virtual std::vector<TensorSlot> head_slots() = 0;
  // "model.layers." or "bert.encoder.layer.": a layer's module names start with it and its index.
  virtual std::string layer_prefix() const = 0;
  // The projections PEFT adapts when a LoRA config names none (its per-architecture default).
  virtual std::vector<std::string> default_lora_targets() const = 0;
  // The output head when it shares storage with the input embeddings, else nullptr.
  virtual at::Tensor* tied_lm_head() { return nullptr; }

  virtual void to(at::ScalarType dtype, at::Device device) = 0;
  // Bytes held by all weights, scales and adapters.
  virtual int64_t resident_bytes() const = 0;
};

}  // namespace opine::models
