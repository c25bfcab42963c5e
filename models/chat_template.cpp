#include "models/chat_template.h"

#include <regex>

#include "core/error.h"

namespace opine::models {

namespace {

// Python's str.strip() for the whitespace a chat message can hold.
std::string strip(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const size_t begin = s.find_first_not_of(ws);
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(ws) - begin + 1);
}

// Jinja string literals use Python escapes; the templates we read use only these.
std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      const char c = s[++i];
      out += c == 'n' ? '\n' : c == 't' ? '\t' : c;
    } else {
      out += s[i];
    }
  }
  return out;
}

void check_alternation(const std::vector<ChatMessage>& turns) {
  for (size_t i = 0; i < turns.size(); ++i) {
    const char* want = i % 2 == 0 ? "user" : "assistant";
    OPINE_CHECK(turns[i].role == want, "chat: message ", i + 1, " has role '", turns[i].role,
                "'; after an optional system message, roles must alternate user/assistant");
  }
}

}  // namespace

const char* chat_format_name(ChatFormat format) {
  return format == ChatFormat::kLlama2 ? "llama-2" : "chatml";
}

ChatTemplate ChatTemplate::llama2(std::string bos_token, std::string eos_token) {
  ChatTemplate t;
  t.format_ = ChatFormat::kLlama2;
  t.bos_ = std::move(bos_token);
  t.eos_ = std::move(eos_token);
  return t;
}

ChatTemplate ChatTemplate::chatml(std::optional<std::string> default_system) {
  ChatTemplate t;
  t.format_ = ChatFormat::kChatMl;
  t.default_system_ = std::move(default_system);
  return t;
}

ChatTemplate ChatTemplate::from_jinja(const std::string& jinja, const std::string& source, std::string bos_token,
                                      std::string eos_token) {
  if (jinja.find("<|im_start|>") != std::string::npos) {
    // A default system prompt appears either as a variable (Qwen2) or as a literal system turn
    // (SmolLM2).
    static const std::regex variable(R"(set\s+system_message\s*=\s*'((?:[^'\\]|\\.)*)')");
    static const std::regex literal(R"('<\|im_start\|>system(?:\\n|\n)((?:[^'\\]|\\.)*)<\|im_end\|>)");
    std::smatch m;
    if (std::regex_search(jinja, m, variable) || std::regex_search(jinja, m, literal))
      return chatml(unescape(m[1].str()));
    return chatml();
  }
  if (jinja.find("[INST]") != std::string::npos && jinja.find("<<SYS>>") != std::string::npos)
    return llama2(std::move(bos_token), std::move(eos_token));
  throw Error(ErrorKind::kFormat, source + ": chat template is neither ChatML nor Llama-2; supported: "
                                           "chatml, llama-2 (pass --chat-format to choose one)");
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  const bool has_system = !messages.empty() && messages[0].role == "system";
  const std::vector<ChatMessage> turns(messages.begin() + (has_system ? 1 : 0), messages.end());
  check_alternation(turns);
  std::string out;
  if (format_ == ChatFormat::kLlama2) {
    for (size_t i = 0; i < turns.size(); ++i) {
      std::string content = turns[i].content;
      if (i == 0 && has_system) content = "<<SYS>>\n" + messages[0].content + "\n<</SYS>>\n\n" + content;
      if (turns[i].role == "user") out += bos_ + "[INST] " + strip(content) + " [/INST]";
      else out += " " + strip(content) + " " + eos_;
    }
    return out;  // Llama-2's prompt already ends where the answer begins
  }
  if (has_system) out += "<|im_start|>system\n" + messages[0].content + "<|im_end|>\n";
  else if (default_system_) out += "<|im_start|>system\n" + *default_system_ + "<|im_end|>\n";
  for (const ChatMessage& m : turns) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string ChatTemplate::end_of_turn() const { return format_ == ChatFormat::kLlama2 ? eos_ : "<|im_end|>"; }

}  // namespace opine::models
