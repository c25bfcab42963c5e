#include "peft/modules_to_save.h"

#include <algorithm>
#include <set>

#include "core/error.h"
#include "core/log.h"

namespace opine::peft {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

void ModulesToSave::attach(models::Backbone& model, std::vector<std::string> names, const std::string& task_type) {
  if (task_type == "SEQ_CLS")
    for (const char* head : {"classifier", "score"})
      if (std::find(names.begin(), names.end(), head) == names.end()) names.push_back(head);
  names_ = names;
  // The plain (non-projection) tensors: heads, embeddings, norms, BERT's pooler.
  std::vector<std::pair<std::string, at::Tensor*>> plain;
  std::set<std::string> projections;
  for (const LinearSlotRef& s : model.linear_table()) projections.insert(s.name);
  for (const models::WeightSlotRef& w : model.weight_table())
    if (!projections.count(w.name.substr(0, w.name.rfind('.')))) plain.emplace_back(w.name, w.tensor);
  at::Tensor* tied_head = model.tied_lm_head();
  if (tied_head) plain.emplace_back("lm_head.weight", tied_head);

  std::set<std::string> claimed;
  for (const std::string& m : names) {
    bool any = false;
    for (const auto& [name, slot] : plain) {
      // PEFT wraps the first module on the tensor's path whose name ends with m; all of that
      // module's tensors train.
      bool inside = false;
      for (size_t dot = name.find('.'); dot != std::string::npos && !inside; dot = name.find('.', dot + 1))
        inside = ends_with(name.substr(0, dot), m);
      if (!inside || claimed.count(name)) continue;
      const std::string module = name.substr(0, name.rfind('.'));
      OPINE_CHECK(!(tied_head && (module == "lm_head" || module == "model.embed_tokens")), "modules_to_save '", m,
                  "': ", module, " is tied to ", module == "lm_head" ? "the input embeddings" : "the output head",
                  "; a trained copy would untie them");
      any = true;
      claimed.insert(name);
      entries_.push_back({name, slot, *slot});
      *slot = slot->detach().clone().set_requires_grad(true);
    }
    for (const LinearSlotRef& s : model.linear_table())
      OPINE_CHECK(any || !(s.name == m || ends_with(s.name, "." + m)), "modules_to_save '", m,
                  "' is a projection (", s.name, "); opine adapts those with LoRA, not in full");
    // PEFT lists both "classifier" and "score" for classification; one of them exists.
    if (!any && m != "classifier" && m != "score") log::warn("modules_to_save '", m, "' matches no module of the model");
  }
}

std::vector<std::pair<std::string, at::Tensor>> ModulesToSave::named(const std::string& prefix) const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const Entry& e : entries_) out.emplace_back(prefix + e.name, *e.slot);
  return out;
}

int64_t ModulesToSave::original_elements() const {
  int64_t n = 0;
  for (const Entry& e : entries_) n += e.original.numel();
  return n;
}

void ModulesToSave::restore() {
  for (Entry& e : entries_) *e.slot = e.original;
  entries_.clear();
}

void ModulesToSave::freeze() {
  for (Entry& e : entries_) *e.slot = e.slot->detach();
  entries_.clear();
}

}  // namespace opine::peft
