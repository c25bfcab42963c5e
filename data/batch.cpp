#include "data/batch.h"

#include <algorithm>

#include "core/error.h"
#include "models/heads.h"

namespace opine::data {

namespace {

// The part of an example's tokens that fits max_length, and how many of them are prompt.
struct Span {
  const int32_t* ids;
  int64_t length;
  int64_t prompt_length;
};

Span fit(const TokenizedExample& e, const CollateOptions& o) {
  const int64_t n = static_cast<int64_t>(e.ids.size());
  OPINE_CHECK(n > 0, "collate: example ", e.index, " has no tokens");
  OPINE_CHECK(e.prompt_length >= 0 && e.prompt_length <= n, "collate: example ", e.index,
              " has prompt_length ", e.prompt_length, " outside [0, ", n, "]");
  Span s{e.ids.data(), n, e.prompt_length};
  if (o.max_length > 0 && n > o.max_length) {
    const int64_t cut = n - o.max_length;
    s.length = o.max_length;
    if (o.truncation_side == "left") {
      s.ids += cut;
      s.prompt_length = std::max<int64_t>(0, s.prompt_length - cut);
    } else {
      s.prompt_length = std::min(s.prompt_length, o.max_length);
    }
  }
  return s;
}

void check_options(const CollateOptions& o) {
  OPINE_CHECK(o.padding_side == "left" || o.padding_side == "right",
              "collate: padding_side must be left or right, got '", o.padding_side, "'");
  OPINE_CHECK(o.truncation_side == "left" || o.truncation_side == "right",
              "collate: truncation_side must be left or right, got '", o.truncation_side, "'");
  OPINE_CHECK(o.max_length >= 0, "collate: max_length must be at least 0, got ", o.max_length);
  OPINE_CHECK(o.pad_to_multiple_of >= 0, "collate: pad_to_multiple_of must be at least 0, got ",
              o.pad_to_multiple_of);
}

at::Tensor longs(int64_t rows, int64_t cols, int64_t fill) {
  return at::full({rows, cols}, fill, at::TensorOptions().dtype(at::kLong));
}

}  // namespace

int64_t Batch::num_tokens() const {
  return attention_mask.defined() ? attention_mask.sum().item<int64_t>() : 0;
}

Batch collate(const std::vector<TokenizedExample>& examples, LabelKind labels,
              const CollateOptions& options) {
  check_options(options);
  OPINE_CHECK(!examples.empty(), "collate: no examples");
  const int64_t rows = static_cast<int64_t>(examples.size());
  std::vector<Span> spans;
  spans.reserve(examples.size());
  int64_t width = 0;
  for (const TokenizedExample& e : examples) {
    spans.push_back(fit(e, options));
    width = std::max(width, spans.back().length);
  }
  // Rounded up even past max_length, as transformers' pad() does.
  if (options.pad_to_multiple_of > 1)
    width = (width + options.pad_to_multiple_of - 1) / options.pad_to_multiple_of *
            options.pad_to_multiple_of;

  Batch b;
  b.input_ids = longs(rows, width, options.pad_id);
  b.attention_mask = longs(rows, width, 0);
  int64_t* ids = b.input_ids.data_ptr<int64_t>();
  int64_t* mask = b.attention_mask.data_ptr<int64_t>();
  int64_t* token_labels = nullptr;
  if (labels == LabelKind::kCausalLm) {
    b.labels = longs(rows, width, models::kIgnoreIndex);
    token_labels = b.labels.data_ptr<int64_t>();
  } else if (labels == LabelKind::kClass) {
    b.labels = at::empty({rows}, at::TensorOptions().dtype(at::kLong));
  } else {
    b.labels = at::empty({rows}, at::TensorOptions().dtype(at::kFloat));
  }

  const bool left = options.padding_side == "left";
  for (int64_t r = 0; r < rows; ++r) {
    const TokenizedExample& e = examples[static_cast<size_t>(r)];
    const Span& s = spans[static_cast<size_t>(r)];
    const int64_t start = r * width + (left ? width - s.length : 0);
    for (int64_t t = 0; t < s.length; ++t) {
      ids[start + t] = s.ids[t];
      mask[start + t] = 1;
      if (token_labels && t >= s.prompt_length) token_labels[start + t] = s.ids[t];
    }
    if (labels == LabelKind::kClass) {
      OPINE_CHECK(e.label >= 0, "collate: example ", e.index, " has no class label");
      b.labels.data_ptr<int64_t>()[r] = e.label;
    } else if (labels == LabelKind::kRegression) {
      OPINE_CHECK(!std::isnan(e.target), "collate: example ", e.index, " has no regression target");
      b.labels.data_ptr<float>()[r] = e.target;
    }
    b.indices.push_back(e.index);
    b.augmented.push_back(e.augmented);
  }
  return b;
}

Batch pack(const std::vector<TokenizedExample>& examples, const CollateOptions& options) {
  check_options(options);
  OPINE_CHECK(options.max_length > 0, "pack: max_length must be set (the length of a packed row)");
  OPINE_CHECK(!examples.empty(), "pack: no examples");
  const int64_t width = options.max_length;

  // First fit in the given order: each document goes to the first row with room left.
  struct Placed {
    size_t example;
    Span span;
  };
  std::vector<std::vector<Placed>> layout;
  std::vector<int64_t> used;
  for (size_t i = 0; i < examples.size(); ++i) {
    const Span s = fit(examples[i], options);
    size_t row = 0;
    while (row < layout.size() && used[row] + s.length > width) ++row;
    if (row == layout.size()) {
      layout.emplace_back();
      used.push_back(0);
    }
    layout[row].push_back({i, s});
    used[row] += s.length;
  }

  const int64_t rows = static_cast<int64_t>(layout.size());
  Batch b;
  b.input_ids = longs(rows, width, options.pad_id);
  b.attention_mask = longs(rows, width, 0);
  b.labels = longs(rows, width, models::kIgnoreIndex);
  b.position_ids = longs(rows, width, 0);
  b.segment_ids = longs(rows, width, 0);
  int64_t* ids = b.input_ids.data_ptr<int64_t>();
  int64_t* mask = b.attention_mask.data_ptr<int64_t>();
  int64_t* labels = b.labels.data_ptr<int64_t>();
  int64_t* positions = b.position_ids.data_ptr<int64_t>();
  int64_t* segments = b.segment_ids.data_ptr<int64_t>();
  for (int64_t r = 0; r < rows; ++r) {
    int64_t at = r * width;
    int64_t segment = 0;
    for (const Placed& p : layout[static_cast<size_t>(r)]) {
      ++segment;
      for (int64_t t = 0; t < p.span.length; ++t, ++at) {
        ids[at] = p.span.ids[t];
        mask[at] = 1;
        positions[at] = t;
        segments[at] = segment;
        // t == 0: the token before it belongs to another document.
        if (t > 0 && t >= p.span.prompt_length) labels[at] = p.span.ids[t];
      }
      const TokenizedExample& e = examples[p.example];
      b.indices.push_back(e.index);
      b.augmented.push_back(e.augmented);
    }
  }
  return b;
}

}  // namespace opine::data
