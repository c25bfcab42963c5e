// `opine sweep`: hyperparameter search with Optuna (launch/optuna_service.py) over HTTP. Rank 0
// asks the service for each trial's parameters and broadcasts them; every rank trains the trial
// (a normal run folder, RUNS_DIR/STUDY/trial-N) — or, with sweep.ranks_per_trial, the ranks form
// groups that each do this for their share of the trials, side by side; evaluation metrics are reported as
// they come and a prune decision stops every rank at once; the result is told. A trial that throws or ends
// with a non-finite objective is told FAIL and the sweep goes on. Request ids are the study, the
// topic and the trial's index, so a sweep started again after a crash gets its earlier trials
// back from the service instead of new ones: finished ones are skipped, an interrupted one
// resumes from its last checkpoint.
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/runtime.h"
#include "launch/commands.h"
#include "launch/optuna_client.h"
#include "launch/resolve.h"
#include "launch/sweep_options.h"
#include "launch/train.h"

namespace opine::launch {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::vector<FlagSpec> kSweepFlags = {
    {"config", "FILE", "sweep configuration (a sweep: section; other sections apply to every trial)"},
    {"optuna-url", "URL", "the Optuna service, http://HOST:PORT (launch/optuna_service.py)"},
    {"model", "PATH", "model every trial fine-tunes (model.path)"},
    {"help", "", "show this help"},
};

// Lays `over`'s maps onto `base`'s, key by key (scalars and lists replace).
void merge_into(YAML::Node base, const YAML::Node& over) {
  for (const auto& kv : over) {
    const std::string key = kv.first.as<std::string>();
    if (kv.second.IsMap() && base[key] && base[key].IsMap())
      merge_into(base[key], kv.second);
    else
      base[key] = YAML::Clone(kv.second);
  }
}

// A YAML-written scalar as JSON: numbers and booleans typed, anything else a string.
json scalar_json(const std::string& text) {
  try {
    const json j = json::parse(text);
    if (j.is_number() || j.is_boolean() || j.is_null()) return j;
  } catch (const json::exception&) {
  }
  return text;
}

json named_spec_json(const NamedSpec& s) {
  json args = json::object();
  for (const auto& [k, v] : s.args) args[k] = scalar_json(v);
  return {{"name", s.name}, {"args", args}};
}

// Optuna's distribution JSON for a parameter (what distribution_to_json writes, parsed).
json distribution_json(const std::string& key, const ParamSpec& p) {
  if (p.type == "categorical") {
    OPINE_CHECK(!p.choices.empty(), "sweep.space.", key, ": a categorical parameter needs choices");
    json choices = json::array();
    for (const std::string& c : p.choices) choices.push_back(scalar_json(c));
    return {{"name", "CategoricalDistribution"}, {"attributes", {{"choices", choices}}}};
  }
  OPINE_CHECK(p.low <= p.high, "sweep.space.", key, ": low ", p.low, " is above high ", p.high);
  OPINE_CHECK(!p.log || p.low > 0, "sweep.space.", key, ": a log scale needs low > 0");
  OPINE_CHECK(!(p.log && p.step > 0 && p.type == "float"), "sweep.space.", key,
              ": log and step exclude each other");
  if (p.type == "int") {
    OPINE_CHECK(p.low == std::floor(p.low) && p.high == std::floor(p.high), "sweep.space.", key,
                ": an int parameter needs whole low and high");
    return {{"name", "IntDistribution"},
            {"attributes",
             {{"low", int64_t(p.low)},
              {"high", int64_t(p.high)},
              {"log", p.log},
              {"step", p.step > 0 ? int64_t(p.step) : 1}}}};
  }
  return {{"name", "FloatDistribution"},
          {"attributes",
           {{"low", p.low},
            {"high", p.high},
            {"log", p.log},
            {"step", p.step > 0 ? json(p.step) : json(nullptr)}}}};
}

// A parameter's value as a configuration override.
std::string override_text(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", value.get<double>());
    return buf;
  }
  return value.dump();
}

// Rank 0's JSON on every rank.
json broadcast_json(dist::Communicator& comm, const json& mine) {
  return json::parse(dist::all_gather_bytes(comm, comm.rank() == 0 ? mine.dump() : std::string()).at(0));
}

// Tells the service every `seconds` that the trial is alive, from a thread of rank 0.
class Heartbeat {
 public:
  Heartbeat(OptunaClient* client, std::string study, int64_t trial, int seconds) {
    if (!client) return;
    thread_ = std::thread([=, this] {
      std::unique_lock<std::mutex> lock(mutex_);
      while (!cv_.wait_for(lock, std::chrono::seconds(seconds), [this] { return done_; })) {
        try {
          client->heartbeat(study, trial);
        } catch (const std::exception& e) {
          log::warn("heartbeat of trial ", trial, " failed: ", e.what());
        }
      }
    });
  }
  ~Heartbeat() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
};

}  // namespace

int run_sweep(const std::vector<std::string>& argv) {
  Args args(kSweepFlags, argv);
  if (args.has("help")) {
    std::cout << "usage: opine sweep --config SWEEP.yaml --optuna-url http://HOST:PORT [--model M] "
                 "[key=value ...]\n"
                 "       mpirun -np N opine sweep ...   (every trial runs on all ranks)\n\n"
                 "Runs sweep.trials trials per study: parameters from Optuna, one run folder per trial,\n"
                 "evaluations reported for pruning, results told; prints the best trial of each study.\n\n"
              << format_flags(kSweepFlags);
    return 0;
  }
  OPINE_CHECK(args.positionals().empty(), "unexpected argument '", args.positionals().front(), "'");
  const std::optional<std::string> config = args.get("config");
  const std::optional<std::string> url = args.get("optuna-url");
  OPINE_CHECK(config && url, "opine sweep needs --config FILE and --optuna-url URL");
  const std::unique_ptr<dist::Runtime> runtime = dist::Runtime::start(nullptr, nullptr);
  log::set_rank(runtime->rank(), runtime->world_size());
  const bool lead = runtime->rank() == 0;  // creates the studies, prints the summary

  const YAML::Node file = config::load_yaml_file(*config);
  OPINE_CHECK(file.IsMap() && file["sweep"], *config, ": no sweep: section");
  const SweepOptions s = config::from_yaml<SweepOptions>(file["sweep"], *config + " (sweep:)");
  // Groups of ranks run trials side by side; each group's first rank talks to the service.
  const int world = runtime->world_size();
  const int per_trial = s.ranks_per_trial == 0 ? world : s.ranks_per_trial;
  OPINE_CHECK(per_trial <= world && world % per_trial == 0, *config,
              ": sweep.ranks_per_trial = ", s.ranks_per_trial, " does not divide the ", world, " ranks");
  const int groups = world / per_trial, group = runtime->rank() / per_trial;
  const std::unique_ptr<dist::Runtime> group_runtime = groups > 1 ? runtime->split(group) : nullptr;
  dist::Runtime& trial_runtime = group_runtime ? *group_runtime : *runtime;
  dist::Communicator& cpu = trial_runtime.world();
  const bool leader = trial_runtime.rank() == 0;
  OPINE_CHECK(!s.study.empty(), *config, ": sweep.study is empty");
  OPINE_CHECK(!s.base.empty(), *config, ": sweep.base names no experiment");
  OPINE_CHECK(!s.space.empty(), *config, ": sweep.space is empty");
  json distributions = json::object();
  for (const auto& [key, p] : s.space) distributions[key] = distribution_json(key, p);

  std::unique_ptr<OptunaClient> client, heartbeat_client;  // the heartbeat thread has its own connection
  if (leader) {
    heartbeat_client = std::make_unique<OptunaClient>(*url, read_optuna_token(s.token_file), 1);
    client = std::make_unique<OptunaClient>(*url, read_optuna_token(s.token_file), s.retries);
    const json health = client->health();
    if (lead)
      log::info("Optuna service ", *url, ": optuna ", health.value("optuna", "?"), ", storage ",
                health.value("storage", "?"));
  }

  json summary = json::array();
  const std::vector<std::string> topics = s.topics.empty() ? std::vector<std::string>{""} : s.topics;
  for (const std::string& topic : topics) {
    // The trial's configuration: the experiment, the sweep file's other sections, the command line.
    std::string base_path = s.base;
    if (const size_t at = base_path.find("{topic}"); at != std::string::npos) {
      OPINE_CHECK(!topic.empty(), *config, ": sweep.base uses {topic} but sweep.topics is empty");
      base_path.replace(at, 7, topic);
    }
    YAML::Node base = config::load_yaml_file(base_path);
    YAML::Node shared(YAML::NodeType::Map);
    for (const auto& kv : file)
      if (kv.first.as<std::string>() != "sweep") shared[kv.first.as<std::string>()] = kv.second;
    merge_into(base, shared);
    std::vector<std::string> overrides = args.overrides();
    if (auto model = args.get("model")) overrides.push_back("model.path=" + *model);
    config::apply_overrides(base, overrides);
    const OpineOptions probe = config::from_yaml<OpineOptions>(base, base_path);
    const std::string metric = s.metric != "auto"             ? s.metric
                               : probe.train.metric != "auto" ? probe.train.metric
                               : probe.data.format == "sft"   ? "loss"
                                                              : "f1_macro";
    const bool maximize =
        s.direction == "auto" ? metrics::greater_is_better(metric) : s.direction == "maximize";
    const bool per_topic = !topic.empty() && s.topic_mode == "study_per_topic";
    const std::string study = per_topic ? s.study + "-" + topic : s.study;
    // One study for all topics: the topic is a parameter with every topic as a choice, fixed per ask.
    json dists = distributions, fixed = json::object();
    if (!topic.empty() && !per_topic) {
      dists["topic"] = {{"name", "CategoricalDistribution"}, {"attributes", {{"choices", s.topics}}}};
      fixed["topic"] = topic;
    }
    if (lead) {
      client->create_study(study, {maximize ? "maximize" : "minimize"}, named_spec_json(s.sampler),
                           named_spec_json(s.pruner));
      for (const auto& [name, params] : s.enqueue) {
        json p = json::object();
        for (const auto& [key, value] : params) {
          OPINE_CHECK(s.space.count(key), *config, ": sweep.enqueue.", name, ".", key,
                      " is not in sweep.space");
          p[key] = scalar_json(value);
        }
        if (dists.contains("topic")) p["topic"] = topic;
        client->enqueue(study, p);
      }
      log::info("study ", study, ": ", s.trials, " trials of ", base_path, ", ",
                maximize ? "maximize " : "minimize ", metric, groups > 1 ? ", " + std::to_string(groups) : "",
                groups > 1 ? " groups of " + std::to_string(per_trial) + " ranks side by side" : "");
    }
    runtime->world().barrier();  // the study exists before any group asks

    for (int k = group; k < s.trials; k += groups) {
      const std::string request_id = study + "/" + topic + "/" + std::to_string(k);
      json asked;
      if (leader) {
        const AskedTrial t = client->ask(study, request_id, dists, fixed);
        asked = {{"number", t.number}, {"params", t.params}, {"state", t.state}};
      }
      asked = broadcast_json(cpu, asked);
      const int64_t number = asked.at("number").get<int64_t>();
      const std::string asked_state = asked.at("state").get<std::string>();
      if (asked_state != "RUNNING") {
        if (leader)
          log::info("trial ", number, " (", request_id, ") already ", asked_state, " in an earlier run");
        continue;
      }
      const fs::path run_dir = fs::path(s.runs_dir) / study / ("trial-" + std::to_string(number));
      YAML::Node node = YAML::Clone(base);
      std::vector<std::string> trial_overrides;
      for (const auto& [key, value] : asked.at("params").items())
        if (key != "topic") trial_overrides.push_back(key + "=" + override_text(value));
      trial_overrides.push_back("train.run_dir=" + run_dir.string());
      trial_overrides.push_back("train.metric=" + metric);

      std::string state = "COMPLETE", why;
      double value = NAN;
      try {
        config::apply_overrides(node, trial_overrides);
        const OpineOptions o =
            config::from_yaml<OpineOptions>(node, base_path + " (trial " + std::to_string(number) + ")");
        const bool resume = fs::exists(run_dir / "config.yaml");
        if (leader)
          log::info("trial ", number, resume ? " (resumed)" : "", ": ", asked.at("params").dump(), " -> ",
                    run_dir.string());
        const Heartbeat beat(leader ? heartbeat_client.get() : nullptr, study, number, s.heartbeat_seconds);
        const EvalHook report = [&](int64_t step, double v, const json&) {
          double prune = 0;
          if (leader && std::isfinite(v)) {
            try {
              prune = client->report(study, number, v, step) ? 1 : 0;
            } catch (const Error& e) {
              log::warn("trial ", number, ": report failed (", e.what(), "); the trial goes on");
            }
          }
          at::Tensor flag = at::full({1}, prune, at::kDouble);
          cpu.all_reduce(flag, dist::ReduceOp::kMax);
          return flag.item<double>() > 0;
        };
        const TrainResult result = train(o, config::to_yaml(o), resume, trial_runtime, report);
        if (result.metrics.is_object() && !result.metrics.empty())
          value = metric == "loss" ? result.metrics.value("loss", NAN)
                                   : metrics::metric_value(result.metrics, metric);
        if (result.stopped_by_hook)
          state = "PRUNED";
        else if (!std::isfinite(value))
          state = "FAIL", why = metric + " is not finite (or there was no evaluation)";
      } catch (const std::exception& e) {
        state = "FAIL";
        why = e.what();
      }
      if (leader) {
        client->tell(study, number, state,
                     state == "COMPLETE" ? std::vector<double>{value} : std::vector<double>{});
        json record = {{"study", study},
                       {"trial", number},
                       {"request_id", request_id},
                       {"params", asked.at("params")},
                       {"state", state},
                       {"metric", metric},
                       {"value", std::isfinite(value) ? json(value) : json()},
                       {"group", group},
                       {"ranks", per_trial}};
        if (!why.empty()) record["error"] = why;
        fs::create_directories(run_dir);
        write_text_atomic(run_dir / "trial.json", record.dump(2) + "\n");
        if (state == "FAIL")
          log::warn("trial ", number, " failed: ", why);
        else
          log::info("trial ", number, " ", state, ": ", metric, " = ", value);
      }
    }
    runtime->world().barrier();  // every group's trials are told
    if (lead) {
      const json best = client->best(study);
      const json status = client->study(study);
      summary.push_back({{"study", study},
                         {"metric", metric},
                         {"best", best.value("best_trials", json::array())},
                         {"trials", status.value("trials", json::object())}});
    }
  }
  if (lead) std::cout << summary.dump(2) << std::endl;
  return 0;
}

}  // namespace opine::launch
