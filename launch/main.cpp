// The `opine` command line: subcommands, --help, --version, and the one place where an error
// becomes an exit status.
#include <iostream>

#include "core/error.h"
#include "core/runtime.h"
#include "core/version.h"
#include "launch/commands.h"

namespace opine::launch {

const std::vector<Command>& commands() {
  static const std::vector<Command> list = {
      {"inspect", "show a model's architecture, tensor types and memory", run_inspect},
      {"score", "log-probability of each token given its prefix", run_score},
      {"generate", "continue a prompt with a model, or answer it as a chat", run_generate},
      {"tokenize", "text to token ids", run_tokenize},
      {"config", "print the resolved configuration (file + overrides)", run_config},
      {"merge", "merge a LoRA adapter into a model and write a Hugging Face folder", run_merge},
      {"data", "build or inspect the token cache of a dataset", run_data},
      {"train", "fine-tune an adapter or head (one process, or under mpirun / srun)", run_train},
      {"eval", "evaluate a strategy (trained head, log-likelihood, generation, vote) on a split", run_eval},
      {"predict", "label every row of a CSV / JSONL file (one process, or under mpirun / srun)", run_predict},
      {"sweep", "hyperparameter search: trials from an Optuna service, pruned and told", run_sweep},
  };
  return list;
}

namespace {

void print_usage() {
  std::cout << "opine " << OPINE_VERSION
            << ": fine-tune and run LLMs for opinion in short text\n\n"
               "usage: opine COMMAND [options] [key=value ...]\n\ncommands:\n";
  for (const Command& c : commands()) {
    std::string name = c.name;
    std::cout << "  " << name << std::string(12 - name.size(), ' ') << c.summary << "\n";
  }
  std::cout << "\n`opine COMMAND --help` describes a command's options. `key=value` arguments\n"
               "override configuration keys, e.g. model.dtype=bf16.\n";
}

}  // namespace
}  // namespace opine::launch

int main(int argc, char** argv) {
  using namespace opine::launch;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_usage();
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "--version") {
    std::cout << "opine " << OPINE_VERSION << "\n";
    return 0;
  }
  for (const Command& c : commands()) {
    if (args[0] != c.name) continue;
    try {
      return c.run(std::vector<std::string>(args.begin() + 1, args.end()));
    } catch (const opine::Error& e) {
      std::cerr << "opine " << c.name << ": " << opine::error_kind_name(e.kind()) << ": " << e.what() << "\n";
      const int code = e.kind() == opine::ErrorKind::kInternal ? 70 : 1;
      opine::dist::abort_job_if_failing(code);  // under mpirun: the other ranks must not wait for this one
      return code;
    } catch (const std::exception& e) {
      std::cerr << "opine " << c.name << ": unexpected error: " << e.what() << "\n";
      opine::dist::abort_job_if_failing(70);
      return 70;
    }
  }
  std::cerr << "opine: unknown command '" << args[0] << "' (see opine --help)\n";
  return 2;
}
