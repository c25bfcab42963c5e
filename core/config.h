// Typed configuration: plain option structs with defaults, filled from YAML.
//
// An options struct names its fields in a `visit` member template:
//
//   struct ModelOptions {
//     std::string path;
//     std::string dtype = "f32";
//     template <class V> void visit(V& v) {
//       v("path", path, "model folder or file");
//       v("dtype", dtype, "compute dtype", config::one_of({"f32", "bf16", "f16"}));
//     }
//   };
//
// from_yaml() reads a tree into such a struct and reports every problem at once (unknown keys
// with a suggestion, wrong types, failed checks), each with the file, line and dotted key;
// to_yaml() prints the resolved values, defaults included; describe() lists the keys.
// Supported field types: bool, integers, float, double, std::string, std::vector<T>,
// std::optional<T>, std::map<std::string, T> and nested option structs.
#pragma once

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"

namespace opine::config {

// ---- checks passed as a field's fourth argument; each returns "" or what is wrong ----------
inline auto one_of(std::vector<std::string> choices) {
  return [choices](const std::string& v) -> std::string {
    for (const std::string& c : choices)
      if (v == c) return "";
    std::string list;
    for (const std::string& c : choices) list += (list.empty() ? "" : ", ") + c;
    return "'" + v + "' is not one of: " + list;
  };
}
inline auto at_least(double min) {
  return [min](const auto& v) -> std::string {
    if (double(v) >= min) return "";
    std::ostringstream m;
    m << "must be at least " << min << ", got " << v;
    return m.str();
  };
}
inline auto in_range(double lo, double hi) {
  return [lo, hi](const auto& v) -> std::string {
    if (double(v) >= lo && double(v) <= hi) return "";
    std::ostringstream m;
    m << "must be in [" << lo << ", " << hi << "], got " << v;
    return m.str();
  };
}

// ---- YAML trees ---------------------------------------------------------------------------
// Parses a YAML file; a syntax error names the file, line and column.
YAML::Node load_yaml_file(const std::string& path);

// Applies `a.b.c=value` overrides (value parsed as YAML: scalars, [1, 2], {k: v}), creating
// missing maps. Returns the dotted keys it set, so messages can say they came from the
// command line.
std::set<std::string> apply_overrides(YAML::Node& root, const std::vector<std::string>& overrides);

// Sets one dotted key to a string scalar without parsing it as YAML (paths with ':' or '#').
void set_string(YAML::Node& root, const std::string& dotted_key, const std::string& value);

namespace detail {

template <class T> struct is_vector : std::false_type {};
template <class T> struct is_vector<std::vector<T>> : std::true_type {};
template <class T> struct is_optional : std::false_type {};
template <class T> struct is_optional<std::optional<T>> : std::true_type {};
template <class T> struct is_map : std::false_type {};
template <class T> struct is_map<std::map<std::string, T>> : std::true_type {};

struct Visitor;
template <class T>
concept Options = requires(T& t, Visitor& v) { t.visit(v); };

std::string join(const std::string& prefix, const std::string& key);
std::string closest(const std::string& key, const std::vector<std::string>& known);
std::string format_double(double v);

// Where each problem is reported, and the problems so far.
struct Context {
  std::string source;                 // file name or "(command line)"
  std::set<std::string> overridden;   // dotted keys set on the command line
  std::vector<std::string> problems;
  void report(const YAML::Node& node, const std::string& key, const std::string& what);
};

template <class T>
std::string type_name() {
  if constexpr (std::is_same_v<T, bool>) return "bool";
  else if constexpr (std::is_integral_v<T>) return "integer";
  else if constexpr (std::is_floating_point_v<T>) return "number";
  else if constexpr (std::is_same_v<T, std::string>) return "string";
  else if constexpr (is_vector<T>::value) return "list of " + type_name<typename T::value_type>();
  else if constexpr (is_optional<T>::value) return type_name<typename T::value_type>() + " or null";
  else if constexpr (is_map<T>::value) return "map of " + type_name<typename T::mapped_type>();
  else return "map";
}

template <class T>
bool parse_scalar(const std::string& text, T& out) {
  if constexpr (std::is_same_v<T, bool>) {
    if (text == "true" || text == "True" || text == "yes") return out = true, true;
    if (text == "false" || text == "False" || text == "no") return out = false, true;
    return false;
  } else if constexpr (std::is_integral_v<T>) {
    T v{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size()) return false;
    return out = v, true;
  } else {
    static_assert(std::is_floating_point_v<T>);
    if (text.empty()) return false;
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size()) return false;
    return out = static_cast<T>(v), true;
  }
}

// Reads `node` into `value`; problems go to ctx under `key`. The value keeps its default on error.
template <class T>
void read(const YAML::Node& node, T& value, const std::string& key, Context& ctx);

struct Reader {
  const YAML::Node& node;
  std::string prefix;
  Context& ctx;
  std::vector<std::string> known;

  template <class T, class Check>
  void operator()(const char* key, T& value, const char* /*help*/, Check check) {
    known.push_back(key);
    const YAML::Node child = node[key];
    if (!child.IsDefined()) return;
    const size_t before = ctx.problems.size();
    read(child, value, join(prefix, key), ctx);
    if (ctx.problems.size() == before) {
      const std::string what = check(value);
      if (!what.empty()) ctx.report(child, join(prefix, key), what);
    }
  }
  template <class T>
  void operator()(const char* key, T& value, const char* help) {
    (*this)(key, value, help, [](const T&) { return std::string(); });
  }
};

template <class T>
void read(const YAML::Node& node, T& value, const std::string& key, Context& ctx) {
  auto wrong = [&] {
    std::string got = node.IsScalar() ? "\"" + node.Scalar() + "\"" : node.IsSequence() ? "a list"
                                                                     : node.IsMap()    ? "a map"
                                                                                       : "null";
    ctx.report(node, key, "expected " + type_name<T>() + ", got " + got);
  };
  if constexpr (is_optional<T>::value) {
    if (node.IsNull()) return value.reset();
    typename T::value_type inner = value.value_or(typename T::value_type{});
    const size_t before = ctx.problems.size();
    read(node, inner, key, ctx);
    if (ctx.problems.size() == before) value = inner;
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (node.IsNull()) return value.clear();
    if (!node.IsScalar()) return wrong();
    value = node.Scalar();
  } else if constexpr (std::is_arithmetic_v<T>) {
    if (!node.IsScalar() || !parse_scalar(node.Scalar(), value)) return wrong();
  } else if constexpr (is_vector<T>::value) {
    if (!node.IsSequence()) return wrong();
    T items(node.size());
    const size_t before = ctx.problems.size();
    for (size_t i = 0; i < node.size(); ++i) read(node[i], items[i], key + "[" + std::to_string(i) + "]", ctx);
    if (ctx.problems.size() == before) value = std::move(items);
  } else if constexpr (is_map<T>::value) {
    if (!node.IsMap()) return wrong();
    T items;
    for (const auto& kv : node) read(kv.second, items[kv.first.Scalar()], join(key, kv.first.Scalar()), ctx);
    value = std::move(items);
  } else {
    if (node.IsNull()) return;  // an empty section keeps its defaults
    if (!node.IsMap()) return wrong();
    Reader r{node, key, ctx, {}};
    value.visit(r);
    for (const auto& kv : node) {
      const std::string name = kv.first.Scalar();
      bool found = false;
      for (const std::string& k : r.known) found = found || k == name;
      if (found) continue;
      const std::string guess = closest(name, r.known);
      ctx.report(kv.first, join(key, name),
                 "unknown key" + (guess.empty() ? "" : " (did you mean '" + join(key, guess) + "'?)"));
    }
  }
}

struct Writer {
  YAML::Emitter& out;
  template <class T, class Check>
  void operator()(const char* key, const T& value, const char* help, Check) {
    (*this)(key, value, help);
  }
  template <class T>
  void operator()(const char* key, const T& value, const char*) {
    out << YAML::Key << key << YAML::Value;
    write(value);
  }
  template <class T>
  void write(const T& value) {
    if constexpr (is_optional<T>::value) {
      if (value) write(*value);
      else out << YAML::Null;
    } else if constexpr (std::is_same_v<T, bool>) {
      out << (value ? "true" : "false");
    } else if constexpr (std::is_floating_point_v<T>) {
      out << format_double(value);
    } else if constexpr (std::is_arithmetic_v<T>) {
      out << std::to_string(value);
    } else if constexpr (std::is_same_v<T, std::string>) {
      // Quote strings that would read back as another type ("1", "true", "").
      bool plain = !value.empty();
      if (plain) {
        double d;
        bool b;
        plain = !parse_scalar(value, d) && !parse_scalar(value, b) && value != "null" && value != "~";
      }
      if (plain) out << value;
      else out << YAML::DoubleQuoted << value;
    } else if constexpr (is_vector<T>::value) {
      out << YAML::Flow << YAML::BeginSeq;
      for (const auto& v : value) write(v);
      out << YAML::EndSeq;
    } else if constexpr (is_map<T>::value) {
      out << YAML::BeginMap;
      for (const auto& [k, v] : value) {
        out << YAML::Key << k << YAML::Value;
        write(v);
      }
      out << YAML::EndMap;
    } else {
      out << YAML::BeginMap;
      const_cast<T&>(value).visit(*this);
      out << YAML::EndMap;
    }
  }
};

struct Describer {
  std::string prefix;
  std::ostringstream& out;
  template <class T, class Check>
  void operator()(const char* key, T& value, const char* help, Check) {
    (*this)(key, value, help);
  }
  template <class T>
  void operator()(const char* key, T& value, const char* help) {
    const std::string name = join(prefix, key);
    if constexpr (Options<T>) {
      out << name << ": " << help << "\n";
      Describer inner{name, out};
      value.visit(inner);
    } else {
      YAML::Emitter e;
      e << YAML::Flow;
      Writer{e}.write(value);
      out << "  " << name << " (" << type_name<T>() << ", default " << e.c_str() << "): " << help << "\n";
    }
  }
};

[[noreturn]] void throw_problems(const Context& ctx);

}  // namespace detail

// Fills T from `root`; throws one opine::Error (kConfig) listing every problem.
template <class T>
T from_yaml(const YAML::Node& root, const std::string& source, const std::set<std::string>& overridden = {}) {
  T value{};
  detail::Context ctx{source, overridden, {}};
  detail::read(root, value, "", ctx);
  if (!ctx.problems.empty()) detail::throw_problems(ctx);
  return value;
}

// Defaults, then `file` (if any), then `overrides`.
template <class T>
T load(const std::optional<std::string>& file, const std::vector<std::string>& overrides) {
  YAML::Node root = file ? load_yaml_file(*file) : YAML::Node(YAML::NodeType::Map);
  const std::set<std::string> overridden = apply_overrides(root, overrides);
  return from_yaml<T>(root, file.value_or("(command line)"), overridden);
}

// The values as YAML, every field included.
template <class T>
std::string to_yaml(const T& value) {
  YAML::Emitter out;
  detail::Writer{out}.write(value);
  return out.c_str();
}

// Every key with its type, default and help, one per line.
template <class T>
std::string describe(T value = T{}) {
  std::ostringstream out;
  detail::Describer d{"", out};
  value.visit(d);
  return out.str();
}

}  // namespace opine::config
