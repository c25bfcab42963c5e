#include "launch/strategies.h"

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>

#include "core/error.h"
#include "core/random.h"
#include "core/utf8.h"
#include "models/scoring.h"

namespace opine::launch {

namespace {

using models::TokenIds;

bool word_char(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A query's prompt, and each class's answer tokens after it.
struct EncodedQuery {
  TokenIds prompt;
  std::vector<TokenIds> answers;
};

EncodedQuery encode_query(const data::Example& query, const data::Encoder& encoder,
                          const data::Examples& shots, bool with_answers) {
  EncodedQuery out;
  const int classes = int(encoder.task.labels.size());
  for (int c = 0; c < (with_answers ? classes : 1); ++c) {
    data::Example e = query;
    e.label = c;
    const data::TokenizedExample t = data::encode_example(e, encoder, shots);
    TokenIds prompt(t.ids.begin(), t.ids.begin() + t.prompt_length);
    if (c == 0)
      out.prompt = std::move(prompt);
    else
      OPINE_ASSERT(prompt == out.prompt, "the prompt changed with the answer's label");
    if (with_answers) out.answers.emplace_back(t.ids.begin() + t.prompt_length, t.ids.end());
  }
  return out;
}

std::vector<double> softmax(const std::vector<double>& scores) {
  const double top = *std::max_element(scores.begin(), scores.end());
  std::vector<double> p(scores.size());
  double sum = 0;
  for (size_t i = 0; i < scores.size(); ++i) sum += p[i] = std::exp(scores[i] - top);
  for (double& x : p) x /= sum;
  return p;
}

}  // namespace

int parse_answer(const std::string& text, const std::vector<std::string>& labels) {
  const std::string t = lower(text);
  size_t best_at = std::string::npos, best_len = 0;
  int best = -1;
  for (size_t c = 0; c < labels.size(); ++c) {
    const std::string l = lower(labels[c]);
    if (l.empty()) continue;
    for (size_t at = t.find(l); at != std::string::npos; at = t.find(l, at + 1)) {
      const bool starts = at == 0 || !word_char(static_cast<unsigned char>(t[at - 1]));
      const bool ends = at + l.size() == t.size() || !word_char(static_cast<unsigned char>(t[at + l.size()]));
      if (!starts || !ends) continue;
      if (at < best_at || (at == best_at && l.size() > best_len)) {
        best_at = at;
        best_len = l.size();
        best = int(c);
      }
      break;
    }
  }
  return best;
}

std::vector<ExamplePrediction> all_gather_predictions(dist::Communicator& cpu,
                                                      const std::vector<ExamplePrediction>& local) {
  nlohmann::json rows = nlohmann::json::array();
  for (const ExamplePrediction& p : local) {
    nlohmann::json r = {{"l", p.label}, {"p", p.probabilities}, {"g", p.logprobs}, {"a", p.answer}};
    if (!std::isnan(p.score)) r["s"] = p.score;
    rows.push_back(std::move(r));
  }
  std::vector<ExamplePrediction> out;
  // MessagePack, not JSON text: it keeps NaN and infinities (a diverged head's outputs).
  const std::vector<std::uint8_t> packed = nlohmann::json::to_msgpack(rows);
  for (const std::string& bytes : dist::all_gather_bytes(cpu, std::string(packed.begin(), packed.end()))) {
    for (const nlohmann::json& r : nlohmann::json::from_msgpack(bytes)) {
      ExamplePrediction p;
      p.label = r.at("l").get<int>();
      p.probabilities = r.at("p").get<std::vector<double>>();
      p.logprobs = r.at("g").get<std::vector<double>>();
      p.answer = r.at("a").get<std::string>();
      if (r.contains("s")) p.score = r.at("s").get<double>();
      out.push_back(std::move(p));
    }
  }
  return out;
}

std::pair<int64_t, int64_t> rank_block(int64_t count, int rank, int world) {
  const int64_t base = count / world, extra = count % world;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

std::vector<size_t> order_by_length(const std::vector<size_t>& lengths) {
  std::vector<size_t> order(lengths.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return lengths[a] > lengths[b]; });
  return order;
}

std::vector<ExamplePrediction> run_prompt_strategy(const std::string& strategy, const PromptModel& pm,
                                                   const data::Examples& queries, const ShotSelector& shots,
                                                   const EvalOptions& o, uint64_t seed, int64_t first_index,
                                                   const Progress& progress) {
  OPINE_CHECK(strategy == "loglik" || strategy == "generate" || strategy == "vote", "unknown strategy '",
              strategy, "'");
  OPINE_ASSERT(pm.model && pm.tokenizer, "prompt strategy without a model or tokenizer");
  at::NoGradGuard no_grad;
  const std::vector<std::string>& labels = pm.encoder.task.labels;
  OPINE_CHECK(!labels.empty(), "strategy ", strategy,
              " needs the label words (task.labels or the dataset's classes)");
  data::Encoder enc = pm.encoder;
  enc.format = "sft";  // prompt + answer, exactly as supervised fine-tuning sees them
  enc.max_length = std::numeric_limits<int>::max();  // fitted to the context below, for every label alike
  const bool loglik = strategy == "loglik";

  std::vector<EncodedQuery> encoded(queries.size());
  at::parallel_for(0, int64_t(queries.size()), 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      encoded[i] = encode_query(queries[i], enc, shots.shots_for(queries[i]), loglik);
  });
  // A prompt too long for the context loses its beginning (after BOS), as training cuts it: the
  // tweet's end, the question and the answer matter most.
  const int64_t context =
      pm.model->config().max_position_embeddings - (pm.soft_prompt.defined() ? pm.soft_prompt.size(0) : 0);
  const std::optional<int64_t> bos = pm.tokenizer->bos_id();
  for (size_t i = 0; i < encoded.size(); ++i) {
    TokenIds& prompt = encoded[i].prompt;
    int64_t after = o.max_new_tokens;
    if (loglik) {
      after = 0;
      for (const TokenIds& a : encoded[i].answers) after = std::max<int64_t>(after, int64_t(a.size()));
    }
    const int64_t excess = int64_t(prompt.size()) + after - context;
    if (excess <= 0) continue;
    const size_t keep = bos && !prompt.empty() && prompt[0] == *bos ? 1 : 0;
    OPINE_CHECK(int64_t(prompt.size() - keep) > excess, "example ", i, " (row ", queries[i].row,
                "): its answer alone does not fit the model's context of ", context, " tokens");
    prompt.erase(prompt.begin() + int64_t(keep), prompt.begin() + int64_t(keep) + excess);
  }

  // The beginning every prompt shares runs once.
  std::vector<TokenIds> prompts;
  for (const EncodedQuery& q : encoded) prompts.push_back(q.prompt);
  const TokenIds shared = o.prefix_cache ? models::common_prefix(prompts) : TokenIds();
  std::optional<models::PrefixCache> prefix;
  if (!shared.empty() || pm.soft_prompt.defined())
    prefix = models::encode_prefix(*pm.model, shared, pm.soft_prompt);
  for (TokenIds& p : prompts) p.erase(p.begin(), p.begin() + int64_t(shared.size()));

  models::GenerateOptions g;
  g.max_new_tokens = o.max_new_tokens;
  if (strategy == "vote") {
    g.temperature = o.temperature;
    g.top_k = o.top_k;
    g.top_p = o.top_p;
  }
  if (auto eos = pm.tokenizer->eos_id()) g.stop_tokens.push_back(*eos);
  if (pm.encoder.chat)
    if (auto end = pm.tokenizer->token_to_id(pm.encoder.chat->end_of_turn())) g.stop_tokens.push_back(*end);
  const int64_t repeats = strategy == "vote" ? o.samples : 1;

  std::vector<size_t> lengths;
  for (const TokenIds& p : prompts) lengths.push_back(p.size());
  const std::vector<size_t> order = order_by_length(lengths);
  std::vector<ExamplePrediction> out(queries.size());
  const models::PrefixCache* pre = prefix ? &*prefix : nullptr;
  for (size_t start = 0; start < order.size(); start += size_t(o.batch_size)) {
    const size_t stop = std::min(order.size(), start + size_t(o.batch_size));
    std::vector<TokenIds> batch;
    for (size_t k = start; k < stop; ++k) batch.push_back(prompts[order[k]]);
    if (loglik) {
      std::vector<std::vector<TokenIds>> candidates;
      for (size_t k = start; k < stop; ++k) candidates.push_back(encoded[order[k]].answers);
      const auto scores = models::score_continuations(*pm.model, pre, batch, candidates);
      for (size_t k = start; k < stop; ++k) {
        std::vector<double> s = scores[k - start];
        if (o.length_normalize)
          for (size_t c = 0; c < s.size(); ++c) s[c] /= double(candidates[k - start][c].size());
        ExamplePrediction& p = out[order[k]];
        p.label = int(std::max_element(s.begin(), s.end()) - s.begin());
        p.probabilities = softmax(s);
        p.logprobs = s;
      }
    } else {
      std::vector<uint64_t> seeds;
      for (size_t k = start; k < stop; ++k)
        for (int64_t r = 0; r < repeats; ++r)
          seeds.push_back(derive_seed(seed, uint64_t(first_index + int64_t(order[k])), uint64_t(r)));
      const auto texts = models::generate_batch(*pm.model, pre, batch, g, repeats, seeds);
      for (size_t k = start; k < stop; ++k) {
        ExamplePrediction& p = out[order[k]];
        std::vector<int64_t> votes(labels.size(), 0);
        for (int64_t r = 0; r < repeats; ++r) {
          TokenIds ids = texts[(k - start) * size_t(repeats) + size_t(r)];
          if (!ids.empty() &&
              std::find(g.stop_tokens.begin(), g.stop_tokens.end(), ids.back()) != g.stop_tokens.end())
            ids.pop_back();
          const std::string text = to_valid_utf8(pm.tokenizer->decode(ids, /*skip_special=*/true));
          p.answer += (r ? " | " : "") + text;
          const int label = parse_answer(text, labels);
          if (label >= 0) ++votes[label];
        }
        // The most votes wins; a tie goes to the lower class index; no valid vote is invalid.
        const int64_t top = *std::max_element(votes.begin(), votes.end());
        p.label = top > 0 ? int(std::max_element(votes.begin(), votes.end()) - votes.begin()) : -1;
        for (int64_t v : votes) p.probabilities.push_back(double(v) / double(repeats));
      }
    }
    if (progress) progress(int64_t(stop), int64_t(order.size()));
  }
  return out;
}

}  // namespace opine::launch
