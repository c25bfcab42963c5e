// Losses of the three heads, defined as transformers defines them so training matches it:
// causal LM (next-token cross-entropy, labels shifted inside, -100 ignored), sequence
// classification (cross-entropy over classes) and regression (mean squared error).
#pragma once

#include <ATen/ATen.h>

namespace opine::models {

constexpr int64_t kIgnoreIndex = -100;

// logits [batch, seq, vocab]; labels [batch, seq] with kIgnoreIndex where no loss is wanted
// (padding, prompt). Position t predicts labels[t + 1]. Mean over counted tokens, in float32.
at::Tensor causal_lm_loss(const at::Tensor& logits, const at::Tensor& labels);

// logits [batch, classes]; labels [batch] class indices.
at::Tensor classification_loss(const at::Tensor& logits, const at::Tensor& labels);

// outputs [batch, 1]; targets [batch].
at::Tensor regression_loss(const at::Tensor& outputs, const at::Tensor& targets);

}  // namespace opine::models
