// Learning-rate schedules, as transformers defines them (get_constant_schedule,
// get_constant_schedule_with_warmup, get_linear_schedule_with_warmup,
// get_cosine_schedule_with_warmup): the factor LambdaLR multiplies the base learning rate by.
//
// `step` counts the optimizer steps already taken, as LambdaLR's does: the first optimizer step
// uses lr_multiplier(o, 0, total) (0 with any warmup, as in transformers' Trainer), the k-th
// uses step k-1.
#pragma once

#include <cstdint>
#include <string>

#include "core/config.h"

namespace opine {

struct ScheduleOptions {
  std::string kind = "linear";
  int64_t warmup_steps = 0;
  double warmup_ratio = 0.0;  // used when warmup_steps == 0: ceil(ratio * total_steps)
  double num_cycles = 0.5;    // cosine: 0.5 is half a wave, from 1 down to 0

  template <class V>
  void visit(V& v) {
    v("kind", kind, "learning-rate schedule",
      config::one_of({"constant", "constant_with_warmup", "linear", "cosine"}));
    v("warmup_steps", warmup_steps, "steps of linear warmup from 0 (0: use warmup_ratio)",
      config::at_least(0));
    v("warmup_ratio", warmup_ratio, "warmup as a fraction of the total steps, when warmup_steps is 0",
      config::in_range(0.0, 1.0));
    v("num_cycles", num_cycles, "cosine: waves over the decay (0.5: one half wave to 0)",
      config::at_least(0.0));
  }
};

// The warmup length in steps: warmup_steps, or ceil(warmup_ratio * total_steps) when that is 0
// (transformers' TrainingArguments.get_warmup_steps).
int64_t warmup_steps(const ScheduleOptions& options, int64_t total_steps);

// The multiplier of the base learning rate for the optimizer step after `step` steps (see above).
// An unknown kind is an opine::Error.
double lr_multiplier(const ScheduleOptions& options, int64_t step, int64_t total_steps);

}  // namespace opine
