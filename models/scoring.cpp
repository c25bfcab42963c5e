#include "models/scoring.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>

#include "core/error.h"

namespace opine::models {

namespace {

// Rows of token ids, right-padded with token 0, and their mask [rows, width] (width >= 1).
std::pair<at::Tensor, at::Tensor> pad_right(const std::vector<TokenIds>& rows, int64_t width) {
  width = std::max<int64_t>(width, 1);
  at::Tensor ids = at::zeros({int64_t(rows.size()), width}, at::kLong);
  at::Tensor mask = at::zeros({int64_t(rows.size()), width}, at::kLong);
  auto id = ids.accessor<int64_t, 2>();
  auto m = mask.accessor<int64_t, 2>();
  for (size_t r = 0; r < rows.size(); ++r)
    for (size_t t = 0; t < rows[r].size(); ++t) {
      id[r][t] = rows[r][t];
      m[r][t] = 1;
    }
  return {ids, mask};
}

// Row `index[i]` of every cache tensor becomes row i (copies: each row then grows on its own).
KvCache select_rows(const KvCache& cache, const at::Tensor& index) {
  KvCache out;
  const at::Tensor idx = index.to(cache.key_valid.device());
  for (size_t l = 0; l < cache.keys.size(); ++l) {
    out.keys.push_back(cache.keys[l].index_select(0, idx));
    out.values.push_back(cache.values[l].index_select(0, idx));
  }
  out.key_valid = cache.key_valid.index_select(0, idx);
  out.next_position = cache.next_position.index_select(0, idx);
  out.length = cache.length;
  out.capacity = cache.capacity;
  return out;
}

// Runs right-padded prompts after the cache's prefix; float32 log-softmax of the logits after
// each row's last token: [rows, vocab].
at::Tensor run_prompts(const LlamaModel& model, const std::vector<TokenIds>& prompts, KvCache& cache) {
  int64_t width = 0;
  for (const TokenIds& p : prompts) {
    OPINE_CHECK(!p.empty(), "a prompt has no tokens after the shared prefix");
    width = std::max<int64_t>(width, int64_t(p.size()));
  }
  auto [ids, mask] = pad_right(prompts, width);
  const at::Tensor hidden = model.forward(ids, mask, &cache).hidden;
  const at::Tensor last = (mask.sum(1) - 1).to(hidden.device());
  const at::Tensor rows = hidden.gather(1, last.view({-1, 1, 1}).expand({hidden.size(0), 1, hidden.size(2)}));
  return at::log_softmax(model.lm_logits(rows).squeeze(1).to(at::kFloat), -1);
}

}  // namespace

PrefixCache encode_prefix(const LlamaModel& model, const TokenIds& ids, const at::Tensor& soft_prompt) {
  at::NoGradGuard no_grad;  // inference: no graph (adapters beside a 4-bit base still require grad)
  PrefixCache out;
  const int64_t soft = soft_prompt.defined() ? soft_prompt.size(0) : 0;
  const int64_t length = soft + int64_t(ids.size());
  if (length == 0) return out;
  KvCache cache = model.make_cache(1, length);
  if (soft) {
    at::Tensor embeds = soft_prompt.to(model.device(), model.dtype()).unsqueeze(0);
    if (!ids.empty()) embeds = with_prefix(model, soft_prompt, at::tensor(ids, at::kLong).unsqueeze(0));
    model.forward_embeds(embeds, {}, &cache);
  } else {
    model.forward(at::tensor(ids, at::kLong).unsqueeze(0), {}, &cache);
  }
  out.keys = std::move(cache.keys);
  out.values = std::move(cache.values);
  out.length = length;
  return out;
}

TokenIds common_prefix(const std::vector<TokenIds>& prompts) {
  if (prompts.empty()) return {};
  size_t n = prompts[0].size();
  for (const TokenIds& p : prompts) {
    n = std::min(n, p.size() == 0 ? 0 : p.size() - 1);
    n = size_t(std::mismatch(prompts[0].begin(), prompts[0].begin() + n, p.begin()).first -
               prompts[0].begin());
  }
  return TokenIds(prompts[0].begin(), prompts[0].begin() + n);
}

KvCache start_cache(const LlamaModel& model, const PrefixCache* prefix, int64_t batch, int64_t extra) {
  const int64_t p = prefix ? prefix->length : 0;
  KvCache cache = model.make_cache(batch, p + extra);
  if (p == 0) return cache;
  for (size_t l = 0; l < cache.keys.size(); ++l) {
    cache.keys[l].narrow(2, 0, p).copy_(prefix->keys[l].expand({batch, -1, -1, -1}));
    cache.values[l].narrow(2, 0, p).copy_(prefix->values[l].expand({batch, -1, -1, -1}));
  }
  cache.key_valid.narrow(1, 0, p).fill_(true);
  cache.next_position.fill_(p);
  cache.length = p;
  return cache;
}

std::vector<std::vector<double>> score_continuations(const LlamaModel& model, const PrefixCache* prefix,
                                                     const std::vector<TokenIds>& prompts,
                                                     const std::vector<std::vector<TokenIds>>& candidates) {
  at::NoGradGuard no_grad;
  OPINE_CHECK(prompts.size() == candidates.size(), "score_continuations: ", prompts.size(), " prompts but ",
              candidates.size(), " candidate lists");
  const int64_t rows = int64_t(prompts.size());
  if (rows == 0) return {};
  const int64_t choices = int64_t(candidates[0].size());
  OPINE_CHECK(choices > 0, "score_continuations: no candidates");
  int64_t width = 0, feed = 0;  // prompt width, continuation tokens to feed
  for (size_t r = 0; r < prompts.size(); ++r) {
    OPINE_CHECK(int64_t(candidates[r].size()) == choices, "every prompt needs ", choices, " candidates");
    for (const TokenIds& c : candidates[r]) {
      OPINE_CHECK(!c.empty(), "a candidate continuation has no tokens");
      feed = std::max<int64_t>(feed, int64_t(c.size()) - 1);
    }
    width = std::max<int64_t>(width, int64_t(prompts[r].size()));
  }
  const int64_t p = prefix ? prefix->length : 0;
  OPINE_CHECK(p + width + feed <= model.config().max_position_embeddings, "prompt and answer (",
              p + width + feed, " tokens) exceed the model's context of ",
              model.config().max_position_embeddings);
  KvCache cache = start_cache(model, prefix, rows, width + feed);
  const at::Tensor first = run_prompts(model, prompts, cache).cpu();  // [rows, vocab]
  std::vector<std::vector<double>> out(rows, std::vector<double>(choices, 0.0));
  auto lp = first.accessor<float, 2>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < choices; ++c) out[r][c] = lp[r][candidates[r][c][0]];
  if (feed == 0) return out;

  // Each candidate's later tokens, after its own copy of the prompt's cache.
  KvCache branched = select_rows(cache, at::arange(rows, at::kLong).repeat_interleave(choices));
  cache = KvCache();
  std::vector<TokenIds> inputs, targets;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < choices; ++c) {
      const TokenIds& t = candidates[r][c];
      inputs.emplace_back(t.begin(), t.end() - 1);
      targets.emplace_back(t.begin() + 1, t.end());
    }
  auto [ids, mask] = pad_right(inputs, feed);
  auto [next, next_mask] = pad_right(targets, feed);
  const at::Tensor hidden = model.forward(ids, mask, &branched).hidden;
  const at::Tensor logp = at::log_softmax(model.lm_logits(hidden).to(at::kFloat), -1);
  const at::Tensor picked = logp.gather(-1, next.to(logp.device()).unsqueeze(-1)).squeeze(-1).cpu();
  const at::Tensor sums = (picked * next_mask.to(at::kFloat)).sum(1).to(at::kDouble);
  auto s = sums.accessor<double, 1>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < choices; ++c) out[r][c] += s[r * choices + c];
  return out;
}

std::vector<TokenIds> generate_batch(const LlamaModel& model, const PrefixCache* prefix,
                                     const std::vector<TokenIds>& prompts, const GenerateOptions& o,
                                     int64_t repeats, const std::vector<uint64_t>& seeds) {
  at::NoGradGuard no_grad;
  const int64_t rows = int64_t(prompts.size());
  const int64_t n = rows * repeats;
  OPINE_CHECK(repeats >= 1, "generate_batch: repeats must be at least 1");
  OPINE_CHECK(int64_t(seeds.size()) == n, "generate_batch: ", seeds.size(), " seeds for ", n, " sequences");
  OPINE_CHECK(o.top_p > 0.0 && o.top_p <= 1.0, "top_p must be in (0, 1], got ", o.top_p);
  std::vector<TokenIds> out(n);
  if (rows == 0 || o.max_new_tokens == 0) return out;
  int64_t width = 0;
  for (const TokenIds& p : prompts) width = std::max<int64_t>(width, int64_t(p.size()));
  const int64_t p = prefix ? prefix->length : 0;
  OPINE_CHECK(p + width + o.max_new_tokens <= model.config().max_position_embeddings, "prompt (", p + width,
              " tokens) plus ", o.max_new_tokens, " new tokens exceed the model's context of ",
              model.config().max_position_embeddings);
  KvCache cache = start_cache(model, prefix, rows, width + o.max_new_tokens);
  at::Tensor logp = run_prompts(model, prompts, cache);
  if (repeats > 1) {
    const at::Tensor index = at::arange(rows, at::kLong).repeat_interleave(repeats);
    cache = select_rows(cache, index);
    logp = logp.index_select(0, index.to(logp.device()));
  }
  std::vector<at::Generator> generators;
  for (uint64_t seed : seeds) generators.push_back(at::make_generator<at::CPUGeneratorImpl>(seed));
  std::vector<char> done(n, 0);
  for (int64_t step = 0; step < o.max_new_tokens; ++step) {
    // Log-probabilities order tokens as logits do: greedy, top-k and top-p pick the same tokens,
    // and the temperature-scaled softmax of log-softmax equals that of the logits.
    const at::Tensor rows_cpu = logp.cpu();
    std::vector<int64_t> next(n, 0);
    std::vector<int64_t> live(n, 0);
    for (int64_t i = 0; i < n; ++i) {
      if (done[i]) continue;
      next[i] = sample_token(rows_cpu[i], o, generators[i]);
      out[i].push_back(next[i]);
      if (std::find(o.stop_tokens.begin(), o.stop_tokens.end(), next[i]) != o.stop_tokens.end())
        done[i] = 1;
      else
        live[i] = 1;
    }
    if (std::all_of(done.begin(), done.end(), [](char d) { return d; }) || step + 1 == o.max_new_tokens)
      break;
    const at::Tensor ids = at::tensor(next, at::kLong).view({n, 1});
    const at::Tensor mask = at::tensor(live, at::kLong).view({n, 1});
    const at::Tensor hidden = model.forward(ids, mask, &cache).hidden;
    logp = at::log_softmax(model.lm_logits(hidden).squeeze(1).to(at::kFloat), -1);
  }
  return out;
}

}  // namespace opine::models
