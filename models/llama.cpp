#include "models/llama.h"

#include <cmath>

#include "core/error.h"
#include "models/swiglu.h"

namespace opine::models {

namespace {

// Second half negated and swapped with the first: the rotary convention of transformers. GGUF
// and llama2.c weights use interleaved pairs instead; their loaders permute q/k rows to match.
at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

}  // namespace

at::Tensor rope_inverse_frequencies(const LlamaConfig& c) {
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  // In float32, the same operations as transformers, so the frequencies agree to the bit.
  at::Tensor exponent = at::arange(0, c.head_dim, 2, opts.dtype(at::kLong)).to(at::kFloat) / double(c.head_dim);
  at::Tensor inv_freq = 1.0 / at::pow(c.rope_theta, exponent);
  const RopeScaling& s = c.rope_scaling;
  if (s.type == "linear") {
    inv_freq = inv_freq / s.factor;
  } else if (s.type == "llama3") {
    // Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, and the band between
    // interpolated smoothly.
    const double old_len = double(s.original_max_position_embeddings);
    const double low_wavelen = old_len / s.low_freq_factor;
    const double high_wavelen = old_len / s.high_freq_factor;
    at::Tensor wavelen = 2 * M_PI / inv_freq;
    at::Tensor scaled = at::where(wavelen > low_wavelen, inv_freq / s.factor, inv_freq);
    at::Tensor smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    at::Tensor smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
    at::Tensor medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
    inv_freq = at::where(medium, smoothed, scaled);
  }
  return inv_freq;
}

LlamaModel::LlamaModel(LlamaConfig config, at::ScalarType dtype, at::Device device, bool meta_layers)
    : config_(std::move(config)), dtype_(dtype), device_(device) {
  config_.validate("model config");
  const auto root = at::TensorOptions().dtype(dtype).device(device);
  const auto o = meta_layers ? root.device(at::kMeta) : root;
  const LlamaConfig& c = config_;
  const int64_t h = c.hidden_size, q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim,
                f = c.intermediate_size;
  embed_tokens = at::empty({c.vocab_size, h}, root);
  layers.resize(c.num_layers);
  for (LlamaLayer& l : layers) {
    l.input_norm = at::empty({h}, o);
    l.q_proj.weight = at::empty({q, h}, o);
    l.k_proj.weight = at::empty({kv, h}, o);
    l.v_proj.weight = at::empty({kv, h}, o);
    l.o_proj.weight = at::empty({h, q}, o);
    if (c.attention_bias || c.qkv_bias) {
      l.q_proj.bias = at::empty({q}, o);
      l.k_proj.bias = at::empty({kv}, o);
      l.v_proj.bias = at::empty({kv}, o);
    }
    if (c.attention_bias) l.o_proj.bias = at::empty({h}, o);
    l.post_attention_norm = at::empty({h}, o);
    l.gate_proj.weight = at::empty({f, h}, o);
    l.up_proj.weight = at::empty({f, h}, o);
    l.down_proj.weight = at::empty({h, f}, o);
    if (c.mlp_bias) {
      l.gate_proj.bias = at::empty({f}, o);
      l.up_proj.bias = at::empty({f}, o);
      l.down_proj.bias = at::empty({h}, o);
    }
  }
  final_norm = at::empty({h}, root);
  if (c.head == HeadKind::kCausalLm) {
    lm_head = c.tie_word_embeddings ? embed_tokens : at::empty({c.vocab_size, h}, root);
  } else {
    score = at::empty({c.num_labels, h}, root);
  }
  inv_freq_ = rope_inverse_frequencies(c).to(device);
}

std::vector<WeightSlotRef> LlamaModel::weight_table() {
  const LlamaConfig& c = config_;
  std::vector<WeightSlotRef> t;
  auto add = [&](std::string name, at::Tensor& w) {
    if (w.defined()) t.push_back({std::move(name), w.sizes().vec(), &w});
  };
  add("model.embed_tokens.weight", embed_tokens);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    LlamaLayer& l = layers[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add(p + "input_layernorm.weight", l.input_norm);
    add(p + "self_attn.q_proj.weight", l.q_proj.weight);
    add(p + "self_attn.q_proj.bias", l.q_proj.bias);
    add(p + "self_attn.k_proj.weight", l.k_proj.weight);
    add(p + "self_attn.k_proj.bias", l.k_proj.bias);
    add(p + "self_attn.v_proj.weight", l.v_proj.weight);
    add(p + "self_attn.v_proj.bias", l.v_proj.bias);
    add(p + "self_attn.o_proj.weight", l.o_proj.weight);
    add(p + "self_attn.o_proj.bias", l.o_proj.bias);
    add(p + "post_attention_layernorm.weight", l.post_attention_norm);
    add(p + "mlp.gate_proj.weight", l.gate_proj.weight);
    add(p + "mlp.gate_proj.bias", l.gate_proj.bias);
    add(p + "mlp.up_proj.weight", l.up_proj.weight);
    add(p + "mlp.up_proj.bias", l.up_proj.bias);
    add(p + "mlp.down_proj.weight", l.down_proj.weight);
    add(p + "mlp.down_proj.bias", l.down_proj.bias);
  }
  add("model.norm.weight", final_norm);
  if (c.head == HeadKind::kCausalLm && !c.tie_word_embeddings) add("lm_head.weight", lm_head);
  if (c.head != HeadKind::kCausalLm) add("score.weight", score);
  return t;
}

std::vector<TensorSlot> LlamaModel::layer_slots(int index) {
  OPINE_ASSERT(index >= 0 && index < static_cast<int>(layers.size()), "layer ", index);
  LlamaLayer& l = layers[index];
  std::vector<TensorSlot> slots;
  slots.push_back({"input_layernorm.weight", &l.input_norm});
  const std::pair<const char*, Linear*> projections[] = {
      {"self_attn.q_proj.", &l.q_proj}, {"self_attn.k_proj.", &l.k_proj}, {"self_attn.v_proj.", &l.v_proj},
      {"self_attn.o_proj.", &l.o_proj}, {"mlp.gate_proj.", &l.gate_proj}, {"mlp.up_proj.", &l.up_proj},
      {"mlp.down_proj.", &l.down_proj}};
  for (const auto& [prefix, linear] : projections) {
    if (prefix == std::string("mlp.gate_proj.")) slots.push_back({"post_attention_layernorm.weight", &l.post_attention_norm});
    for (TensorSlot& s : linear->tensor_slots()) slots.push_back({prefix + s.name, s.tensor});
  }
  return slots;
}

std::vector<TensorSlot> LlamaModel::root_slots() {
  std::vector<TensorSlot> slots;
  slots.push_back({"model.embed_tokens.weight", &embed_tokens});
  slots.push_back({"model.norm.weight", &final_norm});
  const bool tied = config_.head == HeadKind::kCausalLm && config_.tie_word_embeddings;
  if (lm_head.defined() && !tied) slots.push_back({"lm_head.weight", &lm_head});
  if (score.defined()) slots.push_back({"score.weight", &score});
  return slots;
}

std::vector<TensorSlot> LlamaModel::head_slots() {
  if (!score.defined()) return {};
  return {{"score.weight", &score}};
}

at::Tensor* LlamaModel::tied_lm_head() {
  return config_.head == HeadKind::kCausalLm && config_.tie_word_embeddings ? &lm_head : nullptr;
}

at::Tensor LlamaModel::classify(const at::Tensor& input_ids, const at::Tensor& attention_mask) const {
  return sequence_logits(forward(input_ids, attention_mask).hidden, attention_mask);
}

std::vector<LinearSlotRef> LlamaModel::linear_table() {
  std::vector<LinearSlotRef> t;
  for (size_t i = 0; i < layers.size(); ++i) {
    LlamaLayer& l = layers[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    t.push_back({p + "self_attn.q_proj", &l.q_proj});
    t.push_back({p + "self_attn.k_proj", &l.k_proj});
    t.push_back({p + "self_attn.v_proj", &l.v_proj});
    t.push_back({p + "self_attn.o_proj", &l.o_proj});
    t.push_back({p + "mlp.gate_proj", &l.gate_proj});
    t.push_back({p + "mlp.up_proj", &l.up_proj});
    t.push_back({p + "mlp.down_proj", &l.down_proj});
  }
  return t;
}

int64_t LlamaModel::resident_bytes() const {
  auto bytes = [](const at::Tensor& t) { return t.defined() ? int64_t(t.nbytes()) : int64_t(0); };
  int64_t total = bytes(embed_tokens) + bytes(final_norm) + bytes(score);
  if (!(config_.head == HeadKind::kCausalLm && config_.tie_word_embeddings)) total += bytes(lm_head);
  for (const LlamaLayer& l : layers) {
    total += bytes(l.input_norm) + bytes(l.post_attention_norm);
    for (const Linear* p : {&l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.gate_proj, &l.up_proj, &l.down_proj})
      total += p->resident_bytes();
  }
  return total;
}

void LlamaModel::to(at::ScalarType dtype, at::Device device) {
  for (const WeightSlotRef& s : weight_table()) *s.tensor = s.tensor->to(device, dtype);
  for (const LinearSlotRef& s : linear_table())
    if (s.linear->op) s.linear->op->to(device, dtype);
  if (config_.head == HeadKind::kCausalLm && config_.tie_word_embeddings) lm_head = embed_tokens;
  inv_freq_ = inv_freq_.to(device);
  dtype_ = dtype;
  device_ = device;
}

at::Tensor LlamaModel::rms_norm(const at::Tensor& x, const at::Tensor& weight) const {
  // In float32 whatever the compute dtype, as transformers' LlamaRMSNorm does.
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor normed = xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + config_.rms_norm_eps);
  return weight * normed.to(x.scalar_type());
}

at::Tensor LlamaModel::mlp(const LlamaLayer& l, const at::Tensor& x) const {
  return l.down_proj.forward(swiglu(l.gate_proj.forward(x), l.up_proj.forward(x)));
}

at::Tensor LlamaModel::attention(const LlamaLayer& l, const at::Tensor& x, const at::Tensor& cos,
                                 const at::Tensor& sin, const at::Tensor& mask, KvCache* cache,
                                 int layer_index, int64_t past) const {
  const LlamaConfig& c = config_;
  const int64_t batch = x.size(0), seq = x.size(1);
  auto heads = [&](const at::Tensor& t, int64_t n) {
    return t.view({batch, seq, n, c.head_dim}).transpose(1, 2);
  };
  at::Tensor q = heads(l.q_proj.forward(x), c.num_heads);
  at::Tensor k = heads(l.k_proj.forward(x), c.num_kv_heads);
  at::Tensor v = heads(l.v_proj.forward(x), c.num_kv_heads);
  q = q * cos + rotate_half(q) * sin;
  k = k * cos + rotate_half(k) * sin;
  if (cache) {
    cache->keys[layer_index].narrow(2, past, seq).copy_(k);
    cache->values[layer_index].narrow(2, past, seq).copy_(v);
    k = cache->keys[layer_index].narrow(2, 0, past + seq);
    v = cache->values[layer_index].narrow(2, 0, past + seq);
  }
  // No mask: plain causal attention (see forward_embeds).
  const std::optional<at::Tensor> attn_mask = mask.defined() ? std::optional<at::Tensor>(mask) : std::nullopt;
  at::Tensor out = at::scaled_dot_product_attention(q, k, v, attn_mask, 0.0, /*is_causal=*/!mask.defined(),
                                                    std::nullopt, /*enable_gqa=*/true);
  out = out.transpose(1, 2).reshape({batch, seq, c.num_heads * c.head_dim});
  return l.o_proj.forward(out);
}

at::Tensor LlamaModel::embed(const at::Tensor& input_ids) const {
  OPINE_CHECK(input_ids.dim() == 2, "input_ids must be [batch, seq], got ", input_ids.sizes());
  OPINE_CHECK(input_ids.size(1) > 0, "input_ids is empty");
  at::Tensor ids = input_ids.to(device_, at::kLong);
  OPINE_CHECK(ids.min().item<int64_t>() >= 0 && ids.max().item<int64_t>() < config_.vocab_size,
              "token id out of range [0, ", config_.vocab_size, ")");
  return at::embedding(embed_tokens, ids);
}

LlamaOutput LlamaModel::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                KvCache* cache) const {
  return forward_embeds(embed(input_ids), attention_mask, cache);
}

LlamaOutput LlamaModel::forward_embeds(const at::Tensor& input_embeds, const at::Tensor& attention_mask,
                                       KvCache* cache) const {
  const LlamaConfig& c = config_;
  OPINE_CHECK(input_embeds.dim() == 3 && input_embeds.size(2) == c.hidden_size,
              "input embeddings must be [batch, seq, ", c.hidden_size, "], got ", input_embeds.sizes());
  const int64_t batch = input_embeds.size(0), seq = input_embeds.size(1);
  OPINE_CHECK(seq > 0, "input is empty");
  at::Tensor valid = attention_mask.defined()
                         ? attention_mask.to(device_).ne(0)
                         : at::ones({batch, seq}, at::TensorOptions().dtype(at::kBool).device(device_));
  OPINE_CHECK(valid.dim() == 2 && valid.size(0) == batch && valid.size(1) == seq, "attention_mask ",
              attention_mask.sizes(), " does not match the input [", batch, ", ", seq, "]");

  const int64_t past = cache ? cache->length : 0;
  if (cache) {
    OPINE_CHECK(cache->keys.size() == layers.size() && cache->key_valid.size(0) == batch,
                "KV cache was made for another model or batch size");
    OPINE_CHECK(past + seq <= cache->capacity, "KV cache holds ", cache->capacity,
                " positions; ", past + seq, " needed");
  }

  // Rotary positions count real tokens only (padding does not advance them).
  const auto idx = at::TensorOptions().dtype(at::kLong).device(device_);
  at::Tensor start = cache ? cache->next_position.view({batch, 1}) : at::zeros({batch, 1}, idx);
  at::Tensor positions = (start + valid.to(at::kLong).cumsum(1) - 1).clamp_min(0);

  // Which keys each query may see: earlier-or-same real tokens, within the sliding window.
  at::Tensor key_valid = valid;
  if (cache) {
    cache->key_valid.narrow(1, past, seq).copy_(valid);
    key_valid = cache->key_valid.narrow(1, 0, past + seq);
  }
  // Right padding (every real token before every padding one), no cache and no window that binds:
  // causal attention alone gives each real token exactly what the full mask gives it, since
  // padding only ever follows it, and SDPA's causal kernel skips the masked half.
  const bool window_binds = c.sliding_window && *c.sliding_window < past + seq;
  if (!cache && !window_binds &&
      (seq == 1 || !valid.narrow(1, 1, seq - 1).logical_and(valid.narrow(1, 0, seq - 1).logical_not()).any().item<bool>()))
    return {decode(input_embeds.to(device_, dtype_), positions, at::Tensor(), nullptr, 0)};

  at::Tensor q_pos = at::arange(past, past + seq, idx).view({seq, 1});
  at::Tensor k_pos = at::arange(0, past + seq, idx).view({1, past + seq});
  at::Tensor allowed = k_pos.le(q_pos);
  if (c.sliding_window) allowed = allowed.logical_and(k_pos.gt(q_pos - *c.sliding_window));
  at::Tensor mask = allowed.unsqueeze(0).logical_and(key_valid.unsqueeze(1));
  // A padding query sees at least itself, so no row is empty (an empty softmax row is NaN).
  mask = mask.logical_or(k_pos.eq(q_pos).unsqueeze(0)).unsqueeze(1);  // [b, 1, s, past+s]

  at::Tensor x = decode(input_embeds.to(device_, dtype_), positions, mask, cache, past);
  if (cache) {
    cache->length += seq;
    cache->next_position = cache->next_position + valid.to(at::kLong).sum(1);
  }
  return {x};
}

LlamaOutput LlamaModel::forward_packed(const at::Tensor& input_ids, const at::Tensor& position_ids,
                                       const at::Tensor& segment_ids) const {
  at::Tensor x = embed(input_ids);
  const int64_t seq = x.size(1);
  OPINE_CHECK(position_ids.sizes() == input_ids.sizes() && segment_ids.sizes() == input_ids.sizes(),
              "position_ids ", position_ids.sizes(), " and segment_ids ", segment_ids.sizes(),
              " must match input_ids ", input_ids.sizes());
  const auto idx = at::TensorOptions().dtype(at::kLong).device(device_);
  at::Tensor segment = segment_ids.to(device_, at::kLong);
  at::Tensor pos = at::arange(seq, idx);
  at::Tensor allowed = pos.view({1, seq}).le(pos.view({seq, 1}));  // causal [s, s]
  if (config_.sliding_window) allowed = allowed.logical_and(pos.view({1, seq}).gt(pos.view({seq, 1}) - *config_.sliding_window));
  at::Tensor same = segment.unsqueeze(2).eq(segment.unsqueeze(1)).logical_and(segment.ne(0).unsqueeze(1));
  at::Tensor mask = allowed.unsqueeze(0).logical_and(same);
  mask = mask.logical_or(pos.view({seq, 1}).eq(pos.view({1, seq})).unsqueeze(0)).unsqueeze(1);
  return {decode(x, position_ids.to(device_, at::kLong), mask, nullptr, 0)};
}

at::Tensor LlamaModel::decode(at::Tensor x, const at::Tensor& positions, const at::Tensor& mask, KvCache* cache,
                              int64_t past) const {
  at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq_;  // [b, s, hd/2]
  at::Tensor angles = at::cat({freqs, freqs}, -1).unsqueeze(1);         // [b, 1, s, hd]
  at::Tensor cos = angles.cos().to(dtype_), sin = angles.sin().to(dtype_);
  for (size_t i = 0; i < layers.size(); ++i) {
    const int index = static_cast<int>(i);
    // Captures by value: a runner may call it again after decode() returned.
    LayerFn layer = [this, index, cos, sin, mask, cache, past](const at::Tensor& h) {
      const LlamaLayer& l = layers[index];
      at::Tensor y = h + attention(l, rms_norm(h, l.input_norm), cos, sin, mask, cache, index, past);
      return y + mlp(l, rms_norm(y, l.post_attention_norm));
    };
    x = layer_runner_ ? layer_runner_(index, x, layer) : layer(x);
  }
  return rms_norm(x, final_norm);
}

at::Tensor LlamaModel::lm_logits(const at::Tensor& hidden) const {
  OPINE_CHECK(lm_head.defined(), "this model has a ", head_kind_name(config_.head),
              " head, not a language-model head");
  return at::linear(hidden, lm_head);
}

at::Tensor LlamaModel::sequence_logits(const at::Tensor& hidden, const at::Tensor& attention_mask) const {
  OPINE_CHECK(score.defined(), "this model has no classification or regression head");
  const int64_t batch = hidden.size(0), seq = hidden.size(1);
  // The rightmost real token of each row, for left and right padding alike.
  at::Tensor last;
  if (attention_mask.defined()) {
    at::Tensor pos = at::arange(seq, at::TensorOptions().dtype(at::kLong).device(hidden.device()));
    last = (pos * attention_mask.to(hidden.device()).ne(0).to(at::kLong)).argmax(1);
  } else {
    last = at::full({batch}, seq - 1, at::TensorOptions().dtype(at::kLong).device(hidden.device()));
  }
  at::Tensor pooled = hidden.gather(1, last.view({batch, 1, 1}).expand({batch, 1, hidden.size(2)})).squeeze(1);
  return at::linear(pooled, score);
}

KvCache LlamaModel::make_cache(int64_t batch, int64_t capacity) const {
  const LlamaConfig& c = config_;
  KvCache cache;
  const auto o = at::TensorOptions().dtype(dtype_).device(device_);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    cache.keys.push_back(at::zeros({batch, c.num_kv_heads, capacity, c.head_dim}, o));
    cache.values.push_back(at::zeros({batch, c.num_kv_heads, capacity, c.head_dim}, o));
  }
  cache.key_valid = at::zeros({batch, capacity}, o.dtype(at::kBool));
  cache.next_position = at::zeros({batch}, o.dtype(at::kLong));
  cache.capacity = capacity;
  return cache;
}

at::Tensor with_prefix(const LlamaModel& model, const at::Tensor& prefix_embeds, const at::Tensor& input_ids) {
  at::Tensor embeds = model.embed(input_ids);
  OPINE_CHECK(prefix_embeds.dim() == 2 && prefix_embeds.size(1) == embeds.size(2), "prefix embeddings ",
              prefix_embeds.sizes(), " do not fit the model's width ", embeds.size(2));
  at::Tensor prefix = prefix_embeds.to(embeds.device(), embeds.scalar_type()).unsqueeze(0);
  return at::cat({prefix.expand({embeds.size(0), prefix.size(1), prefix.size(2)}), embeds}, 1);
}

at::Tensor token_logprobs(const LlamaModel& model, const at::Tensor& input_ids,
                          const at::Tensor& attention_mask, const at::Tensor& prefix_embeds) {
  const int64_t seq = input_ids.size(1);
  at::Tensor hidden;
  if (prefix_embeds.defined()) {
    const int64_t n = prefix_embeds.size(0);
    at::Tensor embeds = with_prefix(model, prefix_embeds, input_ids);
    at::Tensor mask = attention_mask.defined()
                          ? at::cat({at::ones({input_ids.size(0), n}, attention_mask.options()), attention_mask}, 1)
                          : at::Tensor();
    hidden = model.forward_embeds(embeds, mask).hidden.narrow(1, n, seq);
  } else {
    hidden = model.forward(input_ids, attention_mask).hidden;
  }
  at::Tensor logits = model.lm_logits(hidden);
  at::Tensor logp = at::log_softmax(logits.narrow(1, 0, seq - 1).to(at::kFloat), -1);
  at::Tensor next = input_ids.narrow(1, 1, seq - 1).to(logp.device(), at::kLong).unsqueeze(-1);
  return logp.gather(-1, next).squeeze(-1);
}

}  // namespace opine::models
