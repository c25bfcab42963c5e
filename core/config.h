// Typed configuration: plain option structs with defaults, filled from YAML.
//
// An options struct names its fields in a `visit` member template; a fourth argument, when
// given, checks the value:
//
//   struct ModelOptions {
//     std::string path;
//     std::string dtype = "f32";
//     int num_labels = 2;
//     template <class V> void visit(V& v) {
//       v("path", path, "model folder or file");
//       v("dtype", dtype, "compute dtype", config::one_of({"f32", "bf16", "f16"}));
//       v("num_labels", num_labels, "classes of the head", config::at_least(1));
//     }
//   };
//   ModelOptions o = config::load<ModelOptions>("run.yaml", {"num_labels=3"});
//
// from_yaml() reads a tree into such a struct and reports every problem at once (unknown and
// duplicate keys with a suggestion, wrong types, failed checks), each with the file, line,
// column and dotted key; to_yaml() prints the resolved values, defaults included, and reads
// back to the same struct; describe() lists every key for --help.
//
// Field types: bool, every integer type, float, double, std::string, std::filesystem::path,
// std::vector<T>, std::optional<T>, std::map<std::string, T> and nested option structs.
// A null (`key:` or `key: null`) resets an optional, and empties a string, list or map; an
// empty section keeps its defaults. Lists and maps given in YAML replace the default whole.
//
// A check is any callable taking the field's value and returning "" when it is fine, or what is
// wrong; one on a section sees the whole section (checks across its fields). One that does not take the field's type applies to what is inside it: the value of an
// optional (when set), each element of a list, each value of a map.
//
// yaml-cpp stays in this header: the reading templates walk YAML::Node, and callers build trees
// with YAML::Load.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/error.h"

namespace opine::config {

// ---- checks, passed as a field's fourth argument -----------------------------------------------

// A check with the words describe() shows for it ("one of: a, b").
template <class F>
struct Rule {
  std::string description;
  F test;
  template <class T>
    requires std::is_invocable_r_v<std::string, const F&, const T&>
  std::string operator()(const T& value) const {
    return test(value);
  }
};
template <class F>
Rule<F> rule(std::string description, F test) {
  return {std::move(description), std::move(test)};
}

// The value is one of `choices` (strings; case-sensitive).
Rule<std::function<std::string(const std::string&)>> one_of(std::vector<std::string> choices);

namespace detail {
std::string format_bound(double v);
template <class V>
std::string bound_message(const std::string& what, const V& v) {
  std::ostringstream m;
  m << what << ", got " << +v;  // `+` prints an int8_t as a number
  return m.str();
}
}  // namespace detail

inline auto at_least(double min) {
  return rule("at least " + detail::format_bound(min),
              [min]<class V>(const V& v) -> std::string requires std::is_arithmetic_v<V> {
                if (static_cast<double>(v) >= min) return "";
                return detail::bound_message("must be at least " + detail::format_bound(min), v);
              });
}
inline auto at_most(double max) {
  return rule("at most " + detail::format_bound(max),
              [max]<class V>(const V& v) -> std::string requires std::is_arithmetic_v<V> {
                if (static_cast<double>(v) <= max) return "";
                return detail::bound_message("must be at most " + detail::format_bound(max), v);
              });
}
// lo <= value <= hi.
inline auto in_range(double lo, double hi) {
  const std::string range = "in [" + detail::format_bound(lo) + ", " + detail::format_bound(hi) + "]";
  return rule(range, [lo, hi, range]<class V>(const V& v) -> std::string requires std::is_arithmetic_v<V> {
    const double d = static_cast<double>(v);
    if (d >= lo && d <= hi) return "";
    return detail::bound_message("must be " + range, v);
  });
}

// ---- YAML trees --------------------------------------------------------------------------------

// Parses a YAML file holding one map (an empty file is an empty map). A syntax error is an
// opine::Error (kConfig) naming the file, line and column; a missing file is kIo.
YAML::Node load_yaml_file(const std::string& path);

// Applies `a.b.c=value` overrides in order, creating missing maps. The value is YAML when it
// starts with '[', '{' or a quote ([1, 2], {k: v}, 'text'); null when it is empty, ~ or null;
// otherwise the text itself, so paths with ':' or '#' need no quoting. Returns the dotted keys
// set, so that problems with them are reported as coming from the command line. A malformed
// override is an opine::Error (kConfig) naming it.
std::set<std::string> apply_overrides(YAML::Node& root, const std::vector<std::string>& overrides);

// Sets one dotted key to a string scalar, creating missing maps (a flag bound to a key).
void set_string(YAML::Node& root, const std::string& dotted_key, const std::string& value);

// ---- the machinery behind from_yaml / to_yaml / describe ---------------------------------------
namespace detail {

template <class T> struct is_vector : std::false_type {};
template <class T, class A> struct is_vector<std::vector<T, A>> : std::true_type {};
template <class T> struct is_optional : std::false_type {};
template <class T> struct is_optional<std::optional<T>> : std::true_type {};
template <class T> struct is_map : std::false_type {};
template <class T, class C, class A> struct is_map<std::map<std::string, T, C, A>> : std::true_type {};

// Any visitor will do for the test: visit is a template.
struct Probe {
  template <class... A> void operator()(A&&...) {}
};
template <class T>
concept Options = std::is_class_v<T> && requires(T& t, Probe& p) { t.visit(p); };

// Containers of sections (conjunctions in a concept stop at the first false part).
template <class T>
concept ScalarOptional = is_optional<T>::value && (std::is_arithmetic_v<typename T::value_type> ||
                                                   std::is_same_v<typename T::value_type, std::string> ||
                                                   std::is_same_v<typename T::value_type, std::filesystem::path>);
template <class T>
concept OptionalSection = is_optional<T>::value && Options<typename T::value_type>;
template <class T>
concept ListOfSections = is_vector<T>::value && Options<typename T::value_type>;
template <class T>
concept MapOfSections = is_map<T>::value && Options<typename T::mapped_type>;

template <class T>
constexpr bool is_text = std::is_same_v<T, std::string> || std::is_same_v<T, std::filesystem::path>;
template <class T>
constexpr bool is_scalar = std::is_arithmetic_v<T> || is_text<T>;

// The default fourth argument.
struct NoCheck {
  template <class T> std::string operator()(const T&) const { return ""; }
};

std::string join(const std::string& prefix, const std::string& key);
// The nearest of `known` by edit distance, or "" when none is near enough to be a typo.
std::string closest(const std::string& key, const std::vector<std::string>& known);

bool parse_bool(const std::string& text, bool& out);
bool parse_signed(const std::string& text, long long& out, bool& overflow);
bool parse_unsigned(const std::string& text, unsigned long long& out, bool& overflow);
bool parse_double(const std::string& text, double& out);
// Shortest text that reads back to the same value, always with a '.' or exponent so that it
// reads as a float in PyYAML too (1.0e-04, not 1e-04); .inf / .nan as YAML spells them.
std::string format_double(double v);
std::string format_float(float v);
// True when a plain scalar would read back as something other than this string.
bool needs_quotes(const std::string& s);
// How a node looks in a message: "abc" (quoted), a list, a map, null.
std::string describe_node(const YAML::Node& node);

// The type as a message names it: "an integer", "a list".
template <class T>
std::string expected_name() {
  if constexpr (std::is_same_v<T, bool>) return "true or false";
  else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) return "a non-negative integer";
  else if constexpr (std::is_integral_v<T>) return "an integer";
  else if constexpr (std::is_floating_point_v<T>) return "a number";
  else if constexpr (std::is_same_v<T, std::string>) return "a string";
  else if constexpr (std::is_same_v<T, std::filesystem::path>) return "a path";
  else if constexpr (is_vector<T>::value) return "a list";
  else if constexpr (is_optional<T>::value) return expected_name<typename T::value_type>() + " or null";
  else return "a map";
}

// The type as describe() shows it: int, float, str, list[int], map[str, float], int or null.
template <class T>
std::string type_name() {
  if constexpr (std::is_same_v<T, bool>) return "bool";
  else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) return "uint";
  else if constexpr (std::is_integral_v<T>) return "int";
  else if constexpr (std::is_floating_point_v<T>) return "float";
  else if constexpr (std::is_same_v<T, std::string>) return "str";
  else if constexpr (std::is_same_v<T, std::filesystem::path>) return "path";
  else if constexpr (is_vector<T>::value) return "list[" + type_name<typename T::value_type>() + "]";
  else if constexpr (is_optional<T>::value) return type_name<typename T::value_type>() + " or null";
  else if constexpr (is_map<T>::value) return "map[str, " + type_name<typename T::mapped_type>() + "]";
  else return "section";
}

// The problems found so far, and what is needed to say where each one is.
struct Context {
  struct Problem {
    bool command_line;
    int line, column;  // -1 when unknown
    std::string text;
  };
  std::string source;                 // file name or "(command line)"
  std::set<std::string> overridden;   // dotted keys set on the command line
  std::vector<std::string> all_keys;  // every dotted key of the options, for suggestions
  std::vector<Problem> problems;

  void report(const YAML::Node& node, const std::string& key, const std::string& what);
  void unknown_key(const YAML::Node& key_node, const std::string& prefix, const std::string& name,
                   const std::vector<std::string>& known);
  size_t count() const { return problems.size(); }
};

// Sorted by place (file problems by line, then command-line ones), one per line.
[[noreturn]] void throw_problems(Context& ctx);

template <class T>
void read(const YAML::Node& node, T& value, const std::string& key, Context& ctx);

// Runs `check` on `value`, or on what is inside it when the check does not take it whole.
template <class C, class T>
void run_check(const C& check, const T& value, const YAML::Node& node, const std::string& key, Context& ctx) {
  if constexpr (std::is_invocable_r_v<std::string, const C&, const T&>) {
    const std::string what = check(value);
    if (!what.empty()) ctx.report(node, key, what);
  } else if constexpr (is_optional<T>::value) {
    if (value) run_check(check, *value, node, key, ctx);
  } else if constexpr (is_vector<T>::value) {
    for (size_t i = 0; i < value.size(); ++i) {
      const YAML::Node item = node.IsSequence() && i < node.size() ? node[i] : node;
      run_check(check, value[i], item, key + "[" + std::to_string(i) + "]", ctx);
    }
  } else if constexpr (is_map<T>::value) {
    for (const auto& [k, v] : value) {
      const YAML::Node item = node.IsMap() ? node[k] : node;
      run_check(check, v, item.IsDefined() ? item : node, join(key, k), ctx);
    }
  } else {
    static_assert(sizeof(T) == 0, "this check does not take the field's type");
  }
}

// Fills the fields of one options struct from a map node.
struct Reader {
  const YAML::Node& node;
  const std::string& prefix;
  Context& ctx;
  std::vector<std::string> known;

  template <class T, class C = NoCheck>
  void operator()(const char* key, T& value, const char* /*help*/, const C& check = {}) {
    known.push_back(key);
    const YAML::Node child = node[key];
    if (!child.IsDefined()) return;
    const std::string name = join(prefix, key);
    const size_t before = ctx.count();
    read(child, value, name, ctx);
    if (ctx.count() == before) run_check(check, value, child, name, ctx);
  }
};

template <class T>
bool read_scalar(const std::string& text, T& value, bool& overflow) {
  overflow = false;
  if constexpr (std::is_same_v<T, bool>) {
    return parse_bool(text, value);
  } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    long long v = 0;
    if (!parse_signed(text, v, overflow)) return false;
    overflow = v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max();
    if (overflow) return false;
    value = static_cast<T>(v);
    return true;
  } else if constexpr (std::is_integral_v<T>) {
    unsigned long long v = 0;
    if (!parse_unsigned(text, v, overflow)) return false;
    overflow = v > std::numeric_limits<T>::max();
    if (overflow) return false;
    value = static_cast<T>(v);
    return true;
  } else {
    static_assert(std::is_floating_point_v<T>);
    double v = 0;
    if (!parse_double(text, v)) return false;
    overflow = std::isfinite(v) && std::abs(v) > std::numeric_limits<T>::max();
    if (overflow) return false;
    value = static_cast<T>(v);
    return true;
  }
}

// Reads `node` into `value`; problems go to ctx under `key`, and the value keeps its default.
template <class T>
void read(const YAML::Node& node, T& value, const std::string& key, Context& ctx) {
  auto wrong = [&] { ctx.report(node, key, "expected " + expected_name<T>() + ", got " + describe_node(node)); };
  if constexpr (is_optional<T>::value) {
    if (node.IsNull()) return value.reset();
    typename T::value_type inner = value.value_or(typename T::value_type{});
    const size_t before = ctx.count();
    read(node, inner, key, ctx);
    if (ctx.count() == before) value = std::move(inner);
  } else if constexpr (is_text<T>) {
    if (node.IsNull()) return value.clear();
    if (!node.IsScalar()) return wrong();
    value = node.Scalar();
  } else if constexpr (std::is_arithmetic_v<T>) {
    bool overflow = false;
    if (!node.IsScalar()) return wrong();
    if (read_scalar(node.Scalar(), value, overflow)) return;
    if (!overflow) return wrong();
    std::ostringstream m;
    m << node.Scalar() << " is out of range (" << +std::numeric_limits<T>::lowest() << " to "
      << +std::numeric_limits<T>::max() << ")";
    ctx.report(node, key, m.str());
  } else if constexpr (is_vector<T>::value) {
    if (node.IsNull()) return value.clear();
    if (!node.IsSequence()) return wrong();
    T items;
    const size_t before = ctx.count();
    for (size_t i = 0; i < node.size(); ++i) {
      typename T::value_type item{};  // a local, not items[i]: std::vector<bool> has no references
      read(node[i], item, key + "[" + std::to_string(i) + "]", ctx);
      items.push_back(std::move(item));
    }
    if (ctx.count() == before) value = std::move(items);
  } else if constexpr (is_map<T>::value) {
    if (node.IsNull()) return value.clear();
    if (!node.IsMap()) return wrong();
    T items;
    const size_t before = ctx.count();
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) {
        ctx.report(kv.first, key, "a key must be a plain name, got " + describe_node(kv.first));
        continue;
      }
      const std::string name = kv.first.Scalar();
      typename T::mapped_type item{};
      read(kv.second, item, join(key, name), ctx);
      if (!items.emplace(name, std::move(item)).second) ctx.report(kv.first, join(key, name), "duplicate key");
    }
    if (ctx.count() == before) value = std::move(items);
  } else if constexpr (Options<T>) {
    if (node.IsNull()) return;  // an empty section keeps its defaults
    if (!node.IsMap()) return wrong();
    Reader reader{node, key, ctx, {}};
    value.visit(reader);
    std::set<std::string> seen;
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) {
        ctx.report(kv.first, key, "a key must be a plain name, got " + describe_node(kv.first));
        continue;
      }
      const std::string name = kv.first.Scalar();
      bool known = false;
      for (const std::string& k : reader.known) known = known || k == name;
      if (!known) ctx.unknown_key(kv.first, key, name, reader.known);
      else if (!seen.insert(name).second) ctx.report(kv.first, join(key, name), "duplicate key");
    }
  } else {
    static_assert(sizeof(T) == 0, "unsupported option type: use bool, integers, float, double, string, "
                                  "path, vector, optional, map<string, T> or a struct with visit()");
  }
}

// Collects the dotted keys of nested option structs (for suggestions across levels).
struct KeyCollector {
  std::string prefix;
  std::vector<std::string>& keys;
  template <class T, class C = NoCheck>
  void operator()(const char* key, T& value, const char*, const C& = {}) {
    const std::string name = join(prefix, key);
    keys.push_back(name);
    if constexpr (Options<T>) {
      KeyCollector inner{name, keys};
      value.visit(inner);
    }
  }
};

struct Writer {
  YAML::Emitter& out;

  template <class T, class C = NoCheck>
  void operator()(const char* key, T& value, const char*, const C& = {}) {
    out << YAML::Key << key << YAML::Value;
    write(value);
  }
  void write_text(const std::string& s) {
    if (needs_quotes(s)) out << YAML::DoubleQuoted;
    out << s;
  }
  template <class T>
  void write(T& value) {
    if constexpr (is_optional<T>::value) {
      if (value) write(*value);
      else out << YAML::Null;
    } else if constexpr (std::is_same_v<T, bool>) {
      out << (value ? "true" : "false");
    } else if constexpr (std::is_same_v<T, float>) {
      out << format_float(value);
    } else if constexpr (std::is_floating_point_v<T>) {
      out << format_double(static_cast<double>(value));
    } else if constexpr (std::is_arithmetic_v<T>) {
      out << std::to_string(value);
    } else if constexpr (std::is_same_v<T, std::string>) {
      write_text(value);
    } else if constexpr (std::is_same_v<T, std::filesystem::path>) {
      write_text(value.string());
    } else if constexpr (is_vector<T>::value) {
      // Scalars on one line ([1, 2]); sections and nested lists one item per line.
      using E = typename T::value_type;
      constexpr bool flat = is_scalar<E> || ScalarOptional<E>;
      if (flat || value.empty()) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (auto&& item : value) {
        if constexpr (std::is_same_v<E, bool>) write_bool(item);  // vector<bool> yields proxies
        else write(item);
      }
      out << YAML::EndSeq;
    } else if constexpr (is_map<T>::value) {
      if (value.empty()) out << YAML::Flow;
      out << YAML::BeginMap;
      for (auto& [k, v] : value) {
        out << YAML::Key;
        write_text(k);
        out << YAML::Value;
        write(v);
      }
      out << YAML::EndMap;
    } else {
      static_assert(Options<T>, "unsupported option type");
      out << YAML::BeginMap;
      value.visit(*this);
      out << YAML::EndMap;
    }
  }
  void write_bool(bool b) { out << (b ? "true" : "false"); }
};

struct Describer {
  std::string prefix;
  std::ostringstream& out;

  template <class C>
  static std::string check_words(const C& check) {
    if constexpr (requires { check.description; }) return check.description;
    else return "";
  }
  template <class T>
  static std::string default_text(T& value) {
    YAML::Emitter e;
    e << YAML::Flow;
    Writer{e}.write(value);
    const std::string s = e.c_str();
    return s.empty() ? "\"\"" : s;
  }
  template <class T>
  void section(const std::string& name, const std::string& help, T defaults = T{}) {
    out << name << ": " << help << "\n";
    Describer inner{name, out};
    defaults.visit(inner);
  }
  template <class T, class C = NoCheck>
  void operator()(const char* key, T& value, const char* help, const C& check = {}) {
    const std::string name = join(prefix, key);
    if constexpr (Options<T>) {
      out << name << ": " << help << "\n";
      Describer inner{name, out};
      value.visit(inner);
    } else if constexpr (OptionalSection<T>) {
      section<typename T::value_type>(name, std::string(help) + " (optional section)",
                                      value.value_or(typename T::value_type{}));
    } else if constexpr (ListOfSections<T>) {
      section<typename T::value_type>(name + "[]", std::string(help) + " (list of sections)");
    } else if constexpr (MapOfSections<T>) {
      section<typename T::mapped_type>(name + ".<name>", std::string(help) + " (named sections)");
    } else {
      const std::string words = check_words(check);
      out << "  " << name << " (" << type_name<T>() << ", default " << default_text(value)
          << (words.empty() ? "" : "; " + words) << "): " << help << "\n";
    }
  }
};

}  // namespace detail

// ---- the typed interface -----------------------------------------------------------------------

// Fills a T (from its defaults) with `root`; `source` names the file in messages, `overridden`
// the dotted keys that came from the command line (apply_overrides returns them). Throws one
// opine::Error (kConfig) listing every problem, one per line.
template <class T>
T from_yaml(const YAML::Node& root, const std::string& source, const std::set<std::string>& overridden = {}) {
  static_assert(detail::Options<T>, "from_yaml needs a struct with a visit() member template");
  T value{};
  detail::Context ctx{source, overridden, {}, {}};
  {
    T probe{};
    detail::KeyCollector collect{"", ctx.all_keys};
    probe.visit(collect);
  }
  detail::read(root, value, "", ctx);
  if (ctx.count() > 0) detail::throw_problems(ctx);
  return value;
}

// Defaults, then `file` (when given), then `overrides` (a.b=value), checked all at once.
template <class T>
T load(const std::optional<std::string>& file, const std::vector<std::string>& overrides) {
  YAML::Node root = file ? load_yaml_file(*file) : YAML::Node(YAML::NodeType::Map);
  const std::set<std::string> overridden = apply_overrides(root, overrides);
  return from_yaml<T>(root, file.value_or("(command line)"), overridden);
}

// Every field as YAML, defaults included; from_yaml reads it back to an equal struct.
template <class T>
std::string to_yaml(const T& value) {
  T copy = value;  // visit() is not const
  YAML::Emitter out;
  detail::Writer{out}.write(copy);
  return out.c_str();
}

// For --help: each section as `name: help`, each key as
// `  name (type, default value[; check]): help`.
template <class T>
std::string describe(const T& defaults = T{}) {
  static_assert(detail::Options<T>, "describe needs a struct with a visit() member template");
  T copy = defaults;
  std::ostringstream out;
  detail::Describer d{"", out};
  copy.visit(d);
  return out.str();
}

}  // namespace opine::config
