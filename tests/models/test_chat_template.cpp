// Chat templates against transformers' Jinja rendering of the templates checkpoints declare.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/chat_template.h"
#include "test_util.h"

namespace opine::models {
namespace {

TEST(ChatTemplateParity, RendersAsTransformersDoes) {
  std::ifstream in(test::reference_dir() / "chat" / "chat.json");
  ASSERT_TRUE(in.good()) << "run ctest, which generates the references";
  const auto cases = nlohmann::json::parse(in);
  ASSERT_GE(cases.size(), 14u);
  std::set<std::string> seen;
  for (const auto& c : cases) {
    const std::string name = c.at("template");
    seen.insert(name);
    const ChatTemplate t = ChatTemplate::from_jinja(c.at("jinja"), name, c.at("bos"), c.at("eos"));
    std::vector<ChatMessage> messages;
    for (const auto& m : c.at("messages")) messages.push_back({m.at("role"), m.at("content")});
    EXPECT_EQ(t.render(messages, c.at("add_generation_prompt")), c.at("text").get<std::string>())
        << name << " add_generation_prompt=" << c.at("add_generation_prompt");
  }
  EXPECT_TRUE(seen.count("llama2") && seen.count("smollm2")) << "missing reference templates";
  // Qwen2's template comes from the data root.
  if (std::filesystem::exists(test::data_root() / "tokenizers")) {
    EXPECT_TRUE(seen.count("qwen2")) << "missing Qwen2's template";
  }
}

TEST(ChatTemplate, RecognisesFamiliesAndDefaultSystemPrompts) {
  const auto qwen = ChatTemplate::from_jinja(
      "{% set system_message = 'You are a helpful assistant.' %}{{ '<|im_start|>system\\n' }}", "q");
  EXPECT_EQ(qwen.format(), ChatFormat::kChatMl);
  EXPECT_EQ(qwen.default_system(), "You are a helpful assistant.");
  const auto plain = ChatTemplate::from_jinja("{{'<|im_start|>' + message['role'] + '\\n'}}", "p");
  EXPECT_FALSE(plain.default_system().has_value());
  EXPECT_EQ(ChatTemplate::from_jinja("[INST] <<SYS>>", "l").format(), ChatFormat::kLlama2);
  try {
    ChatTemplate::from_jinja("{{ '<start_of_turn>' }}", "gemma.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gemma.json"), std::string::npos);
  }
}

TEST(ChatTemplate, RolesMustAlternate) {
  const auto t = ChatTemplate::chatml();
  EXPECT_THROW(t.render({{"user", "a"}, {"user", "b"}}), Error);
  EXPECT_THROW(t.render({{"assistant", "a"}}), Error);
  EXPECT_EQ(t.render({{"user", "a"}}, false), "<|im_start|>user\na<|im_end|>\n");
}

}  // namespace
}  // namespace opine::models
