#include "quant/quantize_model.h"

#include <iomanip>
#include <sstream>

#include "core/error.h"
#include "quant/quant_linear.h"

namespace opine::quant {

std::vector<std::string> default_skip_modules() { return {"lm_head", "score", "embed_tokens", "norm"}; }

std::string QuantSummary::describe() const {
  std::ostringstream out;
  out << layers << " linear layers in 4 bits: " << params << " parameters in " << weight_bytes << " bytes ("
      << std::fixed << std::setprecision(3) << bytes_per_param() << " bytes/parameter with all scales), "
      << dense_bytes << " bytes before";
  if (!skipped.empty()) out << "; " << skipped.size() << " kept in high precision";
  return out.str();
}

QuantSummary quantize_linears(const std::vector<LinearSlotRef>& slots, const QuantConfig& config,
                              at::ScalarType compute_dtype, const std::vector<std::string>& skip) {
  check_config(config);
  QuantSummary summary;
  for (const LinearSlotRef& slot : slots) {
    OPINE_ASSERT(slot.linear, "empty linear slot ", slot.name);
    bool skipped = false;
    for (const std::string& pattern : skip) skipped = skipped || slot.name.find(pattern) != std::string::npos;
    if (skipped) {
      summary.skipped.push_back(slot.name);
      continue;
    }
    Linear& linear = *slot.linear;
    const int64_t before = linear.resident_bytes();
    std::shared_ptr<QuantLinear> op;
    try {
      op = quantize_linear(linear, config, compute_dtype);
    } catch (const Error& e) {
      throw Error(e.kind(), slot.name + ": " + e.what());
    }
    linear.install(op);
    summary.layers += 1;
    summary.params += op->weight().numel();
    summary.weight_bytes += op->weight().bytes();
    summary.bytes += op->resident_bytes();
    summary.dense_bytes += before;
  }
  return summary;
}

}  // namespace opine::quant
