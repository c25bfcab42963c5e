// The `opine` subcommands. Each takes its arguments after the subcommand name and returns the
// process exit status; errors propagate as opine::Error to main().
#pragma once

#include <string>
#include <vector>

namespace opine::launch {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>& args);
};

const std::vector<Command>& commands();

int run_inspect(const std::vector<std::string>& args);
int run_score(const std::vector<std::string>& args);
int run_config(const std::vector<std::string>& args);
int run_generate(const std::vector<std::string>& args);
int run_tokenize(const std::vector<std::string>& args);
int run_merge(const std::vector<std::string>& args);
int run_data(const std::vector<std::string>& args);
int run_train(const std::vector<std::string>& args);
int run_eval(const std::vector<std::string>& args);
int run_predict(const std::vector<std::string>& args);
int run_sweep(const std::vector<std::string>& args);

}  // namespace opine::launch
