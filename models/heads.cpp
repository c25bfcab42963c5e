#include "models/heads.h"

#include "core/error.h"

namespace opine::models {

at::Tensor causal_lm_loss(const at::Tensor& logits, const at::Tensor& labels) {
  OPINE_CHECK(logits.dim() == 3 && labels.dim() == 2 && logits.size(0) == labels.size(0) &&
                  logits.size(1) == labels.size(1),
              "causal_lm_loss: logits ", logits.sizes(), " do not match labels ", labels.sizes());
  const int64_t seq = logits.size(1), vocab = logits.size(2);
  at::Tensor predicted = logits.narrow(1, 0, seq - 1).to(at::kFloat).reshape({-1, vocab});
  at::Tensor target = labels.narrow(1, 1, seq - 1).to(logits.device(), at::kLong).reshape({-1});
  return at::cross_entropy_loss(predicted, target, {}, at::Reduction::Mean, kIgnoreIndex);
}

at::Tensor classification_loss(const at::Tensor& logits, const at::Tensor& labels) {
  OPINE_CHECK(logits.dim() == 2 && labels.dim() == 1 && logits.size(0) == labels.size(0),
              "classification_loss: logits ", logits.sizes(), " do not match labels ", labels.sizes());
  return at::cross_entropy_loss(logits.to(at::kFloat), labels.to(logits.device(), at::kLong));
}

at::Tensor regression_loss(const at::Tensor& outputs, const at::Tensor& targets) {
  OPINE_CHECK(outputs.dim() == 2 && outputs.size(1) == 1 && targets.dim() == 1 &&
                  outputs.size(0) == targets.size(0),
              "regression_loss: outputs ", outputs.sizes(), " do not match targets ", targets.sizes());
  return at::mse_loss(outputs.squeeze(1).to(at::kFloat), targets.to(outputs.device(), at::kFloat));
}

}  // namespace opine::models
