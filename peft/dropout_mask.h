// The dropout mask of peft/lora_dropout.cpp: a counter-based hash of (key, element index), so a
// mask is a pure function of its key. Backward regenerates it instead of keeping it, any thread
// split gives the same mask, and a recomputed layer (activation checkpointing) gets the same mask
// from the same key. Plain C++ (no libtorch), compiled at -O3 for AVX-512, AVX2 and baseline x86-64
// (picked at run time), as torch's bernoulli_ on the CPU was a quarter of a LoRA training step.
#pragma once

#include <cstdint>

namespace opine::peft {

// out[i] = in[i] * scale where element `first + i` is kept, else 0, for i in [0, n). An element
// is dropped when its 32-bit hash is below `drop_below` (= p * 2^32). in == out is allowed.
void apply_dropout_mask(const float* in, float* out, int64_t n, uint64_t first, uint64_t key, uint32_t drop_below,
                        float scale);

}  // namespace opine::peft
