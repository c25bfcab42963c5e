// Batched scoring and generation after a shared prefix (models/scoring.h) give what each full
// prompt gives alone: the continuation log-probabilities of token_logprobs() over the whole
// sequence, and the tokens of generate(). Double precision, so only summation order differs.
#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "models/generate.h"
#include "models/llama.h"
#include "models/scoring.h"
#include "models/tiny_llama.h"

namespace opine::models {
namespace {

LlamaModel random_model() { return tiny_random_llama(11, 0.4); }

TokenIds cat(TokenIds a, const TokenIds& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Sum of the log-probabilities of the last `n` tokens of `ids` (a soft prompt in front).
double tail_logprob(const LlamaModel& m, const TokenIds& ids, size_t n, const at::Tensor& soft = {}) {
  const at::Tensor lp = token_logprobs(m, at::tensor(ids, at::kLong).unsqueeze(0), {}, soft)[0];
  return lp.narrow(0, lp.size(0) - int64_t(n), int64_t(n)).sum().item<double>();
}

TEST(Scoring, CommonPrefixLeavesEveryPromptAToken) {
  EXPECT_EQ(common_prefix({{1, 2, 3, 4}, {1, 2, 3, 9, 9}, {1, 2, 5}}), (TokenIds{1, 2}));
  EXPECT_EQ(common_prefix({{1, 2, 3}, {1, 2, 3}}), (TokenIds{1, 2}));
  EXPECT_EQ(common_prefix({{7}, {7, 8}}), TokenIds{});
  EXPECT_EQ(common_prefix({}), TokenIds{});
}

TEST(Scoring, ContinuationsEqualFullSequenceLogprobs) {
  const LlamaModel m = random_model();
  at::manual_seed(2);
  const at::Tensor soft = at::randn({3, 32}, at::kDouble);
  const TokenIds shared = {1, 17, 33, 5, 9};
  const std::vector<TokenIds> prompts = {{20, 21}, {40, 2, 2, 8, 30}, {12}};
  // Candidates of different lengths, one token and several (the branched-cache path).
  const std::vector<TokenIds> answers = {{50}, {51, 52, 53}, {7, 7}};
  for (const bool use_soft : {false, true}) {
    for (const bool cached : {false, true}) {
      const at::Tensor sp = use_soft ? soft : at::Tensor();
      std::optional<PrefixCache> prefix;
      std::vector<TokenIds> suffixes = prompts;
      if (cached) {
        prefix = encode_prefix(m, shared, sp);
        EXPECT_EQ(prefix->length, int64_t(shared.size()) + (use_soft ? 3 : 0));
      } else {
        for (TokenIds& s : suffixes) s = cat(shared, s);
        if (use_soft) prefix = encode_prefix(m, {}, sp);  // the soft prompt alone
      }
      const auto got = score_continuations(m, prefix ? &*prefix : nullptr, suffixes,
                                           std::vector<std::vector<TokenIds>>(prompts.size(), answers));
      ASSERT_EQ(got.size(), prompts.size());
      for (size_t r = 0; r < prompts.size(); ++r)
        for (size_t c = 0; c < answers.size(); ++c) {
          const double want =
              tail_logprob(m, cat(cat(shared, prompts[r]), answers[c]), answers[c].size(), sp);
          EXPECT_NEAR(got[r][c], want, 1e-5)
              << "soft " << use_soft << " cached " << cached << " row " << r << " candidate " << c;
        }
    }
  }
}

TEST(Scoring, ContinuationsNeedTokens) {
  const LlamaModel m = random_model();
  EXPECT_THROW(score_continuations(m, nullptr, {{1, 2}}, {{{}}}), Error);
  EXPECT_THROW(score_continuations(m, nullptr, {{}}, {{{3}}}), Error);
  EXPECT_THROW(score_continuations(m, nullptr, {{1}, {2}}, {{{3}}, {{3}, {4}}}), Error);
}

TEST(Scoring, BatchedGenerationEqualsGenerateAlone) {
  const LlamaModel m = random_model();
  const TokenIds shared = {1, 17, 33};
  const std::vector<TokenIds> prompts = {{20, 21, 22, 23}, {40}, {12, 3}};
  // A stop token greedy decoding of prompt 1 emits third: that sequence stops early while the
  // others go on beside it.
  GenerateOptions probe;
  probe.max_new_tokens = 7;
  const int64_t stop = generate(m, cat(shared, prompts[1]), probe).at(2);
  bool any_stopped = false;
  for (const double temperature : {0.0, 0.9}) {
    GenerateOptions o;
    o.max_new_tokens = 7;
    o.temperature = temperature;
    o.top_k = temperature > 0 ? 20 : 0;
    o.top_p = temperature > 0 ? 0.9 : 1.0;
    o.stop_tokens = {stop};
    const int64_t repeats = temperature > 0 ? 3 : 1;
    std::vector<uint64_t> seeds;
    for (size_t r = 0; r < prompts.size() * size_t(repeats); ++r) seeds.push_back(100 + r);
    const PrefixCache prefix = encode_prefix(m, shared);
    const auto got = generate_batch(m, &prefix, prompts, o, repeats, seeds);
    ASSERT_EQ(got.size(), prompts.size() * size_t(repeats));
    std::set<TokenIds> distinct;
    for (size_t r = 0; r < prompts.size(); ++r)
      for (int64_t k = 0; k < repeats; ++k) {
        GenerateOptions alone = o;
        alone.seed = seeds[r * size_t(repeats) + size_t(k)];
        const TokenIds want = generate(m, cat(shared, prompts[r]), alone);
        EXPECT_EQ(got[r * size_t(repeats) + size_t(k)], want)
            << "temperature " << temperature << " row " << r;
        any_stopped =
            any_stopped || (!want.empty() && want.back() == stop && int64_t(want.size()) < o.max_new_tokens);
        distinct.insert(want);
      }
    if (temperature > 0) {
      EXPECT_GT(distinct.size(), prompts.size());  // the samples differ
    }
  }
  EXPECT_TRUE(any_stopped) << "no sequence hit the stop token: the early-stop path went untested";
}

}  // namespace
}  // namespace opine::models
