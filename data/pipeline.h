// From a dataset spec to cached token ids: read -> normalise -> augment (train only) -> template ->
// tokenize -> HDF5 cache, keyed by the hash of everything that decides the tokens.
//
//   data:
//     spec: experiments/datasets/stance-abortion-binary.yaml   # or the spec inline under `dataset:`
//     normalize: {hashtags: segment}
//     augment: {enabled: true, seed: 13, balance: true}
//     format: classification    # prompt -> class (a classification/regression head) | sft (prompt + answer, causal LM)
//     chat: true                # wrap the task's messages in the model's chat template
//     max_length: 256
//     cache_dir: cache
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "core/config.h"
#include "data/augment.h"
#include "data/cache.h"
#include "data/dataset.h"
#include "data/normalize.h"
#include "data/task_template.h"
#include "models/chat_template.h"
#include "models/tokenizer.h"

namespace opine::data {

struct DataOptions {
  std::string spec;
  DatasetSpec dataset;
  std::string data_root;
  NormalizeOptions normalize;
  AugmentOptions augment;
  std::string format = "classification";
  bool chat = true;
  int max_length = 256;
  std::string cache;
  std::string cache_dir = "cache";
  bool rebuild = false;
  template <class V>
  void visit(V& v) {
    v("spec", spec, "dataset spec file (experiments/datasets/*.yaml); else `dataset` inline");
    v("dataset", dataset, "the dataset spec inline");
    v("data_root", data_root, "folder the spec's paths are relative to (wins over the spec's)");
    v("normalize", normalize, "tweet normalisation");
    v("augment", augment, "training-set augmentation");
    v("format", format, "classification: prompt and class; sft: prompt and answer tokens for a causal LM",
      config::one_of({"classification", "sft"}));
    v("chat", chat, "render the task's messages with the model's chat template (when it has one)");
    v("max_length", max_length, "tokens per example at most (longer prompts lose their start, BOS kept)",
      config::at_least(8));
    v("cache", cache, "cache file (default: cache_dir/<name>-<hash>.h5)");
    v("cache_dir", cache_dir, "folder of cache files");
    v("rebuild", rebuild, "rebuild the cache even when it is up to date");
  }
};

// The dataset the options name (spec file or inline, data_root applied).
DatasetSpec resolve_spec(const DataOptions& options);

// What turns one example into tokens.
struct Encoder {
  const models::Tokenizer* tokenizer = nullptr;
  std::optional<models::ChatTemplate> chat;  // none: plain text
  TaskTemplate task;
  std::string format = "classification";
  int max_length = 256;
};
// `shots`: worked examples placed before the query (k-shot prompts; training uses none).
TokenizedExample encode_example(const Example& example, const Encoder& encoder,
                                const std::vector<Example>& shots = {});

// SHA-256 over the cache schema, every source file's bytes, the resolved spec, normalisation,
// augmentation, task template, format, chat template, max length and the tokenizer (its kind,
// special ids and whole vocabulary).
std::string data_content_hash(const DatasetSpec& spec, const DataOptions& options, const Encoder& encoder);

// One split of a loaded dataset with its texts normalised as the token cache's are (no
// augmentation): what evaluation and k-shot prompts read. An unknown split is an error naming
// the dataset and the splits it has.
Examples normalized_split(const Dataset& dataset, const std::string& split, const NormalizeOptions& normalize);

// Reads, normalises, augments and encodes every split.
TokenCache build_token_cache(const DatasetSpec& spec, const DataOptions& options, const Encoder& encoder);

struct PreparedData {
  std::filesystem::path path;
  TokenCache cache;
};
// The cache for these options: reused when its hash matches, else built (rank 0) and read.
PreparedData prepare_data(const DataOptions& options, const Encoder& encoder, const CacheCoordination& coordination = {});

// Counts per split and class, augmented rows, length histogram and hashes, for `opine data inspect`.
std::string describe_cache(const TokenCache& cache);

}  // namespace opine::data
