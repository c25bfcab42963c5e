// Collation (dynamic padding, masks, labels per head) and packing for causal-LM training.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/error.h"
#include "data/batch.h"
#include "data/sampler.h"

namespace opine::data {
namespace {

constexpr int64_t kIgnore = -100;

TokenizedExample ex(std::vector<int32_t> ids, int prompt, int64_t index, int label = 0,
                    float target = 0.5f) {
  TokenizedExample e;
  e.ids = std::move(ids);
  e.prompt_length = prompt;
  e.index = index;
  e.label = label;
  e.target = target;
  return e;
}

std::vector<int64_t> row(const at::Tensor& t, int64_t r) {
  const at::Tensor c = t[r].contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

std::vector<TokenizedExample> three() {
  return {ex({11, 12, 13}, 2, 7), ex({21, 22, 23, 24, 25}, 3, 3), ex({31, 32}, 0, 9)};
}

TEST(Collate, RightPaddingToTheLongest) {
  CollateOptions o;
  o.pad_id = 0;
  const Batch b = collate(three(), LabelKind::kCausalLm, o);
  ASSERT_EQ(b.input_ids.sizes(), (at::IntArrayRef{3, 5}));
  EXPECT_EQ(b.input_ids.scalar_type(), at::kLong);
  EXPECT_EQ(row(b.input_ids, 0), (std::vector<int64_t>{11, 12, 13, 0, 0}));
  EXPECT_EQ(row(b.attention_mask, 0), (std::vector<int64_t>{1, 1, 1, 0, 0}));
  EXPECT_EQ(row(b.labels, 0), (std::vector<int64_t>{kIgnore, kIgnore, 13, kIgnore, kIgnore}));
  EXPECT_EQ(row(b.labels, 1), (std::vector<int64_t>{kIgnore, kIgnore, kIgnore, 24, 25}));
  EXPECT_EQ(row(b.input_ids, 2), (std::vector<int64_t>{31, 32, 0, 0, 0}));
  EXPECT_EQ(row(b.labels, 2), (std::vector<int64_t>{31, 32, kIgnore, kIgnore, kIgnore}));
  EXPECT_EQ(b.indices, (std::vector<int64_t>{7, 3, 9}));
  EXPECT_EQ(b.num_tokens(), 10);
  EXPECT_FALSE(b.position_ids.defined());
}

TEST(Collate, LeftPaddingPutsTokensAtTheEnd) {
  CollateOptions o;
  o.pad_id = 2;
  o.padding_side = "left";
  const Batch b = collate(three(), LabelKind::kCausalLm, o);
  EXPECT_EQ(row(b.input_ids, 0), (std::vector<int64_t>{2, 2, 11, 12, 13}));
  EXPECT_EQ(row(b.attention_mask, 0), (std::vector<int64_t>{0, 0, 1, 1, 1}));
  EXPECT_EQ(row(b.labels, 0), (std::vector<int64_t>{kIgnore, kIgnore, kIgnore, kIgnore, 13}));
  EXPECT_EQ(row(b.input_ids, 1), (std::vector<int64_t>{21, 22, 23, 24, 25}));
  EXPECT_EQ(row(b.attention_mask, 2), (std::vector<int64_t>{0, 0, 0, 1, 1}));
}

TEST(Collate, ClassAndRegressionLabels) {
  auto examples = three();
  examples[1].label = 2;
  examples[2].target = -1.25f;
  const Batch c = collate(examples, LabelKind::kClass, {});
  ASSERT_EQ(c.labels.sizes(), (at::IntArrayRef{3}));
  EXPECT_EQ(c.labels.scalar_type(), at::kLong);
  EXPECT_EQ(c.labels[1].item<int64_t>(), 2);
  const Batch r = collate(examples, LabelKind::kRegression, {});
  EXPECT_EQ(r.labels.scalar_type(), at::kFloat);
  EXPECT_EQ(r.labels[2].item<float>(), -1.25f);
  examples[0].label = -1;
  EXPECT_THROW(collate(examples, LabelKind::kClass, {}), Error);
  examples[0].target = NAN;
  EXPECT_THROW(collate(examples, LabelKind::kRegression, {}), Error);
  EXPECT_THROW(collate({}, LabelKind::kClass, {}), Error);
  EXPECT_THROW(collate({ex({}, 0, 1)}, LabelKind::kClass, {}), Error);
}

TEST(Collate, PadToMultipleAndTruncation) {
  CollateOptions o;
  o.pad_to_multiple_of = 8;
  EXPECT_EQ(collate(three(), LabelKind::kCausalLm, o).input_ids.size(1), 8);
  o.pad_to_multiple_of = 0;
  o.max_length = 4;
  // Right truncation keeps the start (and the prompt marks on it).
  Batch b = collate(three(), LabelKind::kCausalLm, o);
  EXPECT_EQ(row(b.input_ids, 1), (std::vector<int64_t>{21, 22, 23, 24}));
  EXPECT_EQ(row(b.labels, 1), (std::vector<int64_t>{kIgnore, kIgnore, kIgnore, 24}));
  // Left truncation keeps the answer; the prompt shrinks by what was cut.
  o.truncation_side = "left";
  b = collate(three(), LabelKind::kCausalLm, o);
  EXPECT_EQ(row(b.input_ids, 1), (std::vector<int64_t>{22, 23, 24, 25}));
  EXPECT_EQ(row(b.labels, 1), (std::vector<int64_t>{kIgnore, kIgnore, 24, 25}));
  o.padding_side = "middle";
  EXPECT_THROW(collate(three(), LabelKind::kCausalLm, o), Error);
}

TEST(Pack, ConservesEveryTokenAndNeverCrossesDocuments) {
  Xoshiro256 rng(3);
  std::vector<TokenizedExample> docs;
  int32_t next_id = 100;
  for (int64_t i = 0; i < 40; ++i) {
    const int len = 1 + static_cast<int>(rng.below(20));  // some longer than a row
    std::vector<int32_t> ids;
    for (int t = 0; t < len; ++t) ids.push_back(next_id++);  // every token unique
    docs.push_back(ex(ids, static_cast<int>(rng.below(static_cast<uint64_t>(len) + 1)), 1000 + i));
  }
  CollateOptions o;
  o.max_length = 16;
  o.pad_id = 1;
  const Batch b = pack(docs, o);
  ASSERT_EQ(b.input_ids.size(1), 16);
  const int64_t rows = b.rows();
  int64_t expected_tokens = 0;
  for (const auto& d : docs) expected_tokens += std::min<int64_t>(16, d.ids.size());
  EXPECT_EQ(b.num_tokens(), expected_tokens);
  // Fewer rows than one document per row: packing packs.
  EXPECT_LT(rows, 40);
  EXPECT_GE(rows, (expected_tokens + 15) / 16);

  // Walk the layout: documents appear in b.indices order, each contiguous in one row, with
  // positions 0.. and one segment number; labels never ask across a document boundary.
  std::vector<int64_t> doc_of_index(2000, -1);
  for (size_t i = 0; i < docs.size(); ++i) doc_of_index[static_cast<size_t>(docs[i].index)] = static_cast<int64_t>(i);
  size_t next_doc = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const auto ids = row(b.input_ids, r), mask = row(b.attention_mask, r), labels = row(b.labels, r),
               pos = row(b.position_ids, r), seg = row(b.segment_ids, r);
    int64_t t = 0, segment = 0;
    while (t < 16 && mask[static_cast<size_t>(t)] == 1) {
      ASSERT_LT(next_doc, b.indices.size());
      const TokenizedExample& d = docs[static_cast<size_t>(doc_of_index[static_cast<size_t>(b.indices[next_doc++])])];
      ++segment;
      const int64_t len = std::min<int64_t>(16, d.ids.size());
      for (int64_t k = 0; k < len; ++k, ++t) {
        const size_t at = static_cast<size_t>(t);
        ASSERT_LT(t, 16);
        EXPECT_EQ(ids[at], d.ids[static_cast<size_t>(k)]);
        EXPECT_EQ(pos[at], k);
        EXPECT_EQ(seg[at], segment);
        const bool wanted = k > 0 && k >= d.prompt_length;
        EXPECT_EQ(labels[at], wanted ? ids[at] : kIgnore);
        if (labels[at] != kIgnore) {
          ASSERT_EQ(seg[at - 1], seg[at]);  // predicted from its own document
        }
      }
    }
    for (; t < 16; ++t) {  // the row's tail is padding only
      const size_t at = static_cast<size_t>(t);
      EXPECT_EQ(mask[at], 0);
      EXPECT_EQ(ids[at], 1);
      EXPECT_EQ(seg[at], 0);
      EXPECT_EQ(labels[at], kIgnore);
    }
  }
  EXPECT_EQ(next_doc, docs.size());
  o.max_length = 0;
  EXPECT_THROW(pack(docs, o), Error);
}

}  // namespace
}  // namespace opine::data
