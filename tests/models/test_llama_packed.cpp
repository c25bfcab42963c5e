// Packed rows (several documents per row, data/batch.h pack()) give each document exactly what it
// gets alone: block-diagonal causal attention and positions restarting per document. And a soft
// prompt in front of the input (prompt tuning) works the same with and without the KV cache.
#include <gtest/gtest.h>

#include "core/error.h"
#include "models/generate.h"
#include "models/llama.h"
#include "models/tiny_llama.h"

namespace opine::models {
namespace {

LlamaModel random_model(std::optional<int64_t> sliding_window = std::nullopt) {
  return tiny_random_llama(3, 0.3, sliding_window);
}

TEST(LlamaPacked, EachDocumentMatchesItsOwnForward) {
  for (std::optional<int64_t> window : {std::optional<int64_t>(), std::optional<int64_t>(3)}) {
    const LlamaModel m = random_model(window);
    const std::vector<std::vector<int64_t>> docs = {{5, 9, 2, 7}, {11, 3, 3}, {1, 60, 42, 8, 19}};
    // Row 0: docs 0 and 1, then one padding token; row 1: doc 2 and three padding tokens.
    const at::Tensor ids = at::tensor({5, 9, 2, 7, 11, 3, 3, 0, 1, 60, 42, 8, 19, 0, 0, 0}, at::kLong).view({2, 8});
    const at::Tensor pos = at::tensor({0, 1, 2, 3, 0, 1, 2, 0, 0, 1, 2, 3, 4, 0, 0, 0}, at::kLong).view({2, 8});
    const at::Tensor seg = at::tensor({1, 1, 1, 1, 2, 2, 2, 0, 1, 1, 1, 1, 1, 0, 0, 0}, at::kLong).view({2, 8});
    const at::Tensor packed = m.forward_packed(ids, pos, seg).hidden;
    const std::vector<std::tuple<int64_t, int64_t, size_t>> where = {{0, 0, 0}, {0, 4, 1}, {1, 0, 2}};
    for (const auto& [row, start, d] : where) {
      const at::Tensor alone = m.forward(at::tensor(docs[d], at::kLong).unsqueeze(0)).hidden[0];
      const at::Tensor got = packed[row].narrow(0, start, int64_t(docs[d].size()));
      // Double precision: only summation order differs (masked keys contribute exact zeros).
      EXPECT_LT((got - alone).abs().max().item<double>(), 1e-12) << "doc " << d;
    }
    // Without the segments the second document would see the first: the test can fail.
    const at::Tensor joined = m.forward(ids.narrow(0, 0, 1).narrow(1, 0, 7)).hidden[0].narrow(0, 4, 3);
    const at::Tensor alone = m.forward(at::tensor(docs[1], at::kLong).unsqueeze(0)).hidden[0];
    EXPECT_GT((joined - alone).abs().max().item<double>(), 1e-3);
  }
}

TEST(LlamaPrefix, GenerationWithASoftPromptEqualsRecomputingEachStep) {
  const LlamaModel m = random_model();
  at::manual_seed(5);
  const at::Tensor prefix = at::randn({3, 32}, at::kDouble);
  const std::vector<int64_t> prompt = {4, 8, 15, 16};
  GenerateOptions o;
  o.max_new_tokens = 6;
  o.prefix_embeds = prefix;
  const std::vector<int64_t> cached = generate(m, prompt, o);
  // Greedy by hand: the whole sequence again at every step, no cache.
  std::vector<int64_t> ids = prompt;
  for (int step = 0; step < 6; ++step) {
    const at::Tensor ids_t = at::tensor(ids, at::kLong).unsqueeze(0);
    const at::Tensor hidden = m.forward_embeds(with_prefix(m, prefix, ids_t)).hidden;
    ids.push_back(m.lm_logits(hidden.narrow(1, hidden.size(1) - 1, 1)).reshape({-1}).argmax().item<int64_t>());
  }
  EXPECT_EQ(cached, std::vector<int64_t>(ids.begin() + 4, ids.end()));
  // token_logprobs with the prefix: the same numbers as the hand-made forward.
  const at::Tensor ids_t = at::tensor(ids, at::kLong).unsqueeze(0);
  const at::Tensor lp = token_logprobs(m, ids_t, {}, prefix);
  const int64_t n = ids_t.size(1);
  const at::Tensor logits = m.lm_logits(m.forward_embeds(with_prefix(m, prefix, ids_t)).hidden).narrow(1, 3, n);
  const at::Tensor want = at::log_softmax(logits.narrow(1, 0, n - 1).to(at::kFloat), -1)
                              .gather(-1, ids_t.narrow(1, 1, n - 1).unsqueeze(-1)).squeeze(-1);
  EXPECT_LT((lp - want).abs().max().item<double>(), 1e-6);
  EXPECT_GT((lp - token_logprobs(m, ids_t)).abs().max().item<double>(), 1e-3) << "the soft prompt changed nothing";
}

TEST(LlamaPacked, ShapesMustMatch) {
  const LlamaModel m = random_model();
  const at::Tensor ids = at::zeros({1, 4}, at::kLong);
  EXPECT_THROW(m.forward_packed(ids, at::zeros({1, 3}, at::kLong), at::ones({1, 4}, at::kLong)), opine::Error);
}

}  // namespace
}  // namespace opine::models
