// PEFT's modules_to_save: modules trained in full (the classification / regression head "score")
// as trainable copies that replace them in the model, the frozen originals kept beside.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

#include "models/backbone.h"

namespace opine::peft {

class ModulesToSave {
 public:
  // Each model module whose name ends with one of `names` (as PEFT matches them) gets trainable
  // copies of all its tensors (BERT's classifier: weight and bias; RoBERTa's: dense and
  // out_proj). A SEQ_CLS task adds "classifier" and "score" as PEFT does. LoRA-adaptable
  // projections and tied embeddings cannot be copied: an opine::Error.
  void attach(models::Backbone& model, std::vector<std::string> names, const std::string& task_type);

  // The copies as "<prefix><tensor name>" ("base_model.model.classifier.out_proj.bias").
  std::vector<std::pair<std::string, at::Tensor>> named(const std::string& prefix) const;
  // The names as the config lists them (with PEFT's SEQ_CLS additions).
  const std::vector<std::string>& names() const { return names_; }
  int64_t original_elements() const;
  // Puts the originals back (discarding the copies), or keeps the copies as plain weights.
  void restore();
  void freeze();

 private:
  struct Entry {
    std::string name;  // the tensor's full name
    at::Tensor* slot;
    at::Tensor original;
  };
  std::vector<std::string> names_;
  std::vector<Entry> entries_;
};

}  // namespace opine::peft
