// A GGUF file (llama.cpp) as a Llama-family model: hyperparameters from the metadata, tensors
// renamed to transformers' names through an explicit table, dequantized to float32 on load.
#include <regex>

#include "core/error.h"
#include "models/gguf.h"
#include "models/loader.h"

namespace opine::models {

namespace {

// GGUF tensor name (per-layer ones after "blk.N.") -> transformers name.
const std::map<std::string, std::string> kGlobalNames = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};
const std::map<std::string, std::string> kLayerNames = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"attn_output.bias", "self_attn.o_proj.bias"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_gate.bias", "mlp.gate_proj.bias"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_up.bias", "mlp.up_proj.bias"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
    {"ffn_down.bias", "mlp.down_proj.bias"},
};

std::string hf_name(const std::string& gguf_name) {
  auto g = kGlobalNames.find(gguf_name);
  if (g != kGlobalNames.end()) return g->second;
  static const std::regex layer(R"(blk\.(\d+)\.(.+))");
  std::smatch m;
  if (std::regex_match(gguf_name, m, layer)) {
    auto l = kLayerNames.find(m[2].str());
    if (l != kLayerNames.end()) return "model.layers." + m[1].str() + "." + l->second;
  }
  return gguf_name;  // unknown: reported as unexpected by the weight table
}

class GgufSource : public TensorSource {
 public:
  GgufSource(gguf::File file, bool permute_rotary, int64_t heads, int64_t kv_heads)
      : file_(std::move(file)), permute_(permute_rotary), heads_(heads), kv_heads_(kv_heads) {
    for (const gguf::TensorInfo& t : file_.tensors()) {
      const std::string name = hf_name(t.name);
      OPINE_CHECK_FORMAT(!by_name_.count(name), file_.path(), ": two tensors map to ", name);
      by_name_[name] = &t;
    }
  }
  std::vector<std::string> names() const override {
    std::vector<std::string> out;
    for (const auto& [name, t] : by_name_) out.push_back(name);
    return out;
  }
  std::vector<int64_t> shape(const std::string& name) const override { return info(name).torch_shape(); }
  at::Tensor get(const std::string& name) const override {
    at::Tensor t = file_.dequantize(info(name));
    // llama.cpp permutes q/k rows for rotary on interleaved pairs (Llama, Mistral); undo it.
    if (permute_ && name.find("self_attn.q_proj.") != std::string::npos)
      return interleaved_to_half_rotary(t, heads_);
    if (permute_ && name.find("self_attn.k_proj.") != std::string::npos)
      return interleaved_to_half_rotary(t, kv_heads_);
    return t;
  }
  std::string describe() const override { return file_.path(); }

 private:
  const gguf::TensorInfo& info(const std::string& name) const {
    auto it = by_name_.find(name);
    OPINE_CHECK_FORMAT(it != by_name_.end(), file_.path(), ": no tensor for ", name);
    return *it->second;
  }
  gguf::File file_;
  bool permute_;
  int64_t heads_, kv_heads_;
  std::map<std::string, const gguf::TensorInfo*> by_name_;
};

}  // namespace

ModelFile open_gguf_model(const std::string& path) {
  gguf::File g = gguf::File::open(path);
  const std::string arch = g.get("general.architecture").as_string();
  OPINE_CHECK_FORMAT(arch == "llama" || arch == "qwen2" || arch == "mistral", path,
                     ": general.architecture '", arch,
                     "' is not a Llama-family decoder (supported: llama, qwen2, mistral)");
  auto key = [&](const std::string& k) { return arch + "." + k; };
  auto required = [&](const std::string& k) { return g.get(key(k)).as_int64(); };

  LlamaConfig c;
  c.model_type = arch;
  c.hidden_size = required("embedding_length");
  c.num_layers = required("block_count");
  c.intermediate_size = required("feed_forward_length");
  c.num_heads = required("attention.head_count");
  c.num_kv_heads = g.get_int(key("attention.head_count_kv")).value_or(c.num_heads);
  OPINE_CHECK_FORMAT(c.num_heads > 0, path, ": ", key("attention.head_count"), " must be positive");
  c.head_dim = g.get_int(key("attention.key_length"))
                   .value_or(g.get_int(key("rope.dimension_count")).value_or(c.hidden_size / c.num_heads));
  c.max_position_embeddings = g.get_int(key("context_length")).value_or(2048);
  c.rms_norm_eps = g.get_float(key("attention.layer_norm_rms_epsilon")).value_or(1e-5);
  c.rope_theta = g.get_float(key("rope.freq_base")).value_or(10000.0);
  const std::string scaling = g.get_string(key("rope.scaling.type")).value_or("none");
  if (scaling == "linear") {
    c.rope_scaling.type = "linear";
    c.rope_scaling.factor = g.get_float(key("rope.scaling.factor")).value_or(1.0);
  } else {
    OPINE_CHECK_FORMAT(scaling == "none", path, ": rope scaling '", scaling, "' is not supported");
  }
  OPINE_CHECK_FORMAT(!g.has_tensor("rope_freqs.weight"), path,
                     ": per-frequency RoPE factors (rope_freqs.weight, Llama 3.1 GGUF) are not supported yet");
  c.sliding_window = g.get_int(key("attention.sliding_window"));
  const gguf::TensorInfo& embed = g.tensor("token_embd.weight");
  c.vocab_size = g.get_int(key("vocab_size")).value_or(embed.torch_shape().at(0));
  c.tie_word_embeddings = !g.has_tensor("output.weight");
  c.qkv_bias = g.has_tensor("blk.0.attn_q.bias");
  c.attention_bias = g.has_tensor("blk.0.attn_output.bias");
  if (c.attention_bias) c.qkv_bias = false;
  c.mlp_bias = g.has_tensor("blk.0.ffn_up.bias");
  c.bos_token_id = g.get_int("tokenizer.ggml.bos_token_id");
  c.eos_token_id = g.get_int("tokenizer.ggml.eos_token_id");
  c.pad_token_id = g.get_int("tokenizer.ggml.padding_token_id");
  c.validate(path);

  ModelFile file;
  file.path = path;
  file.format = ModelFormat::kGguf;
  file.config = c;
  file.stored_types = g.type_counts();
  file.metadata["gguf_version"] = std::to_string(g.version());
  for (const char* k : {"general.name", "tokenizer.ggml.model", "tokenizer.ggml.pre"})
    if (auto v = g.get_string(k)) file.metadata[k] = *v;
  if (auto ft = g.get_int("general.file_type")) file.metadata["general.file_type"] = std::to_string(*ft);
  // Qwen2 uses transformers' rotary layout already; llama.cpp permutes only Llama-style q/k.
  const bool permute = arch != "qwen2";
  file.tensors = std::make_unique<GgufSource>(std::move(g), permute, c.num_heads, c.num_kv_heads);
  return file;
}

}  // namespace opine::models
