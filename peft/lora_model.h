// LoRA on a model of any family (models/backbone.h), as PEFT's LoraModel does it: the projections that the
// config's target_modules name are wrapped by LoraLinear (over whatever base they have, dense or
// 4-bit), modules_to_save (the "score" head) train in full as their own copies, and the chosen
// biases train too. Names follow PEFT's state dict, without the adapter name
// ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/backbone.h"
#include "peft/lora_config.h"
#include "peft/lora_linear.h"
#include "peft/modules_to_save.h"

namespace opine::peft {

// "trainable params: X || all params: Y || trainable%: Z", counted as PEFT counts them (a 4-bit
// weight counts its elements; modules_to_save count their frozen original and their copy).
struct ParameterCount {
  int64_t trainable = 0;
  int64_t all = 0;
  std::string to_string() const;
};

// Tensors that share an optimizer setting: the learning rate is the trainer's times lr_scale.
struct ParamGroup {
  std::string name;
  double lr_scale = 1.0;
  bool weight_decay = true;
  std::vector<std::pair<std::string, at::Tensor>> params;
};

// The PEFT prefix of every saved LoRA tensor name.
inline constexpr const char* kBaseModelPrefix = "base_model.model.";

class LoraModel {
 public:
  // Attaches LoRA to `model` (which must outlive this and stay where it is). `initialize`: draw
  // A (and B) as init_lora_weights says from a CPU generator seeded with `seed`, as PEFT draws them
  // after torch.manual_seed(seed); false leaves A = B = 0 for weights read from a file.
  // An unknown target, or one that is not a decoder projection, is an opine::Error.
  LoraModel(models::Backbone& model, LoraConfig config, uint64_t seed = 0, bool initialize = true);

  const LoraConfig& config() const { return config_; }
  // The config as PEFT saves it: all-linear resolved into the module names it chose.
  LoraConfig saved_config() const;
  models::Backbone& model() const { return *model_; }

  // The wrapped projections by module name ("model.layers.0.self_attn.q_proj"), in model order.
  const std::vector<std::pair<std::string, std::shared_ptr<LoraLinear>>>& layers() const { return layers_; }
  std::shared_ptr<LoraLinear> layer(const std::string& module_name) const;

  // Every trainable tensor under its PEFT name: LoRA A/B/magnitude, trainable biases, and
  // modules_to_save (their copies, e.g. "base_model.model.score.weight").
  std::vector<std::pair<std::string, at::Tensor>> named_trainable() const;
  ParameterCount count_parameters() const;
  // One group, or with LoRA+ (config.loraplus_lr_ratio) PEFT's create_loraplus_optimizer groups:
  // "A" (lora_A and other matrices, lr x1), "B" (lora_B and every 1-D tensor such as the DoRA
  // magnitude, lr x ratio) and "B_no_decay" (biases and norms, lr x ratio, no weight decay).
  std::vector<ParamGroup> parameter_groups() const;

  // Dropout on the adapters' inputs is active only while training.
  void set_training(bool training);
  void merge();
  void unmerge();
  // Merges, then puts the bare base ops back: the model computes as a plain one and weight_table
  // no longer sees adapters. This object is spent afterwards.
  void merge_and_unload();
  // Takes the adapters off without merging: the model is the plain base again.
  void unload();

 private:
  void restore_bases();

  models::Backbone* model_;
  LoraConfig config_;
  std::vector<std::pair<std::string, std::shared_ptr<LoraLinear>>> layers_;
  ModulesToSave saved_;
  std::vector<std::pair<std::string, at::Tensor*>> biases_;  // trainable biases' slots by PEFT name
  bool unloaded_ = false;
};

// Elements of every base weight and bias of the model, as PEFT counts "all params" (a 4-bit
// weight counts its elements; a LoRA layer's base counts, its adapters do not).
int64_t base_parameter_count(models::Backbone& model);

// True when PEFT would adapt `module` ("model.layers.0.self_attn.q_proj") under `config`
// (check_target_module_exists: exclusions, modules_to_save, names or suffixes, regex, layers).
bool lora_targets(const LoraConfig& config, const std::string& module);

}  // namespace opine::peft
