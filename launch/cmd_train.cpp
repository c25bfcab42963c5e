// `opine train`: fine-tune an adapter (and head) as the configuration says, on one process or
// under mpirun / srun. `opine eval`: the metrics of a trained adapter on a split.
#include <iostream>

#include "core/error.h"
#include "core/log.h"
#include "core/runtime.h"
#include "data/pipeline.h"
#include "launch/commands.h"
#include "launch/resolve.h"
#include "launch/train.h"
#include "models/loader.h"
#include "peft/adapter_io.h"
#include "peft/lora_config.h"

namespace opine::launch {

namespace {

const std::vector<FlagSpec> kTrainFlags = {
    {"model", "PATH", "model to fine-tune (model.path)"},
    {"run-dir", "DIR", "the run's folder (train.run_dir)"},
    {"resume", "", "continue the run in train.run_dir from its latest complete checkpoint"},
    {"config", "FILE", "YAML configuration (model:, data:, task:, peft:, train:)"},
    {"help", "", "show this help"},
};

const std::vector<FlagSpec> kEvalFlags = {
    {"model", "PATH", "base model (model.path)"},
    {"adapter", "DIR", "adapter folder a run saved (RUN/adapter or a checkpoint's adapter/)"},
    {"split", "NAME", "split to evaluate (train.eval_split; default validation)"},
    {"config", "FILE", "the run's configuration (RUN/config.yaml)"},
    {"help", "", "show this help"},
};

}  // namespace

int run_train(const std::vector<std::string>& argv) {
  Args args(kTrainFlags, argv);
  if (args.has("help")) {
    std::cout << "usage: opine train --config FILE [--resume] [key=value ...]\n"
                 "       mpirun -np N opine train --config FILE ...   (srun --mpi=pmix on SLURM)\n\n"
                 "Fine-tunes LoRA / prompt tuning / a head on the configured dataset. Writes the run folder\n"
                 "(config.yaml, manifest.json, metrics.jsonl, TensorBoard events, checkpoints, adapter/)\n"
                 "and prints the last evaluation as JSON.\n\n"
              << format_flags(kTrainFlags);
    return 0;
  }
  OPINE_CHECK(args.positionals().empty(), "unexpected argument '", args.positionals().front(), "'");
  const std::unique_ptr<dist::Runtime> runtime = dist::Runtime::start(nullptr, nullptr);
  log::set_rank(runtime->rank(), runtime->world_size());
  const OpineOptions o = resolve_options(args, {{"model", "model.path"}, {"run-dir", "train.run_dir"}});
  const TrainResult result = train(o, config::to_yaml(o), args.has("resume"), *runtime);
  if (runtime->rank() == 0) {
    nlohmann::json out = {{"run_dir", result.run_dir.string()},
                          {"adapter", result.adapter_dir.string()},
                          {"steps", result.steps},
                          {"eval", result.metrics}};
    std::cout << out.dump(2) << std::endl;
  }
  return 0;
}

int run_eval(const std::vector<std::string>& argv) {
  Args args(kEvalFlags, argv);
  if (args.has("help")) {
    std::cout << "usage: opine eval --config RUN/config.yaml --adapter RUN/adapter [--split test]\n\n"
                 "Loads the base model and a trained adapter (and head) as the run's configuration\n"
                 "describes, and prints the metrics on a split as JSON.\n\n"
              << format_flags(kEvalFlags);
    return 0;
  }
  const std::unique_ptr<dist::Runtime> runtime = dist::Runtime::start(nullptr, nullptr);
  log::set_rank(runtime->rank(), runtime->world_size());
  OpineOptions o = resolve_options(args, {{"model", "model.path"}, {"split", "train.eval_split"}});
  const std::optional<std::string> adapter = args.get("adapter");
  OPINE_CHECK(adapter, "opine eval needs --adapter DIR");
  if (o.peft.method == "lora") o.peft.lora = peft::read_lora_config(*adapter);
  o.model.adapter.clear();
  const at::Device device = runtime->bind_device(o.model.device);
  const std::unique_ptr<models::Tokenizer> tokenizer = resolve_tokenizer(o);
  const data::Encoder encoder = make_encoder(o, *tokenizer);
  dist::Communicator& cpu = runtime->world();
  const data::PreparedData prepared = data::prepare_data(
      o.data, encoder, data::CacheCoordination{runtime->rank(), [&cpu] { cpu.barrier(); }});
  const std::string split = o.train.eval_split;
  OPINE_CHECK(prepared.cache.splits.count(split), "the dataset has no '", split, "' split");
  models::ModelFile file = models::open_model_file(o.model.path);
  Trainable model(o, *runtime, device, file, prepared.cache.classes, *tokenizer);
  model.load_adapter_values(*adapter);
  // The loss weighs classes as the run's did, so it equals the run's evaluations.
  const at::Tensor weights =
      model.label_kind() == data::LabelKind::kClass && prepared.cache.splits.count("train")
          ? class_weights_for(o.train.class_weights, prepared.cache.splits.at("train"),
                              prepared.cache.classes.size())
          : at::Tensor();
  const nlohmann::json report =
      evaluate(model, prepared.cache.splits.at(split), prepared.cache.classes, collate_options(o, *tokenizer),
               o.train.eval_batch_size, weights, runtime->for_device(device));
  if (runtime->rank() == 0)
    std::cout << nlohmann::json{{"split", split}, {"eval", report}}.dump(2) << std::endl;
  return 0;
}

}  // namespace opine::launch
