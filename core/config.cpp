#include "core/config.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <tuple>

namespace opine::config {

Rule<std::function<std::string(const std::string&)>> one_of(std::vector<std::string> choices) {
  std::string list;
  for (const std::string& c : choices) list += (list.empty() ? "" : ", ") + c;
  return {"one of: " + list, [choices, list](const std::string& v) -> std::string {
            if (std::find(choices.begin(), choices.end(), v) != choices.end()) return "";
            const std::string guess = detail::closest(v, choices);
            return "'" + v + "' is not one of: " + list + (guess.empty() ? "" : " (did you mean '" + guess + "'?)");
          }};
}

YAML::Node load_yaml_file(const std::string& path) {
  std::error_code ec;
  OPINE_CHECK_KIND(std::filesystem::exists(path, ec), ErrorKind::kIo, "config file not found: ", path);
  OPINE_CHECK_KIND(!std::filesystem::is_directory(path, ec), ErrorKind::kIo, "config file ", path,
                   " is a directory");
  std::ifstream in(path);
  OPINE_CHECK_KIND(in.good(), ErrorKind::kIo, "cannot read config file ", path);
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(in);
  } catch (const YAML::Exception& e) {
    std::ostringstream m;
    m << path;
    if (!e.mark.is_null()) m << ":" << e.mark.line + 1 << ":" << e.mark.column + 1;
    m << ": YAML syntax error: " << e.msg;
    throw Error(ErrorKind::kConfig, m.str());
  }
  OPINE_CHECK_KIND(docs.size() <= 1, ErrorKind::kConfig, path, ": holds ", docs.size(),
                   " YAML documents (---); a configuration is one");
  if (docs.empty() || docs[0].IsNull()) return YAML::Node(YAML::NodeType::Map);  // all defaults
  const YAML::Node& root = docs[0];
  if (!root.IsMap()) {
    const YAML::Mark mark = root.Mark();
    throw Error(ErrorKind::kConfig, ::opine::detail::concat(path, ":", mark.line + 1, ":", mark.column + 1,
                                                            ": the top level must be a map of keys, got ",
                                                            detail::describe_node(root)));
  }
  return root;
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
  OPINE_CHECK_KIND(root.IsMap() || root.IsNull() || !root.IsDefined(), ErrorKind::kConfig, what,
                   ": the configuration is not a map of keys");
  if (!root.IsMap()) root = YAML::Node(YAML::NodeType::Map);
  YAML::Node node;
  node.reset(root);
  std::string walked;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    walked = detail::join(walked, parts[i]);
    YAML::Node child = node[parts[i]];
    if (!child.IsDefined() || child.IsNull()) node[parts[i]] = YAML::Node(YAML::NodeType::Map);
    OPINE_CHECK_KIND(node[parts[i]].IsMap(), ErrorKind::kConfig, what, ": '", walked,
                     "' holds a value, not a map of keys");
    YAML::Node next = node[parts[i]];
    node.reset(next);  // rebinds; plain assignment would overwrite the parent's value
  }
  return node;
}

bool is_null_word(const std::string& s) { return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL"; }

// YAML for collections and quoted text; null words; otherwise the text as it is.
YAML::Node parse_value(const std::string& text, const std::string& what) {
  if (is_null_word(text)) return YAML::Node(YAML::NodeType::Null);
  const char first = text.front();
  if (first != '[' && first != '{' && first != '"' && first != '\'') return YAML::Node(text);
  YAML::Node value;
  try {
    value = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error(ErrorKind::kConfig, ::opine::detail::concat(what, ": the value is not valid YAML: ", e.msg));
  }
  return value;
}

}  // namespace

std::set<std::string> apply_overrides(YAML::Node& root, const std::vector<std::string>& overrides) {
  std::set<std::string> keys;
  for (const std::string& o : overrides) {
    const size_t eq = o.find('=');
    OPINE_CHECK_KIND(eq != std::string::npos && eq > 0, ErrorKind::kConfig, "override '", o,
                     "' is not of the form key.path=value");
    const std::string key = o.substr(0, eq);
    const std::string what = "override '" + o + "'";
    const std::vector<std::string> parts = split_key(key, what);
    YAML::Node value = parse_value(o.substr(eq + 1), what);
    YAML::Node parent = parent_map(root, parts, what);
    parent[parts.back()] = value;
    keys.insert(key);
  }
  return keys;
}

void set_string(YAML::Node& root, const std::string& dotted_key, const std::string& value) {
  const std::string what = "option " + dotted_key;
  const std::vector<std::string> parts = split_key(dotted_key, what);
  YAML::Node parent = parent_map(root, parts, what);
  parent[parts.back()] = value;
}

namespace detail {

std::string format_bound(double v) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, end);
}

std::string join(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

namespace {
// Optimal string alignment distance: a swapped pair of letters ("nmae") counts as one edit.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}
}  // namespace

std::string closest(const std::string& key, const std::vector<std::string>& known) {
  // Only near misses (typos), not different words: short keys allow one edit.
  const size_t limit = key.size() <= 3 ? 1 : key.size() <= 8 ? 2 : 3;
  std::string best;
  size_t best_distance = limit + 1;
  for (const std::string& k : known) {
    const size_t distance = edit_distance(key, k);
    if (distance < best_distance) {
      best_distance = distance;
      best = k;
    }
  }
  return best;
}

bool parse_bool(const std::string& t, bool& out) {
  // YAML 1.2 words, and the YAML 1.1 ones PyYAML still reads as booleans.
  static const char* const kTrue[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
  static const char* const kFalse[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
  for (const char* w : kTrue)
    if (t == w) return out = true, true;
  for (const char* w : kFalse)
    if (t == w) return out = false, true;
  return false;
}

namespace {
// Digits after an optional sign: decimal, or hexadecimal after 0x.
bool parse_magnitude(const std::string& text, bool& negative, unsigned long long& out, bool& overflow) {
  size_t i = 0;
  negative = false;
  overflow = false;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) negative = text[i++] == '-';
  int base = 10;
  if (text.size() - i > 2 && text[i] == '0' && (text[i + 1] == 'x' || text[i + 1] == 'X')) {
    base = 16;
    i += 2;
  }
  if (i == text.size()) return false;
  const char* begin = text.data() + i;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(begin, end, out, base);
  if (ptr != end) return false;
  if (ec == std::errc::result_out_of_range) return overflow = true, false;
  return ec == std::errc();
}
}  // namespace

bool parse_signed(const std::string& text, long long& out, bool& overflow) {
  bool negative = false;
  unsigned long long magnitude = 0;
  if (!parse_magnitude(text, negative, magnitude, overflow)) return false;
  const unsigned long long limit = static_cast<unsigned long long>(std::numeric_limits<long long>::max()) + (negative ? 1 : 0);
  if (magnitude > limit) return overflow = true, false;
  out = negative ? static_cast<long long>(0ULL - magnitude) : static_cast<long long>(magnitude);
  return true;
}

bool parse_unsigned(const std::string& text, unsigned long long& out, bool& overflow) {
  bool negative = false;
  if (!parse_magnitude(text, negative, out, overflow)) return false;
  return !negative || out == 0;
}

bool parse_double(const std::string& text, double& out) {
  std::string t = text;
  bool negative = false;
  if (!t.empty() && (t[0] == '+' || t[0] == '-')) {
    negative = t[0] == '-';
    t.erase(0, 1);
  }
  if (t.empty() || t[0] == '+' || t[0] == '-') return false;
  if (t == ".inf" || t == ".Inf" || t == ".INF") {
    out = negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    return true;
  }
  if (t == ".nan" || t == ".NaN" || t == ".NAN") return out = std::numeric_limits<double>::quiet_NaN(), true;
  double v = 0;
  const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || ptr != t.data() + t.size()) return false;
  out = negative ? -v : v;
  return true;
}

namespace {
std::string yaml_float_text(std::string s, double v) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  if (s.find('.') == std::string::npos) {
    const size_t e = s.find('e');
    if (e == std::string::npos) s += ".0";
    else s.insert(e, ".0");
  }
  return s;
}
}  // namespace

std::string format_double(double v) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return yaml_float_text(std::string(buf, end), v);
}

std::string format_float(float v) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);  // shortest for a float, not a double
  return yaml_float_text(std::string(buf, end), v);
}

bool needs_quotes(const std::string& s) {
  if (is_null_word(s) || s == "y" || s == "Y" || s == "n" || s == "N") return true;
  bool b;
  if (parse_bool(s, b)) return true;
  std::string digits = s;  // PyYAML reads 1_000 as a number
  digits.erase(std::remove(digits.begin(), digits.end(), '_'), digits.end());
  long long i;
  double d;
  bool overflow = false;
  return parse_signed(digits, i, overflow) || overflow || parse_double(digits, d);
}

std::string describe_node(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "null";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a map";
  std::string text = node.Scalar();
  constexpr size_t kShown = 60;
  if (text.size() > kShown) text = text.substr(0, kShown) + "...";
  return "\"" + text + "\"";
}

void Context::report(const YAML::Node& node, const std::string& key, const std::string& what) {
  const YAML::Mark mark = node.IsDefined() ? node.Mark() : YAML::Mark::null_mark();
  // From the command line: the key or something inside it was overridden, or it is a section
  // an override created (no position in the file).
  bool command_line = false;
  for (const std::string& o : overridden) {
    const bool inside = key == o || key.rfind(o + ".", 0) == 0 || key.rfind(o + "[", 0) == 0;
    const bool created = mark.is_null() && (key.empty() || o.rfind(key + ".", 0) == 0);
    command_line = command_line || inside || created;
  }
  std::ostringstream m;
  m << (command_line ? "(command line)" : source);
  if (!command_line && !mark.is_null()) m << ":" << mark.line + 1 << ":" << mark.column + 1;
  m << ": " << (key.empty() ? "(top level)" : key) << ": " << what;
  const bool placed = !command_line && !mark.is_null();
  problems.push_back({command_line, placed ? mark.line : -1, placed ? mark.column : -1, m.str()});
}

void Context::unknown_key(const YAML::Node& key_node, const std::string& prefix, const std::string& name,
                          const std::vector<std::string>& known) {
  const std::string full = join(prefix, name);
  std::string hint;
  if (const std::string guess = closest(name, known); !guess.empty()) {
    hint = "did you mean '" + join(prefix, guess) + "'?";
  } else if (std::find(all_keys.begin(), all_keys.end(), full) != all_keys.end()) {
    hint = "write nested keys as maps, not dotted names";
  } else {
    // A key put in the wrong section: the same name (or a near miss) elsewhere.
    std::vector<std::string> last;
    for (const std::string& k : all_keys) last.push_back(k.substr(k.rfind('.') + 1));
    if (const std::string guess = closest(name, last); !guess.empty()) {
      for (size_t i = 0; i < all_keys.size(); ++i)
        if (last[i] == guess && all_keys[i] != full) {
          hint = "did you mean '" + all_keys[i] + "'?";
          break;
        }
    }
  }
  if (hint.empty() && !known.empty()) {
    hint = "known keys" + std::string(prefix.empty() ? "" : " in " + prefix) + ": ";
    for (size_t i = 0; i < known.size(); ++i) hint += (i ? ", " : "") + known[i];
  }
  report(key_node, full, "unknown key" + (hint.empty() ? "" : " (" + hint + ")"));
}

void throw_problems(Context& ctx) {
  std::stable_sort(ctx.problems.begin(), ctx.problems.end(), [](const auto& a, const auto& b) {
    return std::tie(a.command_line, a.line, a.column) < std::tie(b.command_line, b.line, b.column);
  });
  std::ostringstream m;
  m << ctx.problems.size() << " configuration problem" << (ctx.problems.size() > 1 ? "s" : "") << ":";
  for (const auto& p : ctx.problems) m << "\n  " << p.text;
  throw Error(ErrorKind::kConfig, m.str());
}

}  // namespace detail
}  // namespace opine::config
