#include "launch/trainable.h"

#include <ATen/core/grad_mode.h>

#include <map>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "core/random.h"
#include "launch/model_setup.h"
#include "launch/resolve.h"
#include "models/heads.h"
#include "models/safetensors.h"
#include "peft/adapter_io.h"
#include "peft/merge.h"

namespace opine::launch {

namespace {

// Biases and norms take no weight decay (transformers' Trainer: get_decay_parameter_names), be
// they Llama's RMSNorms ("input_layernorm") or BERT's LayerNorms.
bool decays(const std::string& name) {
  return !(name.ends_with("bias") || name.find("norm") != std::string::npos || name.find("LayerNorm") != std::string::npos);
}

models::LoadOptions training_load_options(const OpineOptions& o, const std::vector<std::string>& classes) {
  models::LoadOptions lo = load_options(o.model, o.seed);
  if (o.data.format == "sft") {
    OPINE_CHECK(o.model.head == "auto" || o.model.head == "causal-lm",
                "data.format=sft trains the language-model head, not model.head=", o.model.head);
    lo.head = models::HeadKind::kCausalLm;
  } else if (classes.empty()) {
    lo.head = models::HeadKind::kRegression;
  } else {
    lo.head = models::HeadKind::kClassification;
    lo.num_labels = static_cast<int64_t>(classes.size());
  }
  return lo;
}

}  // namespace

Trainable::Trainable(const OpineOptions& o, dist::Runtime& runtime, at::Device device,
                     models::ModelFile& file, const std::vector<std::string>& classes,
                     const models::Tokenizer& tokenizer)
    : method_(o.peft.method), device_(device), model_path_(o.model.path), classes_(classes) {
  OPINE_CHECK(o.model.adapter.empty(), "model.adapter=", o.model.adapter,
              ": training starts a new adapter (to continue a run, use --resume)");
  models::LoadOptions lo = training_load_options(o, classes);
  lo.device = device;
  labels_ = *lo.head == models::HeadKind::kCausalLm     ? data::LabelKind::kCausalLm
            : *lo.head == models::HeadKind::kRegression ? data::LabelKind::kRegression
                                                        : data::LabelKind::kClass;
  OPINE_CHECK(!(method_ == "none" && labels_ == data::LabelKind::kCausalLm),
              "peft.method=none trains only a classification or regression head; data.format=sft needs lora "
              "or prompt_tuning");

  OPINE_CHECK(!(file.encoder && labels_ == data::LabelKind::kCausalLm), o.model.path, " is a ",
              file.encoder ? file.encoder->model_type : "", " encoder: data.format=sft needs a decoder");
  OPINE_CHECK(!(file.encoder && method_ == "prompt_tuning"), o.model.path, " is a ",
              file.encoder ? file.encoder->model_type : "", " encoder: peft.method=prompt_tuning is for decoders "
              "(use lora, full or none)");
  OPINE_CHECK(!(method_ == "full" && !file.encoder), "peft.method=full is implemented for encoders (BERT, RoBERTa, "
              "XLM-R); train ", o.model.path, " with peft.method=lora or prompt_tuning");
  OPINE_CHECK(!(method_ == "full" && o.model.dtype != "f32"), "peft.method=full keeps float32 weights (its ",
              "optimizer updates them in place); model.dtype=", o.model.dtype, " is for adapters over a frozen base");
  if (file.encoder)
    OPINE_CHECK(o.data.max_length <= file.encoder->max_tokens(), "data.max_length=", o.data.max_length,
                " is longer than ", o.model.path, " can read: ", file.encoder->max_tokens(), " tokens");
  OPINE_CHECK(!(method_ == "full" && o.model.quant != "none"), "peft.method=full trains every weight; 4-bit weights "
              "(model.quant=", o.model.quant, ") cannot train: use peft.method=lora (QLoRA)");

  // Once per node: the first rank loads; the others get a skeleton and their shard.
  dist::Communicator& node = runtime.node();
  const bool loads = node.rank() == 0;
  model_ = loads ? models::load_backbone(file, lo) : models::backbone_skeleton(file, lo);
  if (o.model.quant != "none") {
    apply_quantization(*model_, o.model);
    share_quant_offsets(*model_, node);
  }

  const uint64_t seed = derive_seed(static_cast<uint64_t>(o.seed), 0x70656674 /*"peft"*/, 0);
  const bool sequence_head = labels_ != data::LabelKind::kCausalLm;
  if (method_ == "lora") {
    peft::LoraConfig config = o.peft.lora;
    if (config.target_modules.empty() && config.target_modules_regex.empty())
      config.target_modules = model_->default_lora_targets();
    config.task_type = sequence_head ? "SEQ_CLS" : "CAUSAL_LM";
    config.base_model_name_or_path = o.model.path;
    lora_ = std::make_unique<peft::LoraModel>(*model_, config, seed, /*initialize=*/loads);
    groups_ = lora_->parameter_groups();
  } else if (method_ == "prompt_tuning") {
    peft::PromptTuningConfig config = o.peft.prompt_tuning;
    config.task_type = sequence_head ? "SEQ_CLS" : "CAUSAL_LM";
    config.base_model_name_or_path = o.model.path;
    prompt_ = std::make_unique<peft::PromptTuning>(llama(), config, seed);
    if (config.prompt_tuning_init == "TEXT" && loads)
      prompt_->init_from_text(llama(), tokenizer, config.prompt_tuning_init_text);
    peft::ParamGroup all{"all", 1.0, true, prompt_->named_trainable()};
    groups_ = {all};
  } else {
    // Every weight (full) or the head's alone (none), under its Hugging Face name.
    peft::ParamGroup all{"all", 1.0, true, {}};
    if (method_ == "full") {
      for (const models::WeightSlotRef& w : model_->weight_table()) {
        *w.tensor = w.tensor->detach().set_requires_grad(true);
        all.params.emplace_back(w.name, *w.tensor);
      }
    } else {
      for (const TensorSlot& s : model_->head_slots()) {
        *s.tensor = s.tensor->detach().set_requires_grad(true);
        all.params.emplace_back(s.name, *s.tensor);
      }
    }
    groups_ = {all};
  }

  // Optimizer groups: the adapter's groups, each split by weight decay.
  std::map<std::string, int> group_of_name;
  std::map<std::string, int> index_of_group;
  for (const peft::ParamGroup& g : groups_) {
    for (const auto& [name, tensor] : g.params) {
      const bool decay = g.weight_decay && decays(name);
      const std::string key = g.name + (decay ? "" : "_no_decay");
      auto [it, added] = index_of_group.emplace(key, static_cast<int>(group_names_.size()));
      if (added) group_names_.push_back(key);
      // By the model's own name: PEFT prefixes "base_model.model." (LoRA) or "base_model." (prompt tuning).
      std::string model_name = name;
      for (const std::string& prefix : {std::string(peft::kBaseModelPrefix), std::string("base_model.")})
        if (model_name.starts_with(prefix)) {
          model_name = model_name.substr(prefix.size());
          break;
        }
      group_of_name[model_name] = it->second;
    }
  }
  // Only the groups' names and settings are needed from here on; holding their tensors would
  // keep a whole unsharded copy of what trains alive once sharding has flattened it.
  for (peft::ParamGroup& g : groups_) g.params.clear();
  const dist::GroupOf group_of = [group_of_name](const std::string& slot) {
    auto it = group_of_name.find(slot);
    OPINE_ASSERT(it != group_of_name.end(), "trainable tensor ", slot, " is in no optimizer group");
    return it->second;
  };

  std::vector<dist::ShardedModel::Unit> units;
  for (int i = 0; i < model_->num_layers(); ++i)
    units.push_back({model_->layer_prefix() + std::to_string(i), model_->layer_slots(i)});
  std::vector<TensorSlot> root = model_->root_slots();
  if (prompt_) root.push_back({"prompt_embeddings", &prompt_->embeddings()});
  sharded_ = std::make_unique<dist::ShardedModel>(
      std::move(units), std::move(root), runtime.for_device(device), &node, o.train.shard, device, group_of);
  dist::ShardedModel* sharded = sharded_.get();
  model_->set_layer_runner(
      [sharded](int index, const at::Tensor& x, const models::Backbone::LayerFn& layer) {
        return sharded->run(index, x, layer);
      });
}

Trainable::~Trainable() = default;

models::LlamaModel& Trainable::llama() const {
  auto* llama = dynamic_cast<models::LlamaModel*>(model_.get());
  OPINE_ASSERT(llama != nullptr, "a ", model_->model_type(), " model is not a decoder");
  return *llama;
}

void Trainable::set_training(bool training) {
  if (lora_) lora_->set_training(training);
  model_->set_training(training);
}

at::Tensor Trainable::sequence_output(const data::Batch& b) const {
  const at::Tensor ids = b.input_ids.to(device_), mask = b.attention_mask.to(device_);
  if (prompt_) return prompt_->sequence_logits(llama(), ids, mask);
  return model_->classify(ids, mask);
}

at::Tensor Trainable::lm_logits(const data::Batch& b) const {
  const at::Tensor ids = b.input_ids.to(device_), mask = b.attention_mask.to(device_);
  if (prompt_) return prompt_->lm_logits(llama(), ids, mask);
  return llama().lm_logits(llama().forward(ids, mask).hidden);
}

double loss_count(const data::Batch& b, data::LabelKind kind, const at::Tensor& class_weights) {
  switch (kind) {
    case data::LabelKind::kClass:
      return class_weights.defined()
                 ? class_weights.cpu().index_select(0, b.labels.cpu()).sum().item<double>()
                 : double(b.rows());
    case data::LabelKind::kRegression:
      return double(b.rows());
    case data::LabelKind::kCausalLm:
      return double(
          b.labels.narrow(1, 1, b.labels.size(1) - 1).ne(models::kIgnoreIndex).sum().item<int64_t>());
  }
  return 0;
}

LossSum Trainable::sequence_loss(const at::Tensor& out, const data::Batch& b,
                                 const at::Tensor& class_weights) const {
  LossSum loss;
  loss.count = loss_count(b, labels_, class_weights);
  if (labels_ == data::LabelKind::kClass) {
    const at::Tensor w = class_weights.defined() ? class_weights.to(device_) : at::Tensor();
    loss.sum = at::cross_entropy_loss(out, b.labels.to(device_), w, at::Reduction::Sum);
  } else {
    loss.sum = (out.squeeze(-1) - b.labels.to(device_, at::kFloat)).pow(2).sum();
  }
  return loss;
}

LossSum Trainable::loss_sum(const data::Batch& b, const at::Tensor& class_weights) const {
  if (labels_ != data::LabelKind::kCausalLm)
    return sequence_loss(sequence_output(b).to(at::kFloat), b, class_weights);
  const at::Tensor logits = lm_logits(b);
  const int64_t vocab = logits.size(-1);
  // Position t predicts token t + 1, as transformers' causal-LM loss shifts.
  const at::Tensor shifted = logits.narrow(1, 0, logits.size(1) - 1).reshape({-1, vocab}).to(at::kFloat);
  const at::Tensor target = b.labels.to(device_).narrow(1, 1, b.labels.size(1) - 1).reshape({-1});
  LossSum out;
  out.sum = at::cross_entropy_loss(shifted, target, {}, at::Reduction::Sum, models::kIgnoreIndex);
  out.count = loss_count(b, labels_, class_weights);
  return out;
}

Predictions Trainable::infer(const data::Batch& b) const {
  at::NoGradGuard no_grad;
  OPINE_CHECK(labels_ != data::LabelKind::kCausalLm, "a causal-LM model has no head to predict with");
  return predictions_of(sequence_output(b).to(at::kFloat));
}

Predictions Trainable::predictions_of(const at::Tensor& out) const {
  Predictions p;
  if (labels_ == data::LabelKind::kClass) {
    p.probabilities = at::softmax(out, -1).cpu();
    p.classes = out.argmax(-1).cpu();
  } else {
    p.scores = out.squeeze(-1).cpu();
  }
  return p;
}

std::pair<Predictions, LossSum> Trainable::predict(const data::Batch& b,
                                                   const at::Tensor& class_weights) const {
  at::NoGradGuard no_grad;
  if (labels_ == data::LabelKind::kCausalLm) return {Predictions(), loss_sum(b, class_weights)};
  const at::Tensor out = sequence_output(b).to(at::kFloat);
  return {predictions_of(out), sequence_loss(out, b, class_weights)};
}

std::vector<OptimGroup> Trainable::optimizer_groups() const {
  std::vector<OptimGroup> groups;
  for (size_t i = 0; i < group_names_.size(); ++i) {
    OptimGroup g;
    g.name = group_names_[i];
    g.weight_decay = !g.name.ends_with("_no_decay");
    for (const peft::ParamGroup& pg : groups_)
      if (g.name == pg.name || g.name == pg.name + "_no_decay") g.lr_scale = pg.lr_scale;
    for (const dist::FlatParam& p : sharded_->parameters())
      if (p.group == static_cast<int>(i)) g.params.push_back(p.param);
    if (!g.params.empty()) groups.push_back(std::move(g));
  }
  return groups;
}

std::vector<std::pair<std::string, at::Tensor>> Trainable::named_trainable() const {
  if (lora_) return lora_->named_trainable();
  if (prompt_) return prompt_->named_trainable();
  // full / none, under Hugging Face names; read from the model's slots each time, as sharding
  // swaps the tensors in them.
  std::vector<std::pair<std::string, at::Tensor>> out;
  if (method_ == "full")
    for (const models::WeightSlotRef& w : model_->weight_table()) out.emplace_back(w.name, *w.tensor);
  else
    for (const TensorSlot& s : model_->head_slots()) out.emplace_back(s.name, *s.tensor);
  return out;
}

void Trainable::save_adapter(const std::filesystem::path& dir, bool write) {
  sharded_->with_full_trainables([&] {
    if (!write) return;
    if (lora_) {
      peft::save_lora_adapter(dir.string(), *lora_);
    } else if (prompt_) {
      peft::save_prompt_tuning(dir.string(), *prompt_, llama().config());
    } else if (method_ == "full") {
      peft::save_hf_model(dir.string(), *model_, model_path_, model_->dtype(), classes_);
    } else {
      // The head alone: a LoRA-free adapter is not a PEFT type; keep it as safetensors.
      std::filesystem::create_directories(dir);
      std::vector<std::pair<std::string, at::Tensor>> head;
      for (const auto& [name, tensor] : named_trainable()) head.emplace_back(name, tensor.detach().cpu());
      models::save_safetensors((dir / "head.safetensors").string(), head, {});
    }
  });
}

void Trainable::load_adapter_values(const std::filesystem::path& dir) {
  const std::filesystem::path file = lora_ || prompt_      ? dir / "adapter_model.safetensors"
                                    : method_ == "full" ? dir / "model.safetensors"
                                                        : dir / "head.safetensors";
  const models::SafetensorsFile saved = models::SafetensorsFile::open(file.string());
  sharded_->with_full_trainables([&] {
    at::NoGradGuard no_grad;
    for (auto& [name, tensor] : named_trainable()) {
      // PEFT names the prompt "prompt_embeddings"; LoRA tensors drop the adapter name.
      const std::string& key = name;
      OPINE_CHECK_FORMAT(saved.entries().count(key), file.string(), ": no tensor ", key, " to resume from");
      const at::Tensor value = saved.tensor(key);
      OPINE_CHECK_FORMAT(value.sizes() == tensor.sizes(), file.string(), ": ", key, " has shape ",
                         value.sizes(), ", the model needs ", tensor.sizes());
      tensor.detach().copy_(value);
    }
  });
}

std::string Trainable::describe_trainable() const {
  std::ostringstream out;
  if (lora_)
    out << lora_->count_parameters().to_string();
  else if (prompt_)
    out << prompt_->count_parameters(llama()).to_string();
  else {
    int64_t n = 0;
    for (const auto& [name, tensor] : named_trainable()) n += tensor.numel();
    out << "trainable params: " << n << (method_ == "full" ? " (every weight)" : " (the head)");
  }
  out << "\n" << sharded_->describe();
  return out.str();
}

}  // namespace opine::launch
