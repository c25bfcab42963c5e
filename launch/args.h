// Command-line arguments of one subcommand: `--flag value`, `--flag=value`, boolean `--flag`,
// positionals, and `a.b=c` config overrides. Every flag must be declared; an unknown one is an
// error that names it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace opine::launch {

struct FlagSpec {
  std::string name;  // without the leading dashes
  std::string value_name;  // empty for a boolean flag
  std::string help;
};

class Args {
 public:
  Args(const std::vector<FlagSpec>& specs, const std::vector<std::string>& argv);
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::optional<std::string> get(const std::string& name) const;
  const std::vector<std::string>& positionals() const { return positionals_; }
  const std::vector<std::string>& overrides() const { return overrides_; }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positionals_;
  std::vector<std::string> overrides_;
};

std::string format_flags(const std::vector<FlagSpec>& specs);

}  // namespace opine::launch
