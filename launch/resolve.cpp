#include "launch/resolve.h"

#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "core/log.h"

namespace opine::launch {

OpineOptions resolve_options(const Args& args, const std::vector<FlagBinding>& bindings) {
  const std::optional<std::string> file = args.get("config");
  YAML::Node root = file ? config::load_yaml_file(*file) : YAML::Node(YAML::NodeType::Map);
  std::set<std::string> overridden = config::apply_overrides(root, args.overrides());
  for (const FlagBinding& b : bindings) {
    if (std::optional<std::string> value = args.get(b.flag)) {
      config::set_string(root, b.key, *value);
      overridden.insert(b.key);
    }
  }
  OpineOptions options = config::from_yaml<OpineOptions>(root, file.value_or("(command line)"), overridden);
  log::debug("resolved configuration:\n", config::to_yaml(options));
  return options;
}

at::Device parse_device(const std::string& name) {
  if (name == "cpu") return at::kCPU;
  OPINE_CHECK(name == "cuda" || name.rfind("cuda:", 0) == 0, "unknown device '", name,
              "' (use cpu, cuda or cuda:N)");
  OPINE_CHECK(at::hasCUDA(), "device ", name, " requested, but this opine has no usable CUDA");
  return at::Device(name);
}

models::LoadOptions load_options(const ModelOptions& model, int seed) {
  OPINE_CHECK(!model.path.empty(), "no model given (--model PATH or model.path=PATH)");
  models::LoadOptions o;
  o.dtype = models::parse_dtype(model.dtype);
  o.device = parse_device(model.device);
  o.seed = static_cast<uint64_t>(seed);
  if (model.head == "classification") o.head = models::HeadKind::kClassification;
  if (model.head == "regression") o.head = models::HeadKind::kRegression;
  if (model.head == "causal-lm") o.head = models::HeadKind::kCausalLm;
  o.num_labels = model.num_labels;
  return o;
}

}  // namespace opine::launch
