// The strategies that read a label out of a causal language model, without a trained head:
//  loglik:   the log-probability of each label's answer (as the task template writes it, the
//            way SFT trains it) after the prompt; the highest wins (optionally per token);
//  generate: greedy decoding, the text parsed to a label; an answer naming none is invalid;
//  vote:     `samples` sampled answers, the most frequent valid label wins.
// Prompts are the task template's (system, k shots, the query), rendered with the chat template
// when the model has one. The beginning all prompts share runs once (eval.prefix_cache).
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/comm.h"
#include "data/example.h"
#include "data/pipeline.h"
#include "launch/eval_options.h"
#include "launch/shots.h"
#include "models/llama.h"
#include "models/tokenizer.h"

namespace opine::launch {

// One example's prediction, by any strategy.
struct ExamplePrediction {
  int label = -1;                     // class (-1: an invalid generated answer)
  std::vector<double> probabilities;  // per class: softmax of scores (loglik, head) or vote shares
  std::vector<double> logprobs;       // loglik: each class's answer log-probability (summed, or per token)
  double score = NAN;                 // regression
  std::string answer;                 // generated text (generate: the answer; vote: the samples, " | ")
};

// A causal LM and how its prompts are made.
struct PromptModel {
  const models::LlamaModel* model = nullptr;
  at::Tensor soft_prompt;  // a prompt-tuning adapter's [n, hidden], or undefined
  const models::Tokenizer* tokenizer = nullptr;
  data::Encoder encoder;  // task template (labels set), chat template; its format is ignored
};

// Called after each batch with (examples done, examples in all).
using Progress = std::function<void(int64_t, int64_t)>;

// Predictions for `queries`, in their order. `shots` supplies each query's k-shot examples.
// `seed` seeds the vote's sampling: sequence r of query i draws from derive_seed(seed, i, r),
// where i is `first_index` + its position, so a text does not depend on batching or sharding.
std::vector<ExamplePrediction> run_prompt_strategy(const std::string& strategy, const PromptModel& pm,
                                                   const data::Examples& queries, const ShotSelector& shots,
                                                   const EvalOptions& options, uint64_t seed,
                                                   int64_t first_index = 0, const Progress& progress = {});

// The class a generated answer names: the earliest whole-word, case-insensitive occurrence of a
// label (the longest label at a tie), or -1 when it names none.
int parse_answer(const std::string& text, const std::vector<std::string>& labels);

// Every rank's predictions, concatenated in rank order, on every rank (CPU communicator).
std::vector<ExamplePrediction> all_gather_predictions(dist::Communicator& cpu,
                                                      const std::vector<ExamplePrediction>& local);

// The contiguous block [begin, end) of `count` items rank `rank` of `world` takes.
std::pair<int64_t, int64_t> rank_block(int64_t count, int rank, int world);

// Examples' order by their token count, longest first (batches then pad little); stable.
std::vector<size_t> order_by_length(const std::vector<size_t>& lengths);

}  // namespace opine::launch
