// Autoregressive decoding with the KV cache: greedy at temperature 0, otherwise sampling with
// temperature, top-k and top-p from a seeded generator (the same seed gives the same text).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "models/llama.h"

namespace opine::models {

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  double temperature = 0.0;  // 0 = greedy
  int64_t top_k = 0;         // 0 = all tokens
  double top_p = 1.0;
  uint64_t seed = 0;
  std::vector<int64_t> stop_tokens;  // generation ends after emitting one of these
  at::Tensor prefix_embeds;  // [n, hidden] placed before the prompt (a prompt-tuning soft prompt)
};

// Returns the new tokens. `on_token` (optional) sees each as it is chosen, for streaming; it
// returns false to stop early.
std::vector<int64_t> generate(const LlamaModel& model, const std::vector<int64_t>& prompt,
                              const GenerateOptions& options,
                              const std::function<bool(int64_t)>& on_token = {});

// Picks the next token from one row of logits [vocab] (float32).
int64_t sample_token(const at::Tensor& logits, const GenerateOptions& options, at::Generator& generator);

}  // namespace opine::models
