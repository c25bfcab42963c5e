// Task templates: how a labelled tweet becomes a prompt (and, for supervised fine-tuning, the
// answer). Read from YAML, shared by training and inference so both see the same text.
//
//   task:
//     system: "You classify the stance of tweets."
//     instruction: "Tweet: {text}\nWhat is its stance toward {topic}? Answer {labels}."
//     labels: [none, against, favor]
//     label_definitions: {favor: "supports the target", against: "opposes it"}
//     answer: "{label}"
//     shots: 2
//
// Placeholders: {text}, {topic}, {labels} (the names joined by " / "), {definitions} (one
// "- name: definition" line each), {label} (in `answer`). "{{" and "}}" are literal braces.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/config.h"
#include "data/example.h"
#include "models/chat_template.h"

namespace opine::data {

struct TaskTemplate {
  std::string system;
  std::string instruction = "{text}";
  std::vector<std::string> labels;
  std::map<std::string, std::string> label_definitions;
  std::string answer = "{label}";
  int shots = 0;
  template <class V>
  void visit(V& v) {
    v("system", system, "system prompt (empty: none)");
    v("instruction", instruction, "the user turn; {text} {topic} {labels} {definitions}");
    v("labels", labels, "how each class is written, in class-index order");
    v("label_definitions", label_definitions, "optional definition of each label, for {definitions}");
    v("answer", answer, "the assistant turn; {label}");
    v("shots", shots, "worked examples before the query", config::at_least(0));
  }
  // Throws opine::Error (kConfig) for unknown placeholders, a definition of an unknown label,
  // or {label} without labels.
  void validate() const;
};

// The conversation: system turn, then each shot as a user/assistant pair, then the query (and its
// answer when `with_answer`, for training).
std::vector<models::ChatMessage> task_messages(const TaskTemplate& t, const Example& query,
                                               const std::vector<Example>& shots, bool with_answer);

// Fills placeholders; an unknown one is an opine::Error naming it.
std::string fill(const std::string& pattern, const std::map<std::string, std::string>& values);

}  // namespace opine::data
