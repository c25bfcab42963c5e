// Parity with PEFT 0.21.2 (tests/reference/peft_reference.py): PEFT applies LoRA, rsLoRA, DoRA and
// prompt tuning to tiny Llama / Qwen2 models and saves its adapters; opine loads the same base and
// adapter folder and must compute the same outputs, loss and gradient of every trainable tensor.
//
// Tolerances (float32 throughout): outputs and loss within 1e-5 of the reference's largest
// magnitude -- a few float32 epsilons (1.2e-7) times the accumulation depth of a two-layer model
// whose matmuls sum in a different order than PyTorch's. Gradients within 1e-4 relative to each
// tensor's largest entry: backward through attention and RMSNorm loses a little more (it sums over
// batch and positions as well), measured below 2e-6.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "models/heads.h"
#include "models/loader.h"
#include "peft/adapter_io.h"
#include "peft_test_util.h"

namespace opine::peft {
namespace {

namespace fs = std::filesystem;
using test::peft_ref;
using test::read_json;
using test::rel_error;

constexpr double kOutputTol = 1e-5;
constexpr double kGradTol = 1e-4;

struct Reference {
  nlohmann::json info;
  models::SafetensorsFile file;
  at::Tensor get(const std::string& name) const { return file.tensor(name).clone(); }
  bool has(const std::string& name) const { return file.entries().count(name) > 0; }
};

Reference reference(const std::string& name) {
  const fs::path dir = peft_ref() / name;
  return {read_json(dir / "reference.json"), models::SafetensorsFile::open((dir / "reference.safetensors").string())};
}

models::LlamaModel base(const Reference& r) {
  return models::load_model((peft_ref() / "base" / r.info["base"].get<std::string>()).string());
}

// The model's output (logits) and loss for the reference inputs, with or without a soft prompt.
std::pair<at::Tensor, at::Tensor> run(const models::LlamaModel& model, const Reference& r, const PromptTuning* prompt) {
  const at::Tensor ids = r.get("input_ids");
  const at::Tensor mask = r.has("attention_mask") ? r.get("attention_mask") : at::Tensor();
  const at::Tensor labels = r.get("labels");
  const models::HeadKind head = model.config().head;
  at::Tensor out, loss;
  if (head == models::HeadKind::kCausalLm) {
    out = prompt ? prompt->lm_logits_full(model, ids, mask) : model.lm_logits(model.forward(ids, mask).hidden);
    loss = prompt ? prompt->causal_lm_loss(model, ids, mask, labels) : models::causal_lm_loss(out, labels);
  } else {
    out = prompt ? prompt->sequence_logits(model, ids, mask)
                 : model.sequence_logits(model.forward(ids, mask).hidden, mask);
    loss = head == models::HeadKind::kRegression ? models::regression_loss(out, labels)
                                                 : models::classification_loss(out, labels);
  }
  return {out, loss};
}

// Causal-LM logits are compared where a real token sits (padding rows are computed differently,
// and nothing reads them); virtual tokens count as real.
double output_error(const at::Tensor& got, const at::Tensor& want, const Reference& r, int64_t virtual_tokens) {
  if (got.dim() != 3 || !r.has("attention_mask")) return rel_error(got, want);
  at::Tensor mask = r.get("attention_mask").ne(0);
  if (virtual_tokens) mask = at::cat({at::ones({mask.size(0), virtual_tokens}, mask.options()), mask}, 1);
  return rel_error(got.index({mask}), want.index({mask}));
}

void expect_gradients(const std::vector<std::pair<std::string, at::Tensor>>& named, const Reference& r) {
  std::set<std::string> expected;
  for (const auto& [name, entry] : r.file.entries())
    if (name.rfind("grad.", 0) == 0) expected.insert(name.substr(5));
  std::set<std::string> seen;
  double worst = 0;
  for (const auto& [name, t] : named) {
    seen.insert(name);
    ASSERT_TRUE(expected.count(name)) << "opine trains " << name << ", PEFT does not";
    ASSERT_TRUE(t.grad().defined()) << name << " got no gradient";
    const double err = rel_error(t.grad(), r.get("grad." + name));
    worst = std::max(worst, err);
    EXPECT_LT(err, kGradTol) << name;
  }
  EXPECT_EQ(seen, expected) << "the sets of trainable tensors differ";
  std::cout << "  gradients of " << seen.size() << " tensors: max relative error " << worst << "\n";
}

class PeftParity : public ::testing::TestWithParam<const char*> {};

TEST_P(PeftParity, ForwardLossAndGradientsMatchPeft) {
  const Reference r = reference(GetParam());
  models::LlamaModel model = base(r);
  Adapter adapter = load_adapter((peft_ref() / GetParam() / "adapter").string(), model);
  const PromptTuning* prompt = adapter.prompt.get();
  auto [out, loss] = run(model, r, prompt);
  const double out_err = output_error(out, r.get("output"), r, prompt ? prompt->num_virtual_tokens() : 0);
  const double loss_err = rel_error(loss.reshape({1}), r.get("loss"));
  std::cout << "  " << GetParam() << ": output max relative error " << out_err << ", loss " << loss_err << "\n";
  EXPECT_LT(out_err, kOutputTol);
  EXPECT_LT(loss_err, kOutputTol);
  loss.backward();
  expect_gradients(prompt ? prompt->named_trainable() : adapter.lora->named_trainable(), r);
  // The base stays frozen: no base weight has a gradient.
  for (const models::WeightSlotRef& w : model.weight_table())
    if (!w.tensor->requires_grad()) {
      EXPECT_FALSE(w.tensor->grad().defined()) << w.name;
    }
  const std::string count = prompt ? prompt->count_parameters(model).to_string()
                                   : adapter.lora->count_parameters().to_string();
  EXPECT_EQ(count, r.info["trainable"].get<std::string>());
}

INSTANTIATE_TEST_SUITE_P(Cases, PeftParity,
                         ::testing::Values("lora_causal", "rslora_classify", "dora_causal", "dora_regress",
                                           "prompt_causal", "prompt_classify", "prompt_regress"));

class PeftMergeParity : public ::testing::TestWithParam<const char*> {};

// Merged into the base, opine computes what PEFT's merge_and_unload model computes, and what the
// unmerged layers computed; unmerging restores the base weights (float32 round-off only).
TEST_P(PeftMergeParity, MergedMatchesPeftAndUnmergeRestores) {
  at::NoGradGuard no_grad;
  const Reference r = reference(GetParam());
  models::LlamaModel model = base(r);
  std::vector<at::Tensor> before;
  for (const LinearSlotRef& s : model.linear_table()) before.push_back(s.linear->weight.clone());
  LoraModel lora = load_lora_adapter((peft_ref() / GetParam() / "adapter").string(), model);
  const at::Tensor unmerged = run(model, r, nullptr).first;
  lora.merge();
  const at::Tensor merged = run(model, r, nullptr).first;
  const double vs_peft = output_error(merged, r.get("merged_output"), r, 0);
  const double vs_unmerged = output_error(merged, unmerged, r, 0);
  std::cout << "  merged vs PEFT merged " << vs_peft << ", vs unmerged " << vs_unmerged << "\n";
  EXPECT_LT(vs_peft, kOutputTol);
  EXPECT_LT(vs_unmerged, kOutputTol);
  lora.unmerge();
  double worst = 0;
  size_t i = 0;
  for (const LinearSlotRef& s : model.linear_table()) {
    const at::Tensor w = s.linear->op ? s.linear->op->dense_weight(at::kFloat) : s.linear->weight;
    if (auto l = lora.layer(s.name)) worst = std::max(worst, rel_error(l->base()->dense_weight(at::kFloat), before[i]));
    else EXPECT_TRUE(at::equal(w, before[i])) << s.name;
    ++i;
  }
  std::cout << "  unmerged base weights vs originals: max relative error " << worst << "\n";
  EXPECT_LT(worst, 1e-6);  // W + d - d in float32: a few ulps of the weight's magnitude
}

INSTANTIATE_TEST_SUITE_P(Cases, PeftMergeParity,
                         ::testing::Values("lora_causal", "rslora_classify", "dora_causal", "dora_regress"));

// Seeded initialisation draws what PEFT draws after torch.manual_seed(seed): A bit for bit.
TEST(PeftInitParity, SeededADrawsMatchPeft) {
  for (const char* name : {"lora_causal", "rslora_classify", "dora_causal", "dora_regress"}) {
    const Reference r = reference(name);
    models::LlamaModel model = base(r);
    const fs::path cfg = peft_ref() / name / "adapter" / "adapter_config.json";
    LoraConfig config = lora_config_from_json(read_json(cfg), cfg.string());
    LoraModel lora(model, config, r.info["seed"].get<uint64_t>());
    models::SafetensorsFile init = models::SafetensorsFile::open((peft_ref() / name / "init_A.safetensors").string());
    int64_t compared = 0;
    for (const auto& [key, t] : lora.named_trainable()) {
      if (key.find(".lora_A.") == std::string::npos) continue;
      ASSERT_TRUE(init.entries().count(key)) << key;
      EXPECT_TRUE(at::equal(t, init.tensor(key))) << name << ": " << key;
      ++compared;
    }
    EXPECT_EQ(compared, int64_t(init.entries().size())) << name;
    for (const auto& [key, t] : lora.named_trainable())
      if (key.find(".lora_B.") != std::string::npos) {
        EXPECT_EQ(t.abs().max().item<float>(), 0.0f) << key;
      }
  }
}

// opine's adapter loads in PEFT: opine writes an adapter (seeded A, random B, DoRA magnitude off
// the row norms) and its outputs; PeftModel.from_pretrained must compute the same
// (peft_reference.py check, within 1e-5 relative, as above).
TEST(PeftRoundTripParity, OpineAdapterLoadsInPeft) {
  for (const bool dora : {false, true}) {
    const fs::path dir = test::temp_dir(dora ? "dora_to_peft" : "lora_to_peft");
    const fs::path base_dir = peft_ref() / "base" / "classify";
    fs::create_directory_symlink(base_dir, dir / "base");
    models::LlamaModel model = models::load_model(base_dir.string());
    LoraConfig config;
    config.r = 4;
    config.lora_alpha = 12;
    config.use_dora = dora;
    config.use_rslora = !dora;
    config.target_modules = {"all-linear"};
    config.task_type = "SEQ_CLS";
    LoraModel lora(model, config, 7);
    {
      at::NoGradGuard no_grad;
      at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(8);
      for (auto& [name, t] : lora.named_trainable()) t.add_(at::randn(t.sizes(), gen) * 0.05);
    }
    save_lora_adapter((dir / "adapter").string(), lora);
    const at::Tensor ids = at::tensor({1, 17, 42, 5, 88, 23, 61, 1, 64, 3, 91, 12, 45, 7}, at::kLong).view({2, 7});
    at::Tensor out;
    {
      at::NoGradGuard no_grad;
      out = model.sequence_logits(model.forward(ids).hidden, {});
    }
    models::save_safetensors((dir / "expected.safetensors").string(), {{"input_ids", ids}, {"output", out}});
    // The Python the build was configured with (the one that generated the references).
    const std::string cmd = "\"" OPINE_PYTHON_EXE "\" \"" OPINE_SOURCE_DIR "/tests/reference/peft_reference.py\" check \"" +
                            dir.string() + "\"";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    fs::remove_all(dir);
  }
}

}  // namespace
}  // namespace opine::peft
