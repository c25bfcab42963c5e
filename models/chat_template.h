// Chat templates: turning a conversation into the prompt text a chat model was trained on.
//
// Two families cover the models opine targets: Llama-2's ([INST] ... [/INST] with a <<SYS>>
// block) and ChatML (<|im_start|>role ... <|im_end|>: Qwen2, SmolLM2). A checkpoint declares its
// template as Jinja text (tokenizer_config.json or GGUF tokenizer.chat_template); we recognise
// which family it is, and its default system prompt, rather than run Jinja. Rendering matches
// transformers' apply_chat_template for conversations of alternating user/assistant turns.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace opine::models {

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

enum class ChatFormat { kLlama2, kChatMl };

class ChatTemplate {
 public:
  static ChatTemplate llama2(std::string bos_token = "<s>", std::string eos_token = "</s>");
  // `default_system`: the system turn added when a conversation has none (Qwen2, SmolLM2).
  static ChatTemplate chatml(std::optional<std::string> default_system = std::nullopt);
  // Recognises a declared Jinja template; an unsupported one is an opine::Error naming `source`.
  static ChatTemplate from_jinja(const std::string& jinja, const std::string& source,
                                 std::string bos_token = "<s>", std::string eos_token = "</s>");

  // The prompt text. With add_generation_prompt the text ends where the assistant's answer
  // begins. Roles must alternate user/assistant after an optional leading system turn.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt = true) const;

  ChatFormat format() const { return format_; }
  const std::optional<std::string>& default_system() const { return default_system_; }
  // The text that ends an assistant turn (generation stops there).
  std::string end_of_turn() const;

 private:
  ChatFormat format_ = ChatFormat::kChatMl;
  std::optional<std::string> default_system_;
  std::string bos_, eos_;
};

const char* chat_format_name(ChatFormat format);

}  // namespace opine::models
