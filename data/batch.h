// From tokenized examples to the tensors of one step.
//
// collate(): one row per example, padded to the longest row of the batch (dynamic padding),
// optionally rounded up to a multiple (tensor-core friendly shapes). Labels follow the head:
//   kClass      labels [B] int64, the class index
//   kRegression labels [B] float32, the target
//   kCausalLm   labels [B, T] int64: the token ids where loss is wanted, -100 on the prompt
//               (the first prompt_length tokens) and on padding. The loss shifts them inside
//               (position t predicts labels[t + 1]), as transformers' does.
//
// pack(): causal-LM training without padding waste. Documents are laid end to end in rows of
// exactly max_length tokens (first fit, in the given order); a row's unused tail is padding.
// Beside the usual tensors it fills:
//   position_ids [B, T] int64: 0, 1, 2, ... restarting at every document (0 on padding);
//   segment_ids  [B, T] int64: 1, 2, ... the document's number inside its row, 0 on padding.
// What a model must do with them: rotary positions from position_ids (not from the mask), and
// a block-diagonal causal mask, token i attending token j only when j <= i and
// segment_ids[i] == segment_ids[j] != 0. The first token of every document has label -100, so
// no loss asks a document to predict the next one. models::LlamaModel::forward_packed takes them.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "data/sampler.h"

namespace opine::data {

// One example after the template and the tokenizer.
struct TokenizedExample {
  std::vector<int32_t> ids;
  int prompt_length = 0;  // leading tokens that get no causal-LM loss
  int label = -1;         // class index
  float target = NAN;     // regression target
  int64_t index = -1;     // the example's index in its dataset (what the sampler hands out)
  bool augmented = false; // trains, but metrics never count it
};

enum class LabelKind { kClass, kRegression, kCausalLm };

struct CollateOptions {
  int64_t pad_id = 0;
  std::string padding_side = "right";     // "left" for decoder inference and last-token pooling
  std::string truncation_side = "right";  // which end a too-long example loses
  int64_t max_length = 0;                 // 0: no limit (required for pack)
  int64_t pad_to_multiple_of = 0;         // 0 or 1: exactly the longest row
  template <class V>
  void visit(V& v) {
    v("pad_id", pad_id, "token id of padding", config::at_least(0));
    v("padding_side", padding_side, "where padding goes", config::one_of({"left", "right"}));
    v("truncation_side", truncation_side, "which end of a too-long example is cut",
      config::one_of({"left", "right"}));
    v("max_length", max_length, "tokens per row at most (0: no limit)", config::at_least(0));
    v("pad_to_multiple_of", pad_to_multiple_of, "round the padded length up to a multiple",
      config::at_least(0));
  }
};

struct Batch {
  at::Tensor input_ids;       // [B, T] int64
  at::Tensor attention_mask;  // [B, T] int64, 1 = token, 0 = padding
  at::Tensor labels;          // see LabelKind
  at::Tensor position_ids;    // pack() only, [B, T] int64
  at::Tensor segment_ids;     // pack() only, [B, T] int64
  std::vector<int64_t> indices;  // each example's dataset index: row order (collate), layout order (pack)
  std::vector<bool> augmented;   // parallel to indices
  // The sampler's state after this batch, filled by whoever draws the indices: saving it with a
  // checkpoint taken after this batch's step resumes at the next batch, however far a prefetch
  // thread has run ahead.
  SamplerState sampler_state;

  int64_t rows() const { return input_ids.defined() ? input_ids.size(0) : 0; }
  // Real (non-padding) tokens.
  int64_t num_tokens() const;
};

// Pads `examples` into one batch; an empty list, an example without tokens, or a missing label
// for kClass (label < 0) / kRegression (NaN target) is an opine::Error.
Batch collate(const std::vector<TokenizedExample>& examples, LabelKind labels,
              const CollateOptions& options);

// Packs `examples` (causal LM) into rows of options.max_length tokens (> 0 required); padding is
// always on the right. An example longer than max_length is truncated per truncation_side.
Batch pack(const std::vector<TokenizedExample>& examples, const CollateOptions& options);

}  // namespace opine::data
