#include "models/weights.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "core/error.h"

namespace opine::models {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

void load_weight_table(const std::vector<WeightSlotRef>& table, const TensorSource& source,
                       const std::vector<std::string>& ignored) {
  std::vector<std::string> names = source.names();
  std::set<std::string> present(names.begin(), names.end());
  std::set<std::string> expected;
  std::vector<std::string> problems;
  for (const WeightSlotRef& slot : table) {
    expected.insert(slot.name);
    if (!present.count(slot.name)) {
      problems.push_back("missing tensor " + slot.name + " " + shape_string(slot.shape));
      continue;
    }
    std::vector<int64_t> have = source.shape(slot.name);
    if (have != slot.shape)
      problems.push_back("tensor " + slot.name + " has shape " + shape_string(have) + ", expected " +
                         shape_string(slot.shape));
  }
  for (const std::string& name : names)
    if (!expected.count(name) && std::find(ignored.begin(), ignored.end(), name) == ignored.end())
      problems.push_back("unexpected tensor " + name + " " + shape_string(source.shape(name)));
  if (!problems.empty()) {
    std::ostringstream msg;
    msg << source.describe() << ": " << problems.size() << " weight problem"
        << (problems.size() > 1 ? "s" : "") << ":";
    const size_t shown = std::min<size_t>(problems.size(), 20);
    for (size_t i = 0; i < shown; ++i) msg << "\n  " << problems[i];
    if (shown < problems.size()) msg << "\n  ... and " << problems.size() - shown << " more";
    throw Error(ErrorKind::kFormat, msg.str());
  }
  for (const WeightSlotRef& slot : table) {
    at::Tensor value = source.get(slot.name);
    slot.tensor->copy_(value.to(slot.tensor->scalar_type()));
  }
}

}  // namespace opine::models

namespace opine::models {

at::Tensor interleaved_to_half_rotary(const at::Tensor& weight, int64_t num_heads) {
  const int64_t rows = weight.size(0);
  OPINE_ASSERT(rows % (2 * num_heads) == 0, "rows ", rows, " heads ", num_heads);
  std::vector<int64_t> shape = {num_heads, rows / num_heads / 2, 2};
  for (int64_t i = 1; i < weight.dim(); ++i) shape.push_back(weight.size(i));
  return weight.reshape(shape).transpose(1, 2).reshape(weight.sizes()).contiguous();
}

}  // namespace opine::models
