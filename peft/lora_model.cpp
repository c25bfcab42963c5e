#include "peft/lora_model.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <cstdio>
#include <regex>
#include <set>

#include "core/error.h"
#include "core/log.h"

namespace opine::peft {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Name or ".name" suffix, as PEFT matches a list of target (or excluded) modules.
bool name_matches(const std::string& module, const std::string& target) {
  return module == target || ends_with(module, "." + target);
}

// The decoder layer index in "model.layers.N....", or -1.
int layer_index(const std::string& module) {
  static const std::regex kLayer(R"(^.*?\.[^.]*\.(\d+)\..*)");
  std::smatch m;
  return std::regex_match(module, m, kLayer) ? std::stoi(m[1].str()) : -1;
}

std::regex compile(const std::string& pattern, const std::string& what) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw Error(ErrorKind::kConfig, what + " '" + pattern + "' is not a valid regular expression: " + e.what());
  }
}

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

int64_t elements(const at::Tensor& t) { return t.defined() ? t.numel() : 0; }

}  // namespace

std::string ParameterCount::to_string() const {
  char pct[64];
  std::snprintf(pct, sizeof pct, "%.4f", all ? 100.0 * double(trainable) / double(all) : 0.0);
  return "trainable params: " + with_commas(trainable) + " || all params: " + with_commas(all) +
         " || trainable%: " + pct;
}

bool lora_targets(const LoraConfig& c, const std::string& module) {
  for (const std::string& e : c.exclude_modules)
    if (name_matches(module, e)) return false;
  for (const std::string& m : c.modules_to_save)
    if (std::regex_match(module, compile("(^|.*\\.)" + m + "($|\\..*)", "modules_to_save entry"))) return false;
  if (!c.target_modules_regex.empty())
    return std::regex_match(module, compile(c.target_modules_regex, "target_modules"));
  bool found = c.all_linear();  // callers only ask about decoder projections
  for (const std::string& t : c.target_modules) found = found || name_matches(module, t);
  if (found && !c.layers_to_transform.empty()) {
    const int idx = layer_index(module);
    found = false;
    for (int l : c.layers_to_transform) found = found || l == idx;
  }
  return found;
}

LoraModel::LoraModel(models::Backbone& model, LoraConfig config, uint64_t seed, bool initialize)
    : model_(&model), config_(std::move(config)) {
  config_.validate("LoRA config");
  std::vector<LinearSlotRef> table = model.linear_table();

  // Every name listed must be a projection of this model: a typo is an error, not a no-op.
  if (!config_.all_linear()) {
    for (const std::string& t : config_.target_modules) {
      bool any = false;
      for (const auto& s : table) any = any || name_matches(s.name, t);
      if (any) continue;
      // The projections' names within a layer, for the message ("self_attn.q_proj", "attention.self.query").
      std::string kinds;
      const std::string first = model.layer_prefix() + "0.";
      for (const auto& s : table)
        if (s.name.starts_with(first)) kinds += (kinds.empty() ? "" : ", ") + s.name.substr(first.size());
      for (const models::WeightSlotRef& w : model.weight_table())
        OPINE_CHECK(!name_matches(w.name.substr(0, w.name.rfind('.')), t), "LoRA target '", t, "' is the model's ",
                    w.name.substr(0, w.name.rfind('.')), ", which opine does not adapt with LoRA (only the projections ",
                    kinds, "); train it in full with modules_to_save");
      OPINE_CHECK(false, "LoRA target module '", t, "' is not in the model (its projections are ", kinds, ", e.g. ",
                  table.empty() ? "" : table[0].name, ")");
    }
  }

  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  LoraLayerSpec spec{config_.r, config_.scaling(), config_.lora_dropout, config_.use_dora};
  for (const LinearSlotRef& s : table) {
    if (!lora_targets(config_, s.name)) continue;
    auto lora = std::make_shared<LoraLinear>(s.linear->as_op(), spec);
    if (initialize) lora->initialize(config_.init_lora_weights, gen);
    // A skeleton (meta tensors, core/shard.h) gets its values from the rank that loaded them.
    if (config_.use_dora && !lora->lora_A().is_meta()) lora->init_magnitude();
    s.linear->install(lora);
    layers_.emplace_back(s.name, lora);
  }
  OPINE_CHECK(!layers_.empty(), "LoRA target modules ",
              config_.target_modules_regex.empty() ? "(listed)" : "'" + config_.target_modules_regex + "'",
              " match no module of the model (after exclude_modules and layers_to_transform)");

  // Biases that train: all of them, or those of the adapted layers. Held as slots, not tensors:
  // sharding swaps the tensors in them (core/shard.h).
  if (config_.bias != "none") {
    for (const LinearSlotRef& s : table) {
      std::shared_ptr<LoraLinear> lora = layer(s.name);
      if (!lora && config_.bias == "lora_only") continue;
      for (const TensorSlot& slot : s.linear->tensor_slots()) {
        if (slot.name != "bias" && slot.name != "base_layer.bias") continue;
        slot.tensor->set_requires_grad(true);
        biases_.emplace_back(kBaseModelPrefix + s.name + "." + slot.name, slot.tensor);
      }
    }
  }

  saved_.attach(model, config_.modules_to_save, config_.task_type);
  config_.modules_to_save = saved_.names();

  // bias="all" also trains the biases outside the projections (an encoder's LayerNorm biases), as
  // PEFT marks every parameter whose name ends in ".bias"; modules_to_save copies train already.
  if (config_.bias == "all") {
    std::set<std::string> projections;
    for (const LinearSlotRef& s : table) projections.insert(s.name);
    for (const models::WeightSlotRef& w : model.weight_table()) {
      if (!w.name.ends_with(".bias") || projections.count(w.name.substr(0, w.name.rfind('.'))) ||
          w.tensor->requires_grad())
        continue;
      w.tensor->set_requires_grad(true);
      biases_.emplace_back(kBaseModelPrefix + w.name, w.tensor);
    }
  }
}

std::shared_ptr<LoraLinear> LoraModel::layer(const std::string& module_name) const {
  for (const auto& [name, l] : layers_)
    if (name == module_name) return l;
  return nullptr;
}

LoraConfig LoraModel::saved_config() const {
  LoraConfig c = config_;
  if (c.all_linear()) {
    c.target_modules.clear();
    for (const auto& [name, l] : layers_) c.target_modules.push_back(name);
  }
  return c;
}

std::vector<std::pair<std::string, at::Tensor>> LoraModel::named_trainable() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& [name, l] : layers_)
    for (auto& [suffix, t] : l->trainable()) out.emplace_back(kBaseModelPrefix + name + "." + suffix, t);
  for (const auto& [name, slot] : biases_) out.emplace_back(name, *slot);
  for (auto& named : saved_.named(kBaseModelPrefix)) out.push_back(named);
  return out;
}

int64_t base_parameter_count(models::Backbone& model) {
  int64_t all = 0;
  for (const models::WeightSlotRef& w : model.weight_table()) all += elements(*w.tensor);
  for (const LinearSlotRef& s : model.linear_table()) {
    if (!s.linear->op) continue;  // a plain weight is in weight_table already
    const LinearOp* op = s.linear->op.get();
    if (auto* lora = dynamic_cast<const LoraLinear*>(op)) op = lora->base().get();
    all += op->in_features() * op->out_features() + elements(op->bias());
  }
  return all;
}

ParameterCount LoraModel::count_parameters() const {
  ParameterCount c;
  c.all = base_parameter_count(*model_);
  c.all += saved_.original_elements();
  for (const auto& [name, t] : named_trainable()) {
    c.trainable += t.numel();
    if (name.find(".lora_") != std::string::npos) c.all += t.numel();
  }
  return c;
}

std::vector<ParamGroup> LoraModel::parameter_groups() const {
  std::vector<std::pair<std::string, at::Tensor>> params = named_trainable();
  if (!config_.loraplus_lr_ratio) return {{"all", 1.0, true, params}};
  const double ratio = *config_.loraplus_lr_ratio;
  ParamGroup a{"A", 1.0, true, {}}, b{"B", ratio, true, {}}, b_no_decay{"B_no_decay", ratio, false, {}};
  for (auto& p : params) {
    const bool no_decay = p.first.find("bias") != std::string::npos || p.first.find("norm") != std::string::npos;
    if (p.first.find("lora_B") != std::string::npos || p.second.dim() == 1) (no_decay ? b_no_decay : b).params.push_back(p);
    else a.params.push_back(p);
  }
  return {a, b, b_no_decay};
}

void LoraModel::set_training(bool training) {
  for (auto& [name, l] : layers_) l->set_training(training);
}

void LoraModel::merge() {
  OPINE_CHECK(!unloaded_, "LoRA adapters were already merged and unloaded");
  for (auto& [name, l] : layers_) l->merge();
}

void LoraModel::unmerge() {
  OPINE_CHECK(!unloaded_, "LoRA adapters were merged and unloaded; they cannot be unmerged");
  for (auto& [name, l] : layers_) l->unmerge();
}

void LoraModel::unload() {
  OPINE_CHECK(!unloaded_, "LoRA adapters were already unloaded");
  unmerge();
  saved_.restore();
  restore_bases();
}

void LoraModel::merge_and_unload() {
  merge();
  saved_.freeze();
  restore_bases();
}

void LoraModel::restore_bases() {
  for (const LinearSlotRef& s : model_->linear_table()) {
    std::shared_ptr<LoraLinear> l = layer(s.name);
    if (!l) continue;
    // A dense base becomes a plain weight again (weight_table sees it); any other base stays an op.
    if (auto* dense = dynamic_cast<DenseLinear*>(l->base().get())) {
      s.linear->weight = dense->weight();
      s.linear->bias = dense->bias();
      s.linear->op = nullptr;
    } else {
      s.linear->op = l->base();
    }
  }
  for (auto& [name, slot] : biases_) slot->set_requires_grad(false);
  unloaded_ = true;
}

}  // namespace opine::peft
