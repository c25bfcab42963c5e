#include "data/pipeline.h"

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include <sstream>

#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"

namespace opine::data {

namespace fs = std::filesystem;

DatasetSpec resolve_spec(const DataOptions& o) {
  DatasetSpec spec = o.spec.empty() ? o.dataset : config::load<DatasetSpec>(o.spec, {});
  if (!o.data_root.empty()) spec.data_root = o.data_root;
  OPINE_CHECK_KIND(!spec.splits.empty(), ErrorKind::kConfig,
                   "data: no dataset (set data.spec to a spec file or give data.dataset inline)");
  if (spec.name.empty()) spec.name = o.spec.empty() ? "dataset" : fs::path(o.spec).stem().string();
  return spec;
}

TokenizedExample encode_example(const Example& e, const Encoder& enc, const std::vector<Example>& shots) {
  OPINE_ASSERT(enc.tokenizer, "encoder without a tokenizer");
  const bool sft = enc.format == "sft";
  std::vector<models::ChatMessage> messages = task_messages(enc.task, e, shots, sft);
  std::string prompt, answer;
  if (sft) {
    answer = messages.back().content;
    messages.pop_back();
  }
  if (enc.chat) {
    prompt = enc.chat->render(messages, /*add_generation_prompt=*/true);
    if (sft) {
      messages.push_back({"assistant", answer});
      const std::string full = enc.chat->render(messages, /*add_generation_prompt=*/false);
      OPINE_ASSERT(full.rfind(prompt, 0) == 0, "chat template does not extend the prompt with the answer");
      answer = full.substr(prompt.size());
    }
  } else {
    for (const models::ChatMessage& m : messages) prompt += (prompt.empty() ? "" : "\n\n") + m.content;
    if (sft) prompt += "\n";
  }
  // Prompt and answer are encoded apart, so the prompt's tokens are a prefix whatever the merges.
  std::vector<int64_t> ids = enc.tokenizer->encode(prompt, /*add_special=*/true);
  TokenizedExample out;
  size_t prompt_length = ids.size();
  if (sft) {
    const std::vector<int64_t> tail = enc.tokenizer->encode(answer, /*add_special=*/false);
    ids.insert(ids.end(), tail.begin(), tail.end());
    // Plain text has no end-of-turn marker: the answer ends with EOS, so generation learns to stop.
    if (!enc.chat && enc.tokenizer->eos_id()) ids.push_back(*enc.tokenizer->eos_id());
  }
  const auto [special_front, special_back] = enc.tokenizer->special_around();
  if (ids.size() > size_t(enc.max_length) && special_back > 0 && !sft) {
    // An encoder's text sits between its special tokens ([CLS] ... [SEP]): cut the text's end,
    // as transformers truncates (truncation_side="right"), and keep both.
    OPINE_CHECK(enc.max_length >= special_front + special_back, "max_length ", enc.max_length,
                " leaves no room for the text between the tokenizer's special tokens");
    const size_t cut = ids.size() - size_t(enc.max_length);
    ids.erase(ids.end() - special_back - cut, ids.end() - special_back);
    prompt_length = ids.size();
  } else if (ids.size() > size_t(enc.max_length)) {
    // Cut the start of the prompt (the tweet's end, the question and the answer matter most);
    // keep a leading BOS.
    const size_t keep_front = enc.tokenizer->bos_id() && !ids.empty() && ids[0] == *enc.tokenizer->bos_id()
                                  ? 1
                                  : size_t(special_front);
    const size_t cut = ids.size() - size_t(enc.max_length);
    OPINE_CHECK(cut < prompt_length - keep_front, "example too long: its answer alone exceeds max_length ",
                enc.max_length);
    ids.erase(ids.begin() + keep_front, ids.begin() + keep_front + cut);
    prompt_length -= cut;
  }
  out.ids.assign(ids.begin(), ids.end());
  out.prompt_length = int(prompt_length);
  out.label = e.label;
  out.target = float(e.target);
  out.augmented = e.augmented;
  return out;
}

std::string data_content_hash(const DatasetSpec& spec, const DataOptions& o, const Encoder& enc) {
  ContentHash h;
  h.add("opine token cache").add(std::to_string(kCacheSchema));
  const fs::path root = resolve_data_root(spec.data_root);
  for (const auto& [split, files] : spec.splits) {
    h.add(split).add_file(root / files.path);
    if (!files.labels.empty()) h.add_file(root / files.labels);
  }
  DatasetSpec canonical = spec;
  canonical.data_root.clear();  // where the files are is not what they hold
  h.add(config::to_yaml(canonical)).add(config::to_yaml(o.normalize));
  AugmentOptions augment = o.augment;
  if (!augment.enabled) augment = AugmentOptions{};  // settings of a disabled step change nothing
  h.add(config::to_yaml(augment)).add(config::to_yaml(enc.task));
  h.add(enc.format).add(std::to_string(enc.max_length));
  h.add(enc.chat ? std::to_string(int(enc.chat->format())) + enc.chat->render({{"user", "x"}}, true) : "no chat");
  const models::Tokenizer& t = *enc.tokenizer;
  h.add(t.kind()).add(std::to_string(t.vocab_size()));
  h.add(std::to_string(t.bos_id().value_or(-1))).add(std::to_string(t.eos_id().value_or(-1)));
  for (int64_t i = 0; i < t.vocab_size(); ++i) h.add(t.id_to_token(i));
  return h.hex();
}

TokenCache build_token_cache(const DatasetSpec& spec, const DataOptions& o, const Encoder& encoder) {
  Dataset dataset = load_dataset(spec);
  Encoder enc = encoder;
  if (enc.task.labels.empty()) enc.task.labels = dataset.classes;  // the label words default to the class names
  log::info(describe(dataset));
  TokenCache cache;
  cache.classes = dataset.classes;
  nlohmann::json description;
  description["dataset"] = spec.name;
  description["format"] = enc.format;
  description["max_length"] = enc.max_length;
  description["tokenizer"] = enc.tokenizer->kind();
  description["augment_seed"] = o.augment.enabled ? nlohmann::json(o.augment.seed) : nlohmann::json(nullptr);
  for (auto& [split, examples] : dataset.splits) {
    for (Example& e : examples) e.text = normalize(e.text, o.normalize);
    if (split == "train" && o.augment.enabled) examples = augment(examples, o.augment, dataset.classes, 0);
    std::vector<TokenizedExample> encoded(examples.size());
    at::parallel_for(0, int64_t(examples.size()), 64, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) encoded[i] = encode_example(examples[i], enc);
    });
    CachedSplit& s = cache.splits[split];
    for (size_t i = 0; i < examples.size(); ++i) s.append(encoded[i], examples[i].row, examples[i].source);
  }
  cache.description = description.dump();
  return cache;
}

Examples normalized_split(const Dataset& dataset, const std::string& split, const NormalizeOptions& normalize_options) {
  const auto it = dataset.splits.find(split);
  if (it == dataset.splits.end()) {
    std::string have;
    for (const auto& [name, examples] : dataset.splits) have += (have.empty() ? "" : ", ") + name;
    OPINE_CHECK(false, "dataset ", dataset.spec.name, " has no '", split, "' split (it has: ", have, ")");
  }
  Examples out = it->second;
  for (Example& e : out) e.text = normalize(e.text, normalize_options);
  return out;
}

PreparedData prepare_data(const DataOptions& o, const Encoder& enc, const CacheCoordination& c) {
  const DatasetSpec spec = resolve_spec(o);
  check_spec(spec);  // before hashing, so a missing file is named as the spec's problem
  PreparedData out;
  const std::string hash = data_content_hash(spec, o, enc);
  out.path = o.cache.empty() ? fs::path(o.cache_dir) / (spec.name + "-" + hash.substr(0, 16) + ".h5") : fs::path(o.cache);
  out.cache = load_or_build_cache(out.path, hash, o.rebuild, [&] { return build_token_cache(spec, o, enc); }, c);
  return out;
}

std::string describe_cache(const TokenCache& cache) {
  std::ostringstream s;
  const nlohmann::json d = cache.description.empty() ? nlohmann::json::object() : nlohmann::json::parse(cache.description);
  s << "content hash " << cache.content_hash << "\n";
  if (!d.empty()) s << "built from " << d.dump() << "\n";
  for (const auto& [name, split] : cache.splits) {
    int64_t augmented = 0, tokens = int64_t(split.ids.size()), longest = 0;
    std::vector<int64_t> per_class(cache.classes.size(), 0);
    std::map<int64_t, int64_t> histogram;  // by powers of two
    for (size_t i = 0; i < split.size(); ++i) {
      augmented += split.augmented[i];
      if (split.labels[i] >= 0 && size_t(split.labels[i]) < per_class.size()) ++per_class[split.labels[i]];
      const int64_t len = split.length(i);
      longest = std::max(longest, len);
      int64_t bucket = 1;
      while (bucket < len) bucket *= 2;
      ++histogram[bucket];
    }
    s << name << ": " << split.size() << " examples (" << augmented << " augmented), " << tokens << " tokens, longest "
      << longest << "\n";
    for (size_t c = 0; c < per_class.size(); ++c) s << "  " << cache.classes[c] << ": " << per_class[c] << "\n";
    s << "  lengths:";
    for (const auto& [bucket, count] : histogram) s << " <=" << bucket << ": " << count;
    s << "\n";
  }
  return s.str();
}

}  // namespace opine::data
