#include "launch/args.h"

#include <sstream>

#include "core/error.h"

namespace opine::launch {

Args::Args(const std::vector<FlagSpec>& specs, const std::vector<std::string>& argv) {
  auto find = [&](const std::string& name) -> const FlagSpec* {
    for (const FlagSpec& s : specs)
      if (s.name == name) return &s;
    return nullptr;
  };
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a.rfind("--", 0) == 0 && a.size() > 2) {
      std::string name = a.substr(2), value;
      const size_t eq = name.find('=');
      const bool inline_value = eq != std::string::npos;
      if (inline_value) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      const FlagSpec* spec = find(name);
      OPINE_CHECK(spec, "unknown option --", name, " (see --help)");
      if (spec->value_name.empty()) {
        OPINE_CHECK(!inline_value, "option --", name, " takes no value");
        value = "true";
      } else if (!inline_value) {
        OPINE_CHECK(i + 1 < argv.size(), "option --", name, " needs a value <", spec->value_name, ">");
        value = argv[++i];
      }
      values_[name] = value;
    } else if (a.find('=') != std::string::npos && a[0] != '-') {
      overrides_.push_back(a);
    } else {
      positionals_.push_back(a);
    }
  }
}

std::optional<std::string> Args::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string format_flags(const std::vector<FlagSpec>& specs) {
  std::ostringstream out;
  for (const FlagSpec& s : specs) {
    std::string left = "  --" + s.name + (s.value_name.empty() ? "" : " " + s.value_name);
    out << left;
    out << std::string(left.size() < 28 ? 28 - left.size() : 1, ' ') << s.help << "\n";
  }
  return out.str();
}

}  // namespace opine::launch
