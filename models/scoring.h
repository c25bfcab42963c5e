// Batched inference over many prompts that share a beginning: the shared prefix (system prompt,
// label definitions, k-shot examples, a soft prompt) runs once and its keys and values are
// copied into every batch; each prompt's own tokens run after it. On top of that: the
// log-probability of candidate continuations (a label's verbalisation) and batched generation.
//
// Equal to running each full prompt alone (tests/models/test_scoring.cpp), up to float
// summation order.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "models/generate.h"
#include "models/llama.h"

namespace opine::models {

using TokenIds = std::vector<int64_t>;

// Keys and values of a shared prefix, for one row.
struct PrefixCache {
  std::vector<at::Tensor> keys, values;  // per layer [1, kv_heads, length, head_dim]
  int64_t length = 0;                    // positions: soft prompt + tokens
};

// Runs `soft_prompt` [n, hidden] (may be undefined) followed by `ids` (may be empty) once.
PrefixCache encode_prefix(const LlamaModel& model, const TokenIds& ids, const at::Tensor& soft_prompt = {});

// The longest run of leading tokens every prompt shares, kept one token short of the shortest
// prompt (so each prompt still has a token of its own to run).
TokenIds common_prefix(const std::vector<TokenIds>& prompts);

// A cache for `batch` rows holding `prefix` (may be null: empty) with room for `extra` positions.
KvCache start_cache(const LlamaModel& model, const PrefixCache* prefix, int64_t batch, int64_t extra);

// For each prompt (the tokens after the prefix) and each of its candidate continuations, the sum
// of the continuation's token log-probabilities: result[row][candidate]. Every row has the same
// number of candidates, each at least one token. The prompt runs once; the cache is then copied
// per candidate.
std::vector<std::vector<double>> score_continuations(const LlamaModel& model, const PrefixCache* prefix,
                                                     const std::vector<TokenIds>& prompts,
                                                     const std::vector<std::vector<TokenIds>>& candidates);

// Continues every prompt (the tokens after the prefix) `repeats` times: result[row * repeats + r].
// `seeds[row * repeats + r]` seeds that sequence's sampler, so a text does not depend on the
// batch it ran in. Each sequence stops at a stop token (kept) or max_new_tokens.
// `options.prefix_embeds` is ignored: a soft prompt belongs in the prefix.
std::vector<TokenIds> generate_batch(const LlamaModel& model, const PrefixCache* prefix,
                                     const std::vector<TokenIds>& prompts, const GenerateOptions& options,
                                     int64_t repeats, const std::vector<uint64_t>& seeds);

}  // namespace opine::models
