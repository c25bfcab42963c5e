// The Llama decoder family: Llama-2/3, Qwen2/2.5, Mistral and SmolLM2 share this one file.
// RMSNorm, rotary embeddings (with linear and Llama-3 scaling), grouped-query attention, SwiGLU,
// optional q/k/v biases (Qwen2), tied or untied embeddings, and the heads on top.
//
// forward() does no I/O and no collectives. Weights live in plain tensors, named by the explicit
// table `weight_table()` that every loader fills (models/weights.h).
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/linear.h"
#include "models/backbone.h"
#include "models/llama_config.h"
#include "models/weights.h"

namespace opine::models {

struct LlamaLayer {
  at::Tensor input_norm;  // [hidden]
  // Weights [out, in] like torch.nn.Linear; biases undefined unless the config has them.
  Linear q_proj, k_proj, v_proj, o_proj;
  at::Tensor post_attention_norm;
  Linear gate_proj, up_proj, down_proj;
};

// Keys and values of the tokens seen so far, for incremental decoding. Preallocated to
// `capacity` positions; `length` are filled. `key_valid` remembers which cached positions were
// real tokens (padding stays masked), `next_position` each row's next rotary position.
struct KvCache {
  std::vector<at::Tensor> keys, values;  // per layer [batch, kv_heads, capacity, head_dim]
  at::Tensor key_valid;                  // [batch, capacity] bool
  at::Tensor next_position;              // [batch] int64
  int64_t length = 0;
  int64_t capacity = 0;
};

struct LlamaOutput {
  at::Tensor hidden;  // [batch, seq, hidden] after the final norm
};

class LlamaModel final : public Backbone {
 public:
  LlamaModel() = default;
  // Allocates every weight (uninitialised) in `dtype` on `device`; loaders then fill them.
  // `meta_layers`: the decoder layers get shape-only (meta) tensors, for a rank of a sharded run
  // whose layer weights arrive from the rank that loaded them (core/shard.h).
  LlamaModel(LlamaConfig config, at::ScalarType dtype, at::Device device = at::kCPU, bool meta_layers = false);

  const LlamaConfig& config() const { return config_; }
  at::ScalarType dtype() const override { return dtype_; }
  at::Device device() const override { return device_; }
  std::string model_type() const override { return config_.model_type; }
  bool is_encoder() const override { return false; }
  HeadKind head_kind() const override { return config_.head; }
  int num_layers() const override { return static_cast<int>(layers.size()); }
  std::string layer_prefix() const override { return "model.layers."; }
  std::vector<std::string> default_lora_targets() const override { return {"q_proj", "v_proj"}; }
  at::Tensor* tied_lm_head() override;
  // sequence_logits() of forward().
  at::Tensor classify(const at::Tensor& input_ids, const at::Tensor& attention_mask) const override;

  // input_ids [batch, seq] int64. attention_mask [batch, seq] (1 = token, 0 = padding), or
  // undefined for no padding. Rotary positions count only real tokens, so left- and
  // right-padded rows give the same results as unpadded ones. With a cache, the new tokens
  // attend to the cached ones and are appended to it.
  LlamaOutput forward(const at::Tensor& input_ids, const at::Tensor& attention_mask = {},
                      KvCache* cache = nullptr) const;

  // Head outputs from final hidden states.
  at::Tensor lm_logits(const at::Tensor& hidden) const;  // [batch, seq, vocab]
  // Classification / regression: the score of each row's last real token (as
  // LlamaForSequenceClassification pools), [batch, num_labels].
  at::Tensor sequence_logits(const at::Tensor& hidden, const at::Tensor& attention_mask) const;

  // The two halves of forward(): token embeddings [batch, seq, hidden], and the decoder over any
  // embeddings (prompt tuning prepends its virtual tokens' here).
  at::Tensor embed(const at::Tensor& input_ids) const;
  LlamaOutput forward_embeds(const at::Tensor& input_embeds, const at::Tensor& attention_mask = {},
                             KvCache* cache = nullptr) const;
  // Packed rows (data/batch.h pack()): several documents per row. `segment_ids` [batch, seq]
  // numbers each row's documents 1, 2, ... (0 = padding); a token attends only to earlier tokens
  // of its own document. `position_ids` restart at 0 for each document. No cache.
  LlamaOutput forward_packed(const at::Tensor& input_ids, const at::Tensor& position_ids,
                             const at::Tensor& segment_ids) const;

  KvCache make_cache(int64_t batch, int64_t capacity) const;

  // How the decoder runs each layer (Backbone::LayerRunner); the default calls it.
  void set_layer_runner(LayerRunner runner) override { layer_runner_ = std::move(runner); }

  // Layer `index`'s tensors as reassignable slots, named as Hugging Face names them after
  // "model.layers.N." (adapters and 4-bit parts by their op's names: "self_attn.q_proj.lora_A.weight").
  std::vector<TensorSlot> layer_slots(int index) override;
  // The tensors outside the layers: embeddings, final norm, untied lm_head, score.
  std::vector<TensorSlot> root_slots() override;
  std::vector<TensorSlot> head_slots() override;

  // Moves or casts all weights.
  void to(at::ScalarType dtype, at::Device device) override;

  // Weights by Hugging Face name, in the order transformers lists them. Pointers stay valid as
  // long as the model does not move.
  std::vector<WeightSlotRef> weight_table() override;
  // The decoder's projections by Hugging Face module name, in the same order (the heads are not
  // among them: quantization skips them and adapters train them in full).
  std::vector<LinearSlotRef> linear_table() override;
  // Bytes held by all weights, scales and adapters.
  int64_t resident_bytes() const override;

  at::Tensor embed_tokens;  // [vocab, hidden]
  std::vector<LlamaLayer> layers;
  at::Tensor final_norm;  // [hidden]
  at::Tensor lm_head;     // [vocab, hidden]; shares embed_tokens' storage when tied
  at::Tensor score;       // [num_labels, hidden]; classification and regression heads

 private:
  at::Tensor attention(const LlamaLayer& layer, const at::Tensor& x, const at::Tensor& cos,
                       const at::Tensor& sin, const at::Tensor& mask, KvCache* cache, int layer_index,
                       int64_t past) const;
  at::Tensor mlp(const LlamaLayer& layer, const at::Tensor& x) const;
  at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight) const;
  // The decoder layers over embeddings x with rotary positions [batch, seq] and a boolean
  // attention mask [batch, 1, seq, keys], or none for plain causal attention.
  at::Tensor decode(at::Tensor x, const at::Tensor& positions, const at::Tensor& mask, KvCache* cache,
                    int64_t past) const;

  LlamaConfig config_;
  at::ScalarType dtype_ = at::kFloat;
  at::Device device_ = at::kCPU;
  at::Tensor inv_freq_;  // [head_dim / 2] float32, scaling applied
  LayerRunner layer_runner_;
};

// Rotary inverse frequencies for a config, with its scaling applied (float32).
at::Tensor rope_inverse_frequencies(const LlamaConfig& config);

// Log-probability of each token given its prefix: [batch, seq-1] for ids[:, 1:], in float32.
// The token embeddings of `input_ids` [batch, seq] with `prefix_embeds` [n, hidden] in front of
// every row: [batch, n + seq, hidden].
at::Tensor with_prefix(const LlamaModel& model, const at::Tensor& prefix_embeds, const at::Tensor& input_ids);

// With `prefix_embeds` [n, hidden] (a soft prompt) in front; the prefix gets no log-probs.
at::Tensor token_logprobs(const LlamaModel& model, const at::Tensor& input_ids,
                          const at::Tensor& attention_mask = {}, const at::Tensor& prefix_embeds = {});

}  // namespace opine::models
