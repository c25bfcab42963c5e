// The options of evaluation and prediction (`eval:` in YAML): which strategy turns a tweet into a
// label, how k-shot examples are chosen, sampling for the vote, batching, and what is written.
#pragma once

#include <string>

#include "core/config.h"

namespace opine::launch {

struct EvalOptions {
  // head: the classification / regression head (with its trained adapter).
  // loglik: the log-probability of each label's answer after the prompt; the best wins.
  // generate: greedy generation, the answer parsed to a label (invalid answers counted).
  // vote: `samples` sampled answers, the majority label wins.
  // auto: head when the model has one (data.format classification), else loglik.
  std::string strategy = "auto";
  std::string split;                      // empty: train.eval_split
  std::string shot_selection = "random";  // task.shots examples per prompt: random | balanced | similar
  std::string shot_split = "train";
  bool length_normalize = false;  // loglik: mean instead of sum of the answer's token log-probs
  int samples = 5;
  double temperature = 0.7;
  int top_k = 0;
  double top_p = 0.95;
  int max_new_tokens = 16;
  bool prefix_cache = true;
  int batch_size = 16;
  int limit = 0;  // evaluate the first N examples only (0: all)
  int bootstrap = 1000;
  double confidence = 0.95;
  std::string output_dir;  // default: RUN/eval/<split>-<strategy> beside the adapter, else eval/...
  bool plots = true;
  template <class V>
  void visit(V& v) {
    v("strategy", strategy, "auto, head, loglik, generate or vote",
      config::one_of({"auto", "head", "loglik", "generate", "vote"}));
    v("split", split, "split to evaluate (empty: train.eval_split)");
    v("shot_selection", shot_selection, "how task.shots examples are chosen from shot_split",
      config::one_of({"random", "balanced", "similar"}));
    v("shot_split", shot_split, "split the k-shot examples come from");
    v("length_normalize", length_normalize, "loglik: rank answers by mean token log-probability");
    v("samples", samples, "vote: sampled answers per tweet", config::at_least(1));
    v("temperature", temperature, "vote: sampling temperature", config::at_least(0.0));
    v("top_k", top_k, "vote: sample among the k most likely tokens (0 = all)", config::at_least(0));
    v("top_p", top_p, "vote: nucleus sampling mass", config::in_range(0.0, 1.0));
    v("max_new_tokens", max_new_tokens, "generate, vote: answer length limit", config::at_least(1));
    v("prefix_cache", prefix_cache,
      "run the prompt beginning all tweets share once and reuse its keys/values");
    v("batch_size", batch_size, "tweets per forward pass", config::at_least(1));
    v("limit", limit, "evaluate only the first N examples (0: all)", config::at_least(0));
    v("bootstrap", bootstrap, "bootstrap resamples for confidence intervals (0: none)", config::at_least(0));
    v("confidence", confidence, "confidence level of the intervals", config::in_range(0.5, 0.999));
    v("output_dir", output_dir, "where metrics, predictions and plots go");
    v("plots", plots, "draw PNG plots (launch/plots.py with matplotlib)");
  }
};

}  // namespace opine::launch
