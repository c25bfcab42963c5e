// `opine train`: fine-tune an adapter (and head) as the configuration says, on one process or
// under mpirun / srun.
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

}  // namespace opine::launch
