// A hyperparameter sweep (`opine sweep --config FILE`): the `sweep:` section names the study, the
// experiment every trial trains, the search space, the objective and Optuna's sampler and
// pruner; every other top-level section of the file is laid over the experiment for all trials.
//
//   sweep:
//     study: abortion-lora
//     base: experiments/stance/{topic}-binary-lora.yaml
//     topics: [abortion, atheism]          # one study per topic (topic_mode: study_per_topic)
//     trials: 20
//     metric: f1_macro                     # auto: the experiment's train.metric
//     sampler: {name: TPESampler, args: {seed: "0", constant_liar: "true"}}
//     pruner: {name: MedianPruner, args: {n_startup_trials: "3"}}
//     space:
//       train.optimizer.lr: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}
//       peft.lora.r: {type: int, low: 4, high: 32, step: 4}
//       peft.lora.lora_dropout: {type: categorical, choices: ["0.0", "0.05", "0.1"]}
//     enqueue: {baseline: {train.optimizer.lr: "5.0e-4", peft.lora.r: "16", peft.lora.lora_dropout: "0.05"}}
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/config.h"

namespace opine::launch {

struct ParamSpec {
  std::string type = "float";  // float | int | categorical
  double low = 0, high = 1;
  bool log = false;
  double step = 0;  // float: 0 = continuous; int: 0 = 1
  std::vector<std::string> choices;
  template <class V>
  void visit(V& v) {
    v("type", type, "float, int or categorical", config::one_of({"float", "int", "categorical"}));
    v("low", low, "lowest value (float, int)");
    v("high", high, "highest value (float, int)");
    v("log", log, "sample on a log scale");
    v("step", step, "spacing of the values (0: continuous floats, 1 for ints)", config::at_least(0.0));
    v("choices", choices, "the values of a categorical parameter");
  }
};

struct NamedSpec {  // an Optuna sampler or pruner by class name, with keyword arguments
  std::string name;
  std::map<std::string, std::string> args;  // values as YAML writes them: numbers, true/false, strings
  template <class V>
  void visit(V& v) {
    v("name", name, "class name in optuna.samplers / optuna.pruners");
    v("args", args, "keyword arguments");
  }
};

struct SweepOptions {
  std::string study;
  std::string base;  // the experiment each trial trains; {topic} is replaced by each topic
  std::vector<std::string> topics;
  std::string topic_mode = "study_per_topic";
  int trials = 10;
  std::string metric = "auto";
  std::string direction = "auto";
  NamedSpec sampler{"TPESampler", {{"seed", "0"}, {"constant_liar", "true"}}};
  NamedSpec pruner{"MedianPruner", {}};
  std::map<std::string, ParamSpec> space;
  std::map<std::string, std::map<std::string, std::string>> enqueue;
  std::string runs_dir = "runs/sweeps";
  std::string token_file;
  int heartbeat_seconds = 30;
  int retries = 8;
  int ranks_per_trial = 0;  // 0: every trial on all ranks
  template <class V>
  void visit(V& v) {
    v("study", study, "Optuna study name (per topic: STUDY-TOPIC)");
    v("base", base, "experiment configuration every trial trains ({topic} is each topic)");
    v("topics", topics, "topics to sweep (empty: the base as it is)");
    v("topic_mode", topic_mode,
      "study_per_topic, or parameter: one study with the topic as a fixed parameter",
      config::one_of({"study_per_topic", "parameter"}));
    v("trials", trials, "trials per study", config::at_least(1));
    v("metric", metric, "objective: an evaluation metric (auto: the experiment's train.metric)");
    v("direction", direction, "maximize, minimize or auto (as the metric says)",
      config::one_of({"auto", "maximize", "minimize"}));
    v("sampler", sampler, "Optuna sampler");
    v("pruner", pruner, "Optuna pruner (NopPruner: none)");
    v("space", space, "configuration key -> distribution");
    v("enqueue", enqueue, "named parameter sets to try first (Optuna's enqueue_trial)");
    v("runs_dir", runs_dir, "trials' run folders go to RUNS_DIR/STUDY/trial-N");
    v("token_file", token_file, "file holding the service's token (else $OPINE_OPTUNA_TOKEN)");
    v("heartbeat_seconds", heartbeat_seconds, "how often rank 0 tells the service a trial is alive",
      config::at_least(1));
    v("ranks_per_trial", ranks_per_trial,
      "ranks each trial runs on (0: all); the others form groups that run trials side by side",
      config::at_least(0));
    v("retries", retries, "attempts per request when the service is down (back-off 0.5 s doubling to 30 s)",
      config::at_least(1));
  }
};

}  // namespace opine::launch
