#include "core/adamw.h"

#include <c10/core/GradMode.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"

namespace opine {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kFormat = "opine.adamw";
constexpr const char* kVersion = "1";

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return "F32";
    case at::kDouble:
      return "F64";
    case at::kHalf:
      return "F16";
    case at::kBFloat16:
      return "BF16";
    case at::kLong:
      return "I64";
    default:
      OPINE_ASSERT(false, "no safetensors name for ", c10::toString(t));
  }
  return "";
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// One tensor of a state file: its name and the tensor that holds (or receives) its values.
struct Entry {
  std::string name;
  at::Tensor tensor;
};

}  // namespace

AdamW::AdamW(std::vector<OptimGroup> groups, AdamWOptions options)
    : groups_(std::move(groups)), options_(options) {
  std::set<std::string> names;
  for (const OptimGroup& g : groups_) {
    OPINE_CHECK(!g.name.empty(), "an optimizer group needs a name");
    OPINE_CHECK(g.name.find('.') == std::string::npos, "optimizer group name '", g.name,
                "' has a '.', which separates the parts of state names");
    OPINE_CHECK(names.insert(g.name).second, "two optimizer groups are named '", g.name, "'");
    OPINE_CHECK(g.lr_scale >= 0, "optimizer group '", g.name, "': lr_scale must be at least 0, got ",
                g.lr_scale);
    std::vector<State>& states = states_.emplace_back();
    for (size_t i = 0; i < g.params.size(); ++i) {
      const at::Tensor& p = g.params[i];
      OPINE_CHECK(p.defined() && at::isFloatingType(p.scalar_type()), "optimizer group '", g.name,
                  "' parameter ", i, " is not a floating-point tensor");
      State& s = states.emplace_back();
      s.exp_avg = at::zeros_like(p, at::MemoryFormat::Preserve);
      s.exp_avg_sq = at::zeros_like(p, at::MemoryFormat::Preserve);
    }
  }
}

void AdamW::step(double lr_multiplier) {
  c10::NoGradGuard no_grad;
  const double beta1 = options_.beta1, beta2 = options_.beta2, eps = options_.eps;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const OptimGroup& g = groups_[gi];
    const double lr = options_.lr * g.lr_scale * lr_multiplier;
    const double weight_decay = g.weight_decay ? options_.weight_decay : 0.0;
    for (size_t i = 0; i < g.params.size(); ++i) {
      at::Tensor p = g.params[i];
      const at::Tensor& grad = p.grad();
      if (!grad.defined()) continue;
      OPINE_ASSERT(grad.sizes() == p.sizes(), "gradient of ", g.name, ".", i, " has shape ", grad.sizes(),
                   ", the parameter ", p.sizes());
      State& s = states_[gi][i];
      s.step += 1;
      // Term for term torch/optim/adam.py _single_tensor_adam (decoupled_weight_decay, not
      // capturable): the same ops with the same scalars, computed in double as Python does.
      if (weight_decay != 0) p.mul_(1 - lr * weight_decay);
      s.exp_avg.lerp_(grad, 1 - beta1);
      s.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
      const double step = static_cast<double>(s.step);
      const double bias_correction1 = 1 - std::pow(beta1, step);
      const double bias_correction2 = 1 - std::pow(beta2, step);
      const double step_size = lr / bias_correction1;
      const double bias_correction2_sqrt = std::pow(bias_correction2, 0.5);  // Python's x ** 0.5
      const at::Tensor denom = (s.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps);
      p.addcdiv_(s.exp_avg, denom, -step_size);
    }
  }
  ++steps_;
}

void AdamW::zero_grad() {
  for (OptimGroup& g : groups_)
    for (at::Tensor& p : g.params)
      if (p.grad().defined()) p.mutable_grad() = at::Tensor();
}

const AdamW::State& AdamW::state(size_t group, size_t index) const {
  OPINE_ASSERT(group < states_.size() && index < states_[group].size(), "no optimizer state ", group, ".",
               index);
  return states_[group][index];
}
const at::Tensor& AdamW::exp_avg(size_t group, size_t index) const { return state(group, index).exp_avg; }
const at::Tensor& AdamW::exp_avg_sq(size_t group, size_t index) const {
  return state(group, index).exp_avg_sq;
}
int64_t AdamW::param_steps(size_t group, size_t index) const { return state(group, index).step; }

int64_t AdamW::state_bytes() const {
  int64_t bytes = 0;
  for (const auto& states : states_)
    for (const State& s : states) bytes += s.exp_avg.nbytes() + s.exp_avg_sq.nbytes();
  return static_cast<int64_t>(bytes);
}

void AdamW::save(const fs::path& file) const {
  std::vector<Entry> entries;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    for (size_t i = 0; i < states_[gi].size(); ++i) {
      const State& s = states_[gi][i];
      const std::string prefix = groups_[gi].name + "." + std::to_string(i) + ".";
      entries.push_back({prefix + "exp_avg", s.exp_avg});
      entries.push_back({prefix + "exp_avg_sq", s.exp_avg_sq});
      entries.push_back({prefix + "step", at::scalar_tensor(s.step, at::kLong)});
    }
  }
  json header = json::object();
  header["__metadata__"] = {{"format", kFormat}, {"version", kVersion}, {"steps", std::to_string(steps_)}};
  int64_t offset = 0;
  for (const Entry& e : entries) {
    const int64_t n = static_cast<int64_t>(e.tensor.nbytes());
    header[e.name] = {{"dtype", dtype_name(e.tensor.scalar_type())},
                      {"shape", e.tensor.sizes().vec()},
                      {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // safetensors pads the header to 8 bytes
  write_file_atomic(file, [&](std::ostream& out) {
    const uint64_t size = text.size();  // little-endian, as on every machine opine runs on
    out.write(reinterpret_cast<const char*>(&size), sizeof size);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const Entry& e : entries) {
      const at::Tensor t = e.tensor.cpu().contiguous();
      out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
    }
  });
}

void AdamW::load(const fs::path& file) {
  const std::string where = "optimizer state " + file.string();
  std::ifstream in(file, std::ios::binary);
  OPINE_CHECK_KIND(in.good(), ErrorKind::kIo, "cannot open ", where);
  std::error_code ec;
  const uint64_t file_size = fs::file_size(file, ec);
  OPINE_CHECK_KIND(!ec, ErrorKind::kIo, "cannot read ", where, ": ", ec.message());
  uint64_t header_size = 0;
  in.read(reinterpret_cast<char*>(&header_size), sizeof header_size);
  OPINE_CHECK_FORMAT(in.good() && header_size <= file_size - 8, where,
                     ": not a safetensors file (bad header length)");
  std::string text(header_size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_size));
  OPINE_CHECK_FORMAT(in.good(), where, ": truncated header");
  json header;
  try {
    header = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(ErrorKind::kFormat, where + ": header is not JSON: " + e.what());
  }
  OPINE_CHECK_FORMAT(header.is_object(), where, ": header is not a JSON object");
  const json meta = header.value("__metadata__", json::object());
  OPINE_CHECK_FORMAT(meta.is_object() && meta.value("format", "") == kFormat, where,
                     " is not an opine AdamW state (metadata format is not ", kFormat, ")");
  OPINE_CHECK_FORMAT(meta.value("version", "") == kVersion, where, ": state version ",
                     meta.value("version", "?"), ", this opine reads ", kVersion);
  int64_t steps = 0;
  try {
    steps = std::stoll(meta.value("steps", ""));
  } catch (const std::exception&) {
    OPINE_CHECK_FORMAT(false, where, ": metadata 'steps' is not a number");
  }

  // Every tensor checked (present, dtype, shape, bytes inside the file) before any is read, so
  // a mismatch leaves the optimizer as it was.
  struct Planned {
    std::string name;
    at::Tensor target;  // the state (or step) tensor the bytes go to
    int64_t begin = 0;
  };
  std::vector<Planned> plan;
  std::vector<std::vector<at::Tensor>> step_values(groups_.size());
  const uint64_t data_start = 8 + header_size;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    for (size_t i = 0; i < states_[gi].size(); ++i) {
      const std::string prefix = groups_[gi].name + "." + std::to_string(i) + ".";
      const at::Tensor& p = groups_[gi].params[i];
      at::Tensor step = at::zeros({}, at::kLong);
      step_values[gi].push_back(step);
      const std::vector<Entry> wanted = {{prefix + "exp_avg", states_[gi][i].exp_avg},
                                         {prefix + "exp_avg_sq", states_[gi][i].exp_avg_sq},
                                         {prefix + "step", step}};
      for (const Entry& w : wanted) {
        const std::string want_dtype = dtype_name(w.tensor.scalar_type());
        const std::vector<int64_t> want_shape = w.tensor.sizes().vec();
        OPINE_CHECK(header.contains(w.name), where, " has no tensor '", w.name, "' (parameter ", i,
                    " of group '", groups_[gi].name, "', shape ", shape_text(p.sizes().vec()),
                    "): was it saved for other parameters?");
        const json& h = header[w.name];
        OPINE_CHECK_FORMAT(
            h.is_object() && h.contains("dtype") && h.contains("shape") && h.contains("data_offsets"), where,
            ": malformed entry for '", w.name, "'");
        const std::string dtype = h["dtype"].get<std::string>();
        const std::vector<int64_t> shape = h["shape"].get<std::vector<int64_t>>();
        OPINE_CHECK(dtype == want_dtype, where, ": tensor '", w.name, "' is ", dtype,
                    ", the parameter needs ", want_dtype);
        OPINE_CHECK(shape == want_shape, where, ": tensor '", w.name, "' has shape ", shape_text(shape),
                    ", the parameter needs ", shape_text(want_shape));
        const std::vector<uint64_t> offsets = h["data_offsets"].get<std::vector<uint64_t>>();
        OPINE_CHECK_FORMAT(offsets.size() == 2 && offsets[1] >= offsets[0] &&
                               offsets[1] - offsets[0] == static_cast<uint64_t>(w.tensor.nbytes()) &&
                               data_start + offsets[1] <= file_size,
                           where, ": tensor '", w.name, "' lies outside the file (truncated?)");
        plan.push_back({w.name, w.tensor, static_cast<int64_t>(data_start + offsets[0])});
      }
    }
  }
  const size_t expected = plan.size() + 1;  // + __metadata__
  if (header.size() != expected) {
    std::set<std::string> known;
    for (const Planned& pl : plan) known.insert(pl.name);
    for (const auto& [name, value] : header.items()) {
      OPINE_CHECK(name == "__metadata__" || known.count(name), where, " holds tensor '", name,
                  "', which no parameter of this optimizer has: was it saved for other parameters?");
    }
  }

  // Read each tensor into CPU memory and copy it into place (on the parameter's device).
  std::vector<at::Tensor> loaded;
  loaded.reserve(plan.size());
  for (const Planned& pl : plan) {
    at::Tensor t = at::empty(pl.target.sizes(), pl.target.options().device(at::kCPU));
    in.seekg(pl.begin);
    in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
    OPINE_CHECK_KIND(in.good(), ErrorKind::kIo, "cannot read '", pl.name, "' from ", where);
    loaded.push_back(t);
  }
  c10::NoGradGuard no_grad;
  for (size_t k = 0; k < plan.size(); ++k) plan[k].target.copy_(loaded[k]);
  for (size_t gi = 0; gi < groups_.size(); ++gi)
    for (size_t i = 0; i < states_[gi].size(); ++i) states_[gi][i].step = step_values[gi][i].item<int64_t>();
  steps_ = steps;
}

}  // namespace opine
