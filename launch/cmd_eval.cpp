// `opine eval`: one strategy on one split, its metrics with confidence intervals, every
// prediction, a report and plots. The head strategy evaluates exactly as training does (same
// cache, same sharding); the prompt strategies split the examples over the ranks.
#include <chrono>
#include <iostream>
#include <optional>

#include "core/error.h"
#include "core/log.h"
#include "core/runtime.h"
#include "data/dataset.h"
#include "data/pipeline.h"
#include "launch/commands.h"
#include "launch/eval_report.h"
#include "launch/predictor.h"
#include "launch/progress.h"
#include "launch/resolve.h"
#include "launch/train.h"
#include "launch/trainable.h"
#include "models/loader.h"
#include "peft/adapter_io.h"
#include "peft/lora_config.h"

namespace opine::launch {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::vector<FlagSpec> kEvalFlags = {
    {"model", "PATH", "base model (model.path)"},
    {"adapter", "DIR",
     "adapter folder a run saved (RUN/adapter or a checkpoint's adapter/); its run's "
     "configuration is the default --config"},
    {"split", "NAME", "split to evaluate (eval.split; default train.eval_split)"},
    {"strategy", "NAME", "head | loglik | generate | vote | auto (eval.strategy)"},
    {"shots", "K", "k-shot examples per prompt (task.shots)"},
    {"output", "DIR", "where metrics, predictions, report and plots go (eval.output_dir)"},
    {"config", "FILE", "YAML configuration (a run's config.yaml, or an experiment)"},
    {"help", "", "show this help"},
};

// Where the outputs go when eval.output_dir is not set.
fs::path default_output(const OpineOptions& o, const std::string& adapter, const std::string& split,
                        const std::string& strategy, const std::string& dataset) {
  if (!o.eval.output_dir.empty()) return o.eval.output_dir;
  std::string name = split + "-" + strategy;
  if (o.task.shots > 0 && strategy != "head")
    name += "-" + std::to_string(o.task.shots) + "shot-" + o.eval.shot_selection;
  if (!adapter.empty()) return fs::path(adapter).parent_path() / "eval" / name;
  return fs::path("eval") / (dataset + "-" + name);
}

// The split's examples (normalised as the cache's), the first eval.limit of them.
data::Examples split_examples(const OpineOptions& o, const std::string& split, std::string* dataset_name,
                              std::vector<std::string>* classes) {
  const data::DatasetSpec spec = data::resolve_spec(o.data);
  const data::Dataset d = data::load_dataset(spec);
  data::Examples examples = data::normalized_split(d, split, o.data.normalize);
  if (o.eval.limit > 0 && int64_t(examples.size()) > o.eval.limit) examples.resize(size_t(o.eval.limit));
  *dataset_name = spec.name;
  *classes = d.classes;
  return examples;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

int run_eval(const std::vector<std::string>& argv) {
  Args args(kEvalFlags, argv);
  if (args.has("help")) {
    std::cout
        << "usage: opine eval --adapter RUN/adapter [--split test] [--strategy S] [key=value ...]\n"
           "       opine eval --config EXPERIMENT.yaml --model M --strategy S [--shots K]\n\n"
           "Evaluates one strategy on one split: prints the metrics as JSON and writes metrics.json,\n"
           "metrics.csv, predictions.csv, report.md and plots into the output folder.\n"
           "Strategies: head (a trained classification/regression head), loglik (the likeliest label\n"
           "answer), generate (greedy answer, parsed), vote (majority of eval.samples sampled answers).\n\n"
        << format_flags(kEvalFlags);
    return 0;
  }
  OPINE_CHECK(args.positionals().empty(), "unexpected argument '", args.positionals().front(), "'");
  const std::unique_ptr<dist::Runtime> runtime = dist::Runtime::start(nullptr, nullptr);
  log::set_rank(runtime->rank(), runtime->world_size());
  const std::string adapter = normalized_adapter_path(args.get("adapter").value_or(""));
  const std::string default_config =
      args.has("config") || adapter.empty() ? "" : adapter_config_file(adapter);

  OpineOptions o = resolve_options(args,
                                   {{"model", "model.path"},
                                    {"split", "eval.split"},
                                    {"strategy", "eval.strategy"},
                                    {"shots", "task.shots"},
                                    {"output", "eval.output_dir"}},
                                   default_config);
  o.model.adapter.clear();
  const std::string split = o.eval.split.empty() ? o.train.eval_split : o.eval.split;
  const bool lead = runtime->rank() == 0;
  dist::Communicator& cpu = runtime->world();

  EvalRecord record;
  record.split = split;
  std::string dataset_name;
  std::vector<std::string> dataset_classes;
  record.examples = split_examples(o, split, &dataset_name, &dataset_classes);
  json info = {{"model", o.model.path},
               {"adapter", adapter.empty() ? json() : json(adapter)},
               {"dataset", dataset_name},
               {"seed", o.seed},
               {"world_size", runtime->world_size()}};

  const std::string strategy = resolve_strategy(o, adapter);
  record.strategy = strategy;
  const int64_t total = int64_t(record.examples.size());
  std::optional<double> loss;
  if (strategy == "head") {
    // Exactly as the run evaluated: its token cache, its sharding, its loss weights. Without an
    // adapter, a fine-tuned checkpoint's own head, as it is.
    if (adapter.empty()) {
      o.peft.method = "none";
      check_checkpoint_head(o.model.path, *checkpoint_head(o.model.path), dataset_classes);
    } else if (o.peft.method == "lora") {
      o.peft.lora = peft::read_lora_config(adapter);
    }
    const at::Device device = runtime->bind_device(o.model.device);
    const std::unique_ptr<models::Tokenizer> tokenizer = resolve_tokenizer(o);
    const data::PreparedData prepared =
        data::prepare_data(o.data, make_encoder(o, *tokenizer),
                           data::CacheCoordination{runtime->rank(), [&cpu] { cpu.barrier(); }});
    OPINE_CHECK(prepared.cache.splits.count(split), "the dataset has no '", split, "' split");
    const data::CachedSplit& cached = prepared.cache.splits.at(split);
    models::ModelFile file = models::open_model_file(o.model.path);
    Trainable model(o, *runtime, device, file, prepared.cache.classes, *tokenizer);
    if (!adapter.empty()) model.load_adapter_values(adapter);
    const at::Tensor weights =
        model.label_kind() == data::LabelKind::kClass && prepared.cache.splits.count("train")
            ? class_weights_for(o.train.class_weights, prepared.cache.splits.at("train"),
                                prepared.cache.classes.size())
            : at::Tensor();
    const auto started = std::chrono::steady_clock::now();
    std::vector<ExamplePrediction> predictions;
    const json report = evaluate(model, cached, prepared.cache.classes, collate_options(o, *tokenizer),
                                 o.train.eval_batch_size, weights, runtime->for_device(device), &predictions);
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    OPINE_CHECK(predictions.size() >= record.examples.size(), "the token cache's ", split, " split has ",
                predictions.size(), " examples, the dataset ", record.examples.size(), " (augmented?)");
    predictions.resize(record.examples.size());
    record.predictions = std::move(predictions);
    record.kind = model.label_kind();
    record.classes = prepared.cache.classes;
    if (o.eval.limit == 0) loss = report.at("loss").get<double>();
  } else {
    Predictor predictor(o, adapter, runtime.get());
    // The label words belong to the dataset's classes in order (an adapter's labels were its run's).
    if (read_adapter_labels(adapter))
      OPINE_CHECK(predictor.classes() == dataset_classes, "adapter ", adapter,
                  " was trained on the classes [", join(predictor.classes()), "], the dataset ", dataset_name,
                  " has [", join(dataset_classes), "]");
    OPINE_CHECK(predictor.classes().size() == dataset_classes.size(), "task.labels has ",
                predictor.classes().size(), " label words, the dataset ", dataset_name, " has ",
                dataset_classes.size(), " classes");
    record.kind = data::LabelKind::kClass;
    record.classes = dataset_classes;
    const auto [begin, end] = rank_block(total, runtime->rank(), runtime->world_size());
    const data::Examples mine(record.examples.begin() + begin, record.examples.begin() + end);
    ProgressBar bar(end - begin, "tweets", lead);
    const std::vector<ExamplePrediction> local = predictor.predict_examples(
        mine, o.eval.batch_size, uint64_t(begin), [&](int64_t done, int64_t) { bar.update(done); });
    bar.finish();
    record.predictions = all_gather_predictions(cpu, local);
    record.seconds = bar.seconds();
  }
  info["strategy_options"] = {
      {"shots", o.task.shots},
      {"shot_selection", o.eval.shot_selection},
      {"length_normalize", o.eval.length_normalize},
      {"samples", o.eval.samples},
      {"temperature", o.eval.temperature},
      {"top_k", o.eval.top_k},
      {"top_p", o.eval.top_p},
      {"max_new_tokens", o.eval.max_new_tokens},
      {"prefix_cache", o.eval.prefix_cache},
      {"batch_size", strategy == "head" ? o.train.eval_batch_size : o.eval.batch_size}};
  if (strategy != "head") {
    info["shots"] = o.task.shots;
    if (o.task.shots > 0) info["shot_selection"] = o.eval.shot_selection;
  }
  record.info = info;
  json summary = summarize(record, o.eval, uint64_t(o.seed));
  if (loss) summary["metrics"]["loss"] = *loss;
  const fs::path out_dir = default_output(o, adapter, split, strategy, dataset_name);
  if (lead) {
    write_eval_outputs(out_dir, record, summary, o.eval);
    json printed = {{"split", split},
                    {"strategy", strategy},
                    {"eval", summary.at("metrics")},
                    {"examples_per_s", summary.at("examples_per_s")},
                    {"output_dir", out_dir.string()}};
    if (summary.contains("intervals")) printed["intervals"] = summary.at("intervals");
    std::cout << printed.dump(2) << std::endl;
  }
  return 0;
}

}  // namespace opine::launch
