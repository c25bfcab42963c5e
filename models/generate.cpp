#include "models/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>

#include "core/error.h"

namespace opine::models {

int64_t sample_token(const at::Tensor& logits, const GenerateOptions& o, at::Generator& generator) {
  if (o.temperature <= 0.0) return logits.argmax().item<int64_t>();
  at::Tensor scaled = logits.to(at::kFloat) / o.temperature;
  if (o.top_k > 0 && o.top_k < scaled.size(0)) {
    at::Tensor kth = std::get<0>(scaled.topk(o.top_k)).min();
    scaled = scaled.masked_fill(scaled < kth, -INFINITY);
  }
  if (o.top_p < 1.0) {
    // Keep the smallest set of most likely tokens whose probability reaches top_p.
    auto [sorted, order] = scaled.sort(/*dim=*/0, /*descending=*/true);
    at::Tensor cumulative = at::softmax(sorted, 0).cumsum(0);
    at::Tensor drop = (cumulative - at::softmax(sorted, 0)) > o.top_p;
    sorted = sorted.masked_fill(drop, -INFINITY);
    scaled = at::full_like(scaled, -INFINITY).scatter(0, order, sorted);
  }
  at::Tensor probs = at::softmax(scaled, 0);
  return at::multinomial(probs, 1, /*replacement=*/false, generator).item<int64_t>();
}

std::vector<int64_t> generate(const LlamaModel& model, const std::vector<int64_t>& prompt,
                              const GenerateOptions& o, const std::function<bool(int64_t)>& on_token) {
  OPINE_CHECK(!prompt.empty(), "generation needs at least one prompt token");
  OPINE_CHECK(o.max_new_tokens >= 0, "max_new_tokens must not be negative");
  OPINE_CHECK(o.top_p > 0.0 && o.top_p <= 1.0, "top_p must be in (0, 1], got ", o.top_p);
  const int64_t prefix = o.prefix_embeds.defined() ? o.prefix_embeds.size(0) : 0;
  const int64_t capacity = prefix + int64_t(prompt.size()) + o.max_new_tokens;
  OPINE_CHECK(capacity <= model.config().max_position_embeddings, "prompt (", prompt.size(), ") plus ",
              o.max_new_tokens, " new tokens exceed the model's context of ",
              model.config().max_position_embeddings);
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  KvCache cache = model.make_cache(1, capacity);
  at::Tensor ids = at::tensor(prompt, at::kLong).unsqueeze(0);
  std::vector<int64_t> out;
  while (int64_t(out.size()) < o.max_new_tokens) {
    // The first step reads the soft prompt (if any) and the whole prompt; later ones one token.
    at::Tensor hidden = prefix && out.empty()
                            ? model.forward_embeds(with_prefix(model, o.prefix_embeds, ids), {}, &cache).hidden
                            : model.forward(ids, {}, &cache).hidden;
    at::Tensor logits = model.lm_logits(hidden.narrow(1, hidden.size(1) - 1, 1)).reshape({-1}).to(at::kCPU);
    const int64_t next = sample_token(logits, o, generator);
    out.push_back(next);
    if (on_token && !on_token(next)) break;
    if (std::find(o.stop_tokens.begin(), o.stop_tokens.end(), next) != o.stop_tokens.end()) break;
    ids = at::full({1, 1}, next, at::kLong);
  }
  return out;
}

}  // namespace opine::models
