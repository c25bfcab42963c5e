// A tiny random Llama in double precision (vocab 64, 2 layers, grouped-query attention), for tests
// that compare two ways of computing the same thing.
#pragma once

#include <ATen/ATen.h>

#include <optional>

#include "models/llama.h"

namespace opine::models {

inline LlamaModel tiny_random_llama(uint64_t seed, double stddev, std::optional<int64_t> sliding_window = {}) {
  LlamaConfig c;
  c.vocab_size = 64;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 8;
  c.sliding_window = sliding_window;
  LlamaModel m(c, at::kDouble);
  at::manual_seed(seed);
  for (const WeightSlotRef& w : m.weight_table()) w.tensor->normal_(0.0, stddev);
  return m;
}

}  // namespace opine::models
