#include "models/llama2c.h"

#include <cstring>

#include "core/error.h"

namespace opine::models {

Llama2cSource::Llama2cSource(const std::string& path) : file_(MappedFile::open(path)) {
  constexpr size_t kHeader = 7 * sizeof(int32_t);
  OPINE_CHECK_FORMAT(file_->size() >= kHeader, path, ": too short for a llama2.c checkpoint");
  int32_t h[7];
  std::memcpy(h, file_->data(), kHeader);
  const int64_t dim = h[0], hidden = h[1], n_layers = h[2], n_heads = h[3], n_kv = h[4],
                seq_len = h[6];
  const bool shared = h[5] > 0;
  const int64_t vocab = shared ? h[5] : -int64_t(h[5]);
  for (int64_t v : {dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len})
    OPINE_CHECK_FORMAT(v > 0 && v < (1 << 24), path,
                       ": header value out of range; not a llama2.c checkpoint (version 0)?");
  OPINE_CHECK_FORMAT(dim % n_heads == 0 && n_heads % n_kv == 0, path, ": inconsistent header (dim ", dim,
                     ", heads ", n_heads, ", kv heads ", n_kv, ")");

  LlamaConfig& c = config_;
  c.model_type = "llama";
  c.vocab_size = vocab;
  c.hidden_size = dim;
  c.intermediate_size = hidden;
  c.num_layers = n_layers;
  c.num_heads = n_heads;
  c.num_kv_heads = n_kv;
  c.head_dim = dim / n_heads;
  c.max_position_embeddings = seq_len;
  c.rms_norm_eps = 1e-5;  // run.c's constant
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = shared;
  c.bos_token_id = 1;
  c.eos_token_id = 2;
  c.validate(path);

  // The layout run.c's memory_map_weights walks.
  const int64_t hd = c.head_dim, q = n_heads * hd, kv = n_kv * hd;
  size_t offset = kHeader;
  auto take = [&](const std::string& name, std::vector<int64_t> shape, int64_t heads = 0) {
    size_t count = 1;
    for (int64_t d : shape) count *= d;
    slices_[name] = {offset, shape, heads > 0, heads};
    offset += count * sizeof(float);
  };
  // Per-layer arrays are stored as one block per kind across layers.
  auto per_layer = [&](const std::string& suffix, std::vector<int64_t> shape, int64_t heads = 0) {
    for (int64_t l = 0; l < n_layers; ++l)
      take("model.layers." + std::to_string(l) + "." + suffix, shape, heads);
  };
  take("model.embed_tokens.weight", {vocab, dim});
  per_layer("input_layernorm.weight", {dim});
  per_layer("self_attn.q_proj.weight", {q, dim}, n_heads);
  per_layer("self_attn.k_proj.weight", {kv, dim}, n_kv);
  per_layer("self_attn.v_proj.weight", {kv, dim});
  per_layer("self_attn.o_proj.weight", {dim, q});
  per_layer("post_attention_layernorm.weight", {dim});
  per_layer("mlp.gate_proj.weight", {hidden, dim});
  per_layer("mlp.down_proj.weight", {dim, hidden});
  per_layer("mlp.up_proj.weight", {hidden, dim});
  take("model.norm.weight", {dim});
  // Precomputed RoPE tables (freq_cis_real/imag) that opine recomputes: skipped.
  offset += 2 * size_t(seq_len) * (hd / 2) * sizeof(float);
  if (!shared) take("lm_head.weight", {vocab, dim});
  OPINE_CHECK_FORMAT(offset <= file_->size(), path, ": truncated: the header implies ", offset,
                     " bytes, the file has ", file_->size());
  OPINE_CHECK_FORMAT(offset == file_->size(), path, ": ", file_->size() - offset,
                     " trailing bytes after the weights: not a version-0 llama2.c checkpoint?");
}

std::vector<std::string> Llama2cSource::names() const {
  std::vector<std::string> out;
  for (const auto& [name, s] : slices_) out.push_back(name);
  return out;
}

std::vector<int64_t> Llama2cSource::shape(const std::string& name) const {
  auto it = slices_.find(name);
  OPINE_CHECK_FORMAT(it != slices_.end(), describe(), ": no tensor ", name);
  return it->second.shape;
}

at::Tensor Llama2cSource::get(const std::string& name) const {
  auto it = slices_.find(name);
  OPINE_CHECK_FORMAT(it != slices_.end(), describe(), ": no tensor ", name);
  const Slice& s = it->second;
  at::Tensor t = at::empty(s.shape, at::kFloat);
  std::memcpy(t.data_ptr(), file_->data() + s.offset, t.numel() * sizeof(float));
  return s.rotary_heads ? interleaved_to_half_rotary(t, s.heads) : t;
}

}  // namespace opine::models
