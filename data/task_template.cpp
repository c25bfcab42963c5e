#include "data/task_template.h"

#include "core/error.h"

namespace opine::data {

std::string fill(const std::string& pattern, const std::map<std::string, std::string>& values) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if ((c == '{' || c == '}') && i + 1 < pattern.size() && pattern[i + 1] == c) {
      out += c;
      ++i;
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    const size_t close = pattern.find('}', i);
    OPINE_CHECK_KIND(close != std::string::npos, ErrorKind::kConfig, "template '", pattern,
                     "': unclosed '{' at ", i);
    const std::string name = pattern.substr(i + 1, close - i - 1);
    auto it = values.find(name);
    OPINE_CHECK_KIND(it != values.end(), ErrorKind::kConfig, "template '", pattern, "': unknown placeholder {",
                     name, "}");
    out += it->second;
    i = close;
  }
  return out;
}

namespace {

std::map<std::string, std::string> placeholders(const TaskTemplate& t, const Example& e) {
  std::string labels, definitions;
  for (const std::string& l : t.labels) labels += (labels.empty() ? "" : " / ") + l;
  for (const std::string& l : t.labels) {
    auto it = t.label_definitions.find(l);
    if (it != t.label_definitions.end()) definitions += (definitions.empty() ? "" : "\n") + ("- " + l + ": " + it->second);
  }
  std::map<std::string, std::string> v = {
      {"text", e.text}, {"topic", e.topic}, {"labels", labels}, {"definitions", definitions}};
  if (e.label >= 0) {
    OPINE_CHECK(e.label < static_cast<int>(t.labels.size()), "label ", e.label, " has no name (task.labels has ",
                t.labels.size(), ")");
    v["label"] = t.labels[e.label];
  }
  return v;
}

}  // namespace

void TaskTemplate::validate() const {
  for (const auto& [name, def] : label_definitions) {
    bool known = false;
    for (const std::string& l : labels) known = known || l == name;
    OPINE_CHECK_KIND(known, ErrorKind::kConfig, "task.label_definitions: '", name, "' is not one of task.labels");
  }
  OPINE_CHECK_KIND(!labels.empty() || answer.find("{label}") == std::string::npos, ErrorKind::kConfig,
                   "task.answer uses {label} but task.labels is empty");
  // Rendering a dummy example finds unknown placeholders now, not mid-run.
  Example probe;
  probe.text = "t";
  probe.topic = "p";
  probe.label = labels.empty() ? -1 : 0;
  auto v = placeholders(*this, probe);
  fill(system, v);
  fill(instruction, v);
  if (!labels.empty()) fill(answer, v);
}

std::vector<models::ChatMessage> task_messages(const TaskTemplate& t, const Example& query,
                                               const std::vector<Example>& shots, bool with_answer) {
  std::vector<models::ChatMessage> messages;
  const auto q = placeholders(t, query);
  if (!t.system.empty()) messages.push_back({"system", fill(t.system, q)});
  for (const Example& s : shots) {
    OPINE_CHECK(s.label >= 0, "a shot needs a label");
    const auto v = placeholders(t, s);
    messages.push_back({"user", fill(t.instruction, v)});
    messages.push_back({"assistant", fill(t.answer, v)});
  }
  messages.push_back({"user", fill(t.instruction, q)});
  if (with_answer) {
    OPINE_CHECK(query.label >= 0, "a training example needs a label");
    messages.push_back({"assistant", fill(t.answer, q)});
  }
  return messages;
}

}  // namespace opine::data
