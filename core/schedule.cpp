#include "core/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace opine {

int64_t warmup_steps(const ScheduleOptions& options, int64_t total_steps) {
  if (options.warmup_steps > 0) return options.warmup_steps;
  return static_cast<int64_t>(std::ceil(static_cast<double>(total_steps) * options.warmup_ratio));
}

// Each formula is transformers' lambda term for term, in double precision like Python's floats.
double lr_multiplier(const ScheduleOptions& options, int64_t step, int64_t total_steps) {
  const std::string& kind = options.kind;
  if (kind == "constant") return 1.0;
  const int64_t warmup = warmup_steps(options, total_steps);
  if (step < warmup) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
  if (kind == "constant_with_warmup") return 1.0;
  const double decay_steps = static_cast<double>(std::max<int64_t>(1, total_steps - warmup));
  if (kind == "linear") return std::max(0.0, static_cast<double>(total_steps - step) / decay_steps);
  if (kind == "cosine") {
    const double progress = static_cast<double>(step - warmup) / decay_steps;
    return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * options.num_cycles * 2.0 * progress)));
  }
  throw Error(ErrorKind::kConfig,
              detail::concat("unknown learning-rate schedule '", kind,
                             "' (one of constant, constant_with_warmup, linear, cosine)"));
}

}  // namespace opine
