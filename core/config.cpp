#include "core/config.h"

#include <algorithm>
#include <filesystem>

namespace opine::config {

YAML::Node load_yaml_file(const std::string& path) {
  OPINE_CHECK_KIND(std::filesystem::is_regular_file(path), ErrorKind::kIo, "config file not found: ", path);
  try {
    YAML::Node root = YAML::LoadFile(path);
    if (root.IsNull()) return YAML::Node(YAML::NodeType::Map);  // an empty file: all defaults
    OPINE_CHECK_KIND(root.IsMap(), ErrorKind::kConfig, path, ": the top level must be a map of keys");
    return root;
  } catch (const YAML::Exception& e) {
    throw Error(ErrorKind::kConfig, ::opine::detail::concat(path, ":", e.mark.line + 1, ":", e.mark.column + 1,
                                                   ": YAML syntax error: ", e.msg));
  }
}

namespace {

std::vector<std::string> split_key(const std::string& key, const std::string& what) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    OPINE_CHECK_KIND(!parts.back().empty(), ErrorKind::kConfig, what, ": empty key segment in '", key, "'");
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

// The map that holds the last segment of `parts`, created where missing.
YAML::Node parent_map(YAML::Node& root, const std::vector<std::string>& parts, const std::string& what) {
  YAML::Node node;
  node.reset(root);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node child = node[parts[i]];
    if (!child.IsDefined() || child.IsNull()) node[parts[i]] = YAML::Node(YAML::NodeType::Map);
    OPINE_CHECK_KIND(node[parts[i]].IsMap(), ErrorKind::kConfig, what, ": '", parts[i],
                     "' holds a value, not a map of keys");
    YAML::Node next = node[parts[i]];
    node.reset(next);  // rebinds; plain assignment would overwrite the parent's value
  }
  return node;
}

}  // namespace

std::set<std::string> apply_overrides(YAML::Node& root, const std::vector<std::string>& overrides) {
  std::set<std::string> keys;
  for (const std::string& o : overrides) {
    const size_t eq = o.find('=');
    OPINE_CHECK_KIND(eq != std::string::npos && eq > 0, ErrorKind::kConfig, "override '", o,
                     "' is not of the form key.path=value");
    const std::string key = o.substr(0, eq), text = o.substr(eq + 1);
    const std::string what = "override '" + o + "'";
    const std::vector<std::string> parts = split_key(key, what);
    YAML::Node value;
    try {
      value = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      throw Error(ErrorKind::kConfig, ::opine::detail::concat(what, ": value is not valid YAML: ", e.msg));
    }
    YAML::Node parent = parent_map(root, parts, what);
    parent[parts.back()] = value;
    keys.insert(key);
  }
  return keys;
}

void set_string(YAML::Node& root, const std::string& dotted_key, const std::string& value) {
  const std::vector<std::string> parts = split_key(dotted_key, "option");
  YAML::Node parent = parent_map(root, parts, "option " + dotted_key);
  parent[parts.back()] = value;
}

namespace detail {

std::string join(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

std::string closest(const std::string& key, const std::vector<std::string>& known) {
  // Levenshtein distance; suggest only near misses (typos, not different words).
  std::string best;
  size_t best_distance = std::max<size_t>(2, key.size() / 3) + 1;
  for (const std::string& k : known) {
    std::vector<size_t> row(k.size() + 1);
    for (size_t j = 0; j <= k.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= key.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= k.size(); ++j) {
        const size_t up = row[j];
        row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (key[i - 1] == k[j - 1] ? 0 : 1)});
        diagonal = up;
      }
    }
    if (row[k.size()] < best_distance) {
      best_distance = row[k.size()];
      best = k;
    }
  }
  return best;
}

std::string format_double(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  std::string s(buf, end);
  // Keep it a float when read back ("2" would read as an integer, which is fine, but "2.0" is clearer).
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

void Context::report(const YAML::Node& node, const std::string& key, const std::string& what) {
  bool from_command_line = false;
  for (const std::string& o : overridden)
    from_command_line = from_command_line || key == o || key.rfind(o + ".", 0) == 0 || key.rfind(o + "[", 0) == 0;
  std::ostringstream m;
  if (from_command_line) {
    m << "(command line) " << key << ": " << what;
  } else {
    const YAML::Mark mark = node.Mark();
    m << source;
    if (!mark.is_null()) m << ":" << mark.line + 1 << ":" << mark.column + 1;
    m << ": " << key << ": " << what;
  }
  problems.push_back(m.str());
}

void throw_problems(const Context& ctx) {
  std::ostringstream m;
  m << ctx.problems.size() << " configuration problem" << (ctx.problems.size() > 1 ? "s" : "") << ":";
  for (const std::string& p : ctx.problems) m << "\n  " << p;
  throw Error(ErrorKind::kConfig, m.str());
}

}  // namespace detail
}  // namespace opine::config
