#include "models/encoder.h"

#include <ATen/CPUGeneratorImpl.h>

#include "core/error.h"

namespace opine::models {

EncoderModel::EncoderModel(EncoderConfig config, at::ScalarType dtype, at::Device device, bool meta_layers)
    : config_(std::move(config)), dtype_(dtype), device_(device) {
  config_.validate("model config");
  const EncoderConfig& c = config_;
  const auto root = at::TensorOptions().dtype(dtype).device(device);
  const auto o = meta_layers ? root.device(at::kMeta) : root;
  const int64_t h = c.hidden_size, f = c.intermediate_size;
  word_embeddings = at::empty({c.vocab_size, h}, root);
  position_embeddings = at::empty({c.max_position_embeddings, h}, root);
  token_type_embeddings = at::empty({c.type_vocab_size, h}, root);
  embeddings_norm_weight = at::empty({h}, root);
  embeddings_norm_bias = at::empty({h}, root);
  layers.resize(c.num_layers);
  auto linear = [&](Linear& l, int64_t out, int64_t in) {
    l.weight = at::empty({out, in}, o);
    l.bias = at::empty({out}, o);
  };
  for (EncoderLayer& l : layers) {
    linear(l.query, h, h);
    linear(l.key, h, h);
    linear(l.value, h, h);
    linear(l.attention_output, h, h);
    l.attention_norm_weight = at::empty({h}, o);
    l.attention_norm_bias = at::empty({h}, o);
    linear(l.intermediate, f, h);
    linear(l.output, h, f);
    l.output_norm_weight = at::empty({h}, o);
    l.output_norm_bias = at::empty({h}, o);
  }
  // BertForSequenceClassification pools; RobertaForSequenceClassification has no pooler. A bare
  // BERT (BertModel) keeps its pooler so its pooled output can be read.
  if (!c.roberta_style()) {
    pooler.weight = at::empty({h, h}, root);
    pooler.bias = at::empty({h}, root);
  }
  if (c.head) {
    if (c.roberta_style()) {
      classifier_dense_weight = at::empty({h, h}, root);
      classifier_dense_bias = at::empty({h}, root);
    }
    classifier_weight = at::empty({c.num_labels, h}, root);
    classifier_bias = at::empty({c.num_labels}, root);
  }
}

HeadKind EncoderModel::head_kind() const {
  OPINE_CHECK(config_.head.has_value(), "this ", config_.model_type,
              " encoder has no classification or regression head");
  return *config_.head;
}

std::vector<WeightSlotRef> EncoderModel::weight_table() {
  const std::string p = config_.base_prefix();
  std::vector<WeightSlotRef> t;
  auto add = [&](std::string name, at::Tensor& w) {
    if (w.defined()) t.push_back({std::move(name), w.sizes().vec(), &w});
  };
  add(p + "embeddings.word_embeddings.weight", word_embeddings);
  add(p + "embeddings.position_embeddings.weight", position_embeddings);
  add(p + "embeddings.token_type_embeddings.weight", token_type_embeddings);
  add(p + "embeddings.LayerNorm.weight", embeddings_norm_weight);
  add(p + "embeddings.LayerNorm.bias", embeddings_norm_bias);
  for (size_t i = 0; i < layers.size(); ++i) {
    EncoderLayer& l = layers[i];
    const std::string lp = layer_prefix() + std::to_string(i) + ".";
    auto add_linear = [&](const std::string& name, Linear& linear) {
      add(lp + name + ".weight", linear.weight);
      add(lp + name + ".bias", linear.bias);
    };
    add_linear("attention.self.query", l.query);
    add_linear("attention.self.key", l.key);
    add_linear("attention.self.value", l.value);
    add_linear("attention.output.dense", l.attention_output);
    add(lp + "attention.output.LayerNorm.weight", l.attention_norm_weight);
    add(lp + "attention.output.LayerNorm.bias", l.attention_norm_bias);
    add_linear("intermediate.dense", l.intermediate);
    add_linear("output.dense", l.output);
    add(lp + "output.LayerNorm.weight", l.output_norm_weight);
    add(lp + "output.LayerNorm.bias", l.output_norm_bias);
  }
  add(p + "pooler.dense.weight", pooler.weight);
  add(p + "pooler.dense.bias", pooler.bias);
  for (TensorSlot& s : head_slots()) add(s.name, *s.tensor);
  return t;
}

std::vector<LinearSlotRef> EncoderModel::linear_table() {
  std::vector<LinearSlotRef> t;
  for (size_t i = 0; i < layers.size(); ++i) {
    EncoderLayer& l = layers[i];
    const std::string lp = layer_prefix() + std::to_string(i) + ".";
    t.push_back({lp + "attention.self.query", &l.query});
    t.push_back({lp + "attention.self.key", &l.key});
    t.push_back({lp + "attention.self.value", &l.value});
    t.push_back({lp + "attention.output.dense", &l.attention_output});
    t.push_back({lp + "intermediate.dense", &l.intermediate});
    t.push_back({lp + "output.dense", &l.output});
  }
  if (has_pooler()) t.push_back({config_.base_prefix() + "pooler.dense", &pooler});
  return t;
}

std::vector<TensorSlot> EncoderModel::layer_slots(int index) {
  OPINE_ASSERT(index >= 0 && index < num_layers(), "layer ", index);
  EncoderLayer& l = layers[index];
  std::vector<TensorSlot> slots;
  auto add_linear = [&](const std::string& name, Linear& linear) {
    for (TensorSlot& s : linear.tensor_slots()) slots.push_back({name + "." + s.name, s.tensor});
  };
  add_linear("attention.self.query", l.query);
  add_linear("attention.self.key", l.key);
  add_linear("attention.self.value", l.value);
  add_linear("attention.output.dense", l.attention_output);
  slots.push_back({"attention.output.LayerNorm.weight", &l.attention_norm_weight});
  slots.push_back({"attention.output.LayerNorm.bias", &l.attention_norm_bias});
  add_linear("intermediate.dense", l.intermediate);
  add_linear("output.dense", l.output);
  slots.push_back({"output.LayerNorm.weight", &l.output_norm_weight});
  slots.push_back({"output.LayerNorm.bias", &l.output_norm_bias});
  return slots;
}

std::vector<TensorSlot> EncoderModel::root_slots() {
  const std::string p = config_.base_prefix();
  std::vector<TensorSlot> slots = {{p + "embeddings.word_embeddings.weight", &word_embeddings},
                                   {p + "embeddings.position_embeddings.weight", &position_embeddings},
                                   {p + "embeddings.token_type_embeddings.weight", &token_type_embeddings},
                                   {p + "embeddings.LayerNorm.weight", &embeddings_norm_weight},
                                   {p + "embeddings.LayerNorm.bias", &embeddings_norm_bias}};
  if (has_pooler())
    for (TensorSlot& s : pooler.tensor_slots()) slots.push_back({p + "pooler.dense." + s.name, s.tensor});
  for (const TensorSlot& s : head_slots()) slots.push_back(s);
  return slots;
}

std::vector<TensorSlot> EncoderModel::head_slots() {
  if (!classifier_weight.defined()) return {};
  if (!config_.roberta_style())
    return {{"classifier.weight", &classifier_weight}, {"classifier.bias", &classifier_bias}};
  return {{"classifier.dense.weight", &classifier_dense_weight},
          {"classifier.dense.bias", &classifier_dense_bias},
          {"classifier.out_proj.weight", &classifier_weight},
          {"classifier.out_proj.bias", &classifier_bias}};
}

void EncoderModel::to(at::ScalarType dtype, at::Device device) {
  for (const WeightSlotRef& s : weight_table()) *s.tensor = s.tensor->to(device, dtype);
  for (const LinearSlotRef& s : linear_table())
    if (s.linear->op) s.linear->op->to(device, dtype);
  dtype_ = dtype;
  device_ = device;
}

int64_t EncoderModel::resident_bytes() const {
  int64_t total = 0;
  for (const WeightSlotRef& s : const_cast<EncoderModel*>(this)->weight_table()) total += int64_t(s.tensor->nbytes());
  for (const EncoderLayer& l : layers)
    for (const Linear* p : {&l.query, &l.key, &l.value, &l.attention_output, &l.intermediate, &l.output})
      if (p->op) total += p->resident_bytes();
  if (pooler.op) total += pooler.resident_bytes();
  return total;
}

void EncoderModel::initialize_head(uint64_t seed, bool pooler_too) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const double std = config_.initializer_range;
  auto init = [&](at::Tensor& w, at::Tensor& b) {
    if (!w.defined()) return;
    at::Tensor drawn = at::empty(w.sizes(), at::TensorOptions().dtype(at::kFloat));
    drawn.normal_(0.0, std, gen);
    w = drawn.to(w.device(), w.scalar_type());
    b = at::zeros_like(b);
  };
  if (pooler_too) init(pooler.weight, pooler.bias);
  init(classifier_dense_weight, classifier_dense_bias);
  init(classifier_weight, classifier_bias);
}

at::Tensor EncoderModel::dropout(const at::Tensor& x, double p) const {
  return training_ && p > 0 ? at::dropout(x, p, /*train=*/true) : x;
}

at::Tensor EncoderModel::layer_forward(const EncoderLayer& l, const at::Tensor& x, const at::Tensor& mask) const {
  const EncoderConfig& c = config_;
  const int64_t batch = x.size(0), seq = x.size(1), h = c.hidden_size;
  auto heads = [&](const at::Tensor& t) { return t.view({batch, seq, c.num_heads, c.head_dim()}).transpose(1, 2); };
  at::Tensor q = heads(l.query.forward(x)), k = heads(l.key.forward(x)), v = heads(l.value.forward(x));
  at::Tensor context = at::scaled_dot_product_attention(q, k, v, mask, training_ ? c.attention_dropout : 0.0);
  context = context.transpose(1, 2).reshape({batch, seq, h});
  at::Tensor attended = dropout(l.attention_output.forward(context), c.hidden_dropout);
  at::Tensor y = at::layer_norm(attended + x, {h}, l.attention_norm_weight, l.attention_norm_bias, c.layer_norm_eps);
  at::Tensor inner = l.intermediate.forward(y);
  if (c.hidden_act == "gelu") inner = at::gelu(inner);
  else if (c.hidden_act == "relu") inner = at::relu(inner);
  else inner = at::gelu(inner, "tanh");  // gelu_new, gelu_pytorch_tanh
  at::Tensor out = dropout(l.output.forward(inner), c.hidden_dropout);
  return at::layer_norm(out + y, {h}, l.output_norm_weight, l.output_norm_bias, c.layer_norm_eps);
}

EncoderOutput EncoderModel::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                    const at::Tensor& token_type_ids) const {
  const EncoderConfig& c = config_;
  OPINE_CHECK(input_ids.dim() == 2 && input_ids.size(1) > 0, "input_ids must be [batch, seq], got ",
              input_ids.sizes());
  const int64_t batch = input_ids.size(0), seq = input_ids.size(1);
  const at::Tensor ids = input_ids.to(device_, at::kLong);
  OPINE_CHECK(ids.min().item<int64_t>() >= 0 && ids.max().item<int64_t>() < c.vocab_size,
              "token id out of range [0, ", c.vocab_size, ")");
  const auto idx = at::TensorOptions().dtype(at::kLong).device(device_);
  at::Tensor valid = attention_mask.defined() ? attention_mask.to(device_).ne(0)
                                              : at::ones({batch, seq}, idx.dtype(at::kBool));
  OPINE_CHECK(valid.sizes() == ids.sizes(), "attention_mask ", attention_mask.sizes(), " does not match input_ids ",
              ids.sizes());

  // BERT numbers positions 0, 1, ...; RoBERTa counts non-padding tokens from pad_token_id + 1
  // (transformers' create_position_ids_from_input_ids), padding sitting at pad_token_id.
  at::Tensor positions;
  if (c.roberta_style()) {
    at::Tensor real = ids.ne(c.pad_token_id).logical_and(valid).to(at::kLong);
    positions = real.cumsum(1) * real + c.pad_token_id;
  } else {
    positions = at::arange(seq, idx).unsqueeze(0).expand({batch, seq});
  }
  OPINE_CHECK(positions.max().item<int64_t>() < c.max_position_embeddings, "a sequence of ", seq,
              " tokens is longer than the model's ", c.max_position_embeddings, " positions",
              c.roberta_style() ? " (less the padding offset)" : "");
  at::Tensor types = token_type_ids.defined() ? token_type_ids.to(device_, at::kLong) : at::zeros({batch, seq}, idx);
  at::Tensor x = at::embedding(word_embeddings, ids) + at::embedding(position_embeddings, positions) +
                 at::embedding(token_type_embeddings, types);
  x = at::layer_norm(x, {c.hidden_size}, embeddings_norm_weight, embeddings_norm_bias, c.layer_norm_eps);
  x = dropout(x, c.hidden_dropout);

  // Every query sees every real token (padding keys masked); padding queries too, so no row is empty.
  const at::Tensor mask = valid.view({batch, 1, 1, seq});
  for (int i = 0; i < num_layers(); ++i) {
    LayerFn layer = [this, i, mask](const at::Tensor& h) { return layer_forward(layers[i], h, mask); };
    x = layer_runner_ ? layer_runner_(i, x, layer) : layer(x);
  }
  EncoderOutput out{x, {}};
  if (has_pooler()) out.pooled = at::tanh(pooler.forward(x.select(1, 0)));
  return out;
}

at::Tensor EncoderModel::head_logits(const EncoderOutput& out) const {
  OPINE_CHECK(classifier_weight.defined(), "this ", config_.model_type,
              " encoder has no classification or regression head");
  const double p = config_.classifier_dropout.value_or(config_.hidden_dropout);
  if (!config_.roberta_style()) return at::linear(dropout(out.pooled, p), classifier_weight, classifier_bias);
  at::Tensor x = dropout(out.hidden.select(1, 0), p);  // <s>
  x = at::tanh(at::linear(x, classifier_dense_weight, classifier_dense_bias));
  return at::linear(dropout(x, p), classifier_weight, classifier_bias);
}

at::Tensor EncoderModel::classify(const at::Tensor& input_ids, const at::Tensor& attention_mask) const {
  return head_logits(forward(input_ids, attention_mask));
}

}  // namespace opine::models
