// Adapter folders: round trips, and the errors a user meets (missing files, another peft_type, an
// adapter for another model, settings opine does not implement). Prompt tuning basics.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "peft/adapter_io.h"
#include "peft_test_util.h"

namespace opine::peft {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::rel_error;
using test::tiny_config;
using test::tiny_model;

LoraConfig dora_config() {
  LoraConfig c;
  c.r = 2;
  c.lora_alpha = 5;
  c.use_dora = true;
  c.target_modules = {"q_proj", "up_proj"};
  c.task_type = "SEQ_CLS";
  return c;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void write_json(const fs::path& path, const json& j) { std::ofstream(path) << j.dump(2); }

const at::Tensor kIds = at::tensor({1, 5, 7, 9, 3, 2}, at::kLong).view({2, 3});

TEST(AdapterIo, LoraRoundTripGivesTheSameOutputs) {
  const fs::path dir = test::temp_dir("roundtrip");
  models::LlamaModel a = tiny_model(16, models::HeadKind::kClassification);
  LoraModel la(a, dora_config(), 4);
  {
    at::NoGradGuard no_grad;
    for (auto& [name, t] : la.named_trainable()) t.add_(at::randn(t.sizes()) * 0.1);
  }
  save_lora_adapter(dir.string(), la);
  const json saved = test::read_json(dir / kAdapterConfigFile);
  EXPECT_EQ(saved["peft_type"], "LORA");
  EXPECT_EQ(saved["modules_to_save"], json({"classifier", "score"}));
  EXPECT_EQ(lora_config_to_json(lora_config_from_json(saved, "x")), saved);
  models::LlamaModel b = tiny_model(16, models::HeadKind::kClassification);
  Adapter lb = load_adapter(dir.string(), b);
  ASSERT_TRUE(lb.lora);
  at::NoGradGuard no_grad;
  EXPECT_TRUE(at::equal(a.sequence_logits(a.forward(kIds).hidden, {}), b.sequence_logits(b.forward(kIds).hidden, {})));
  fs::remove_all(dir);
}

TEST(AdapterIo, MissingFilesAreClearErrors) {
  models::LlamaModel m = tiny_model();
  EXPECT_NE(error_of([&] { load_adapter("/nonexistent/adapter", m); }).find("does not exist"), std::string::npos);
  const fs::path dir = test::temp_dir("missing");
  EXPECT_NE(error_of([&] { load_adapter(dir.string(), m); }).find("has no adapter_config.json"), std::string::npos);
  LoraConfig c;
  c.target_modules = {"q_proj"};
  write_json(dir / kAdapterConfigFile, lora_config_to_json(c));
  EXPECT_NE(error_of([&] { load_adapter(dir.string(), m); }).find("has no adapter_model.safetensors"),
            std::string::npos);
  for (const LinearSlotRef& s : m.linear_table()) EXPECT_FALSE(s.linear->op) << "left attached: " << s.name;
  fs::remove_all(dir);
}

TEST(AdapterIo, AdapterForAnotherModelListsEveryMismatch) {
  const fs::path dir = test::temp_dir("mismatch");
  models::LlamaModel wide = tiny_model(32);
  LoraConfig c;
  c.target_modules = {"q_proj"};
  save_lora_adapter(dir.string(), LoraModel(wide, c));
  models::LlamaModel narrow = tiny_model(16);
  const std::string err = error_of([&] { load_lora_adapter(dir.string(), narrow); });
  EXPECT_NE(err.find("does not fit the model"), std::string::npos) << err;
  EXPECT_NE(err.find("model.layers.0.self_attn.q_proj.lora_A.weight has shape [8, 32], the model needs [8, 16]"),
            std::string::npos) << err;
  EXPECT_NE(err.find("model.layers.1.self_attn.q_proj.lora_B.weight"), std::string::npos) << err;
  // The failed load leaves the model as it was.
  for (const LinearSlotRef& s : narrow.linear_table()) EXPECT_FALSE(s.linear->op) << s.name;
  // A target module the model lacks.
  json j = test::read_json(dir / kAdapterConfigFile);
  j["target_modules"] = {"q_proj", "c_attn"};
  write_json(dir / kAdapterConfigFile, j);
  EXPECT_NE(error_of([&] { load_lora_adapter(dir.string(), narrow); }).find("'c_attn' is not in the model"),
            std::string::npos);
  fs::remove_all(dir);
}

TEST(AdapterIo, ConfigOfAnotherKindOrWithUnsupportedSettings) {
  const fs::path dir = test::temp_dir("config");
  models::LlamaModel m = tiny_model();
  LoraConfig c;
  c.target_modules = {"q_proj"};
  save_lora_adapter(dir.string(), LoraModel(m, c));
  const json good = test::read_json(dir / kAdapterConfigFile);
  auto load_with = [&](const std::string& key, const json& value) {
    json j = good;
    j[key] = value;
    write_json(dir / kAdapterConfigFile, j);
    models::LlamaModel fresh = tiny_model();
    return error_of([&] { load_lora_adapter(dir.string(), fresh); });
  };
  EXPECT_NE(load_with("peft_type", "IA3").find("peft_type is 'IA3', expected 'LORA'"), std::string::npos);
  EXPECT_NE(load_with("rank_pattern", json{{"q_proj", 4}}).find("'rank_pattern' is not supported"), std::string::npos);
  EXPECT_NE(load_with("init_lora_weights", "pissa").find("'init_lora_weights'"), std::string::npos);
  EXPECT_NE(load_with("frobnicate", 3).find("'frobnicate' is not a LoRA setting"), std::string::npos);
  EXPECT_EQ(load_with("frobnicate", nullptr), "(no error)");  // unknown but switched off: accepted
  EXPECT_NE(load_with("r", 3).find("does not fit the model"), std::string::npos);
  const std::string err = load_with("use_dora", true);
  EXPECT_NE(err.find("missing base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector"),
            std::string::npos) << err;
  // A LoRA folder is no prompt-tuning folder.
  write_json(dir / kAdapterConfigFile, good);
  models::LlamaModel fresh = tiny_model();
  EXPECT_NE(error_of([&] { load_prompt_tuning(dir.string(), fresh); }).find("expected 'PROMPT_TUNING'"),
            std::string::npos);
  fs::remove_all(dir);
}

TEST(PromptTuning, PrependsVirtualTokensAndKeepsTheBaseFrozen) {
  models::LlamaModel m = tiny_model(16, models::HeadKind::kClassification);
  PromptTuningConfig c;
  c.num_virtual_tokens = 5;
  c.task_type = "SEQ_CLS";
  PromptTuning p(m, c, 1);
  const at::Tensor mask = at::tensor({1, 1, 1, 1, 1, 0}, at::kLong).view({2, 3});
  auto [embeds, full_mask] = p.prepend(m, kIds, mask);
  EXPECT_EQ(embeds.sizes(), (std::vector<int64_t>{2, 8, 16}));
  EXPECT_TRUE(at::equal(full_mask.narrow(1, 0, 5), at::ones({2, 5}, full_mask.options())));
  EXPECT_TRUE(at::equal(full_mask.narrow(1, 5, 3), mask));
  p.sequence_logits(m, kIds, mask).pow(2).sum().backward();
  EXPECT_TRUE(p.embeddings().grad().defined());
  EXPECT_TRUE(m.score.grad().defined());  // the head's copy trains (modules_to_save)
  for (const models::WeightSlotRef& w : m.weight_table()) {
    if (w.name != "score.weight") {
      EXPECT_FALSE(w.tensor->requires_grad()) << w.name;
    }
  }
  EXPECT_EQ(p.named_trainable().size(), 2u);
  // Same seed, same prompt; RANDOM is N(0, 1).
  models::LlamaModel m2 = tiny_model(16, models::HeadKind::kClassification);
  EXPECT_TRUE(at::equal(PromptTuning(m2, c, 1).embeddings(), p.embeddings()));
}

TEST(PromptTuning, TextInitCutsOrRepeatsTheTokens) {
  models::LlamaModel m = tiny_model();
  PromptTuningConfig c;
  c.num_virtual_tokens = 5;
  PromptTuning p(m, c);
  p.init_from_tokens(m, {3, 4});
  const at::Tensor rows = at::tensor({3, 4, 3, 4, 3}, at::kLong);
  EXPECT_TRUE(at::equal(p.embeddings(), m.embed_tokens.index_select(0, rows)));
  p.init_from_tokens(m, {7, 8, 9, 10, 11, 12, 13});
  EXPECT_TRUE(at::equal(p.embeddings(), m.embed_tokens.narrow(0, 7, 5)));
  EXPECT_NE(error_of([&] { p.init_from_tokens(m, {99}); }).find("outside the vocabulary"), std::string::npos);
  // The causal-LM output without the virtual positions lines up with the tokens.
  at::NoGradGuard no_grad;
  EXPECT_EQ(p.lm_logits(m, kIds).sizes(), (std::vector<int64_t>{2, 3, 32}));
  EXPECT_EQ(p.lm_logits_full(m, kIds).sizes(), (std::vector<int64_t>{2, 8, 32}));
}

TEST(PromptTuning, SaveLoadRoundTrip) {
  const fs::path dir = test::temp_dir("prompt");
  models::LlamaModel m = tiny_model();
  PromptTuningConfig c;
  c.num_virtual_tokens = 3;
  PromptTuning p(m, c, 2);
  save_prompt_tuning(dir.string(), p, m.config());
  const json j = test::read_json(dir / kAdapterConfigFile);
  EXPECT_EQ(j["peft_type"], "PROMPT_TUNING");
  EXPECT_EQ(j["token_dim"], 16);
  Adapter back = load_adapter(dir.string(), m);
  ASSERT_TRUE(back.prompt);
  EXPECT_TRUE(at::equal(back.prompt->embeddings(), p.embeddings()));
  models::LlamaModel wider = tiny_model(32);
  EXPECT_NE(error_of([&] { load_adapter(dir.string(), wider); }).find("'token_dim'"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace opine::peft
