// Task templates: placeholders, shots, answers, and the errors a YAML mistake gives.
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/task_template.h"

namespace opine::data {
namespace {

TaskTemplate stance() {
  TaskTemplate t;
  t.system = "You classify stance toward {topic}.";
  t.instruction = "Tweet: {text}\nAnswer {labels}.\n{definitions}";
  t.labels = {"none", "against", "favor"};
  t.label_definitions = {{"favor", "supports it"}, {"against", "opposes it"}};
  t.answer = "{label}";
  return t;
}

TEST(TaskTemplate, RendersSystemShotsQueryAndAnswer) {
  const TaskTemplate t = stance();
  t.validate();
  const auto m = task_messages(t, {"Save the bees", "climate", 2}, {{"Coal forever", "climate", 1}}, true);
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m[0].role, "system");
  EXPECT_EQ(m[0].content, "You classify stance toward climate.");
  EXPECT_EQ(m[1].content, "Tweet: Coal forever\nAnswer none / against / favor.\n- against: opposes it\n- favor: supports it");
  EXPECT_EQ(m[2].role, "assistant");
  EXPECT_EQ(m[2].content, "against");
  EXPECT_EQ(m[4].content, "favor");
  const auto prompt = task_messages(t, {"Save the bees", "climate", -1}, {}, false);
  EXPECT_EQ(prompt.back().role, "user");
  // With a chat template, the same messages become the model's prompt.
  const std::string text = models::ChatTemplate::chatml().render(prompt);
  EXPECT_EQ(text.substr(text.size() - 22), "<|im_start|>assistant\n");
}

TEST(TaskTemplate, LiteralBracesAndUnknownPlaceholders) {
  EXPECT_EQ(fill("{{x}} {a}", {{"a", "1"}}), "{x} 1");
  EXPECT_THROW(fill("{nope}", {{"a", "1"}}), Error);
  EXPECT_THROW(fill("{a", {{"a", "1"}}), Error);
  TaskTemplate t = stance();
  t.instruction = "{tweet}";
  try {
    t.validate();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig);
    EXPECT_NE(std::string(e.what()).find("{tweet}"), std::string::npos) << e.what();
  }
  t = stance();
  t.label_definitions["neutral"] = "x";
  EXPECT_THROW(t.validate(), Error);
}

struct Holder {
  TaskTemplate task;
  template <class V>
  void visit(V& v) {
    v("task", task, "the task");
  }
};

TEST(TaskTemplate, FilledFromYaml) {
  const Holder h = config::from_yaml<Holder>(
      YAML::Load("task: {instruction: 'Q: {text}', labels: [neg, pos], shots: 1}"), "t.yaml");
  EXPECT_EQ(h.task.labels, (std::vector<std::string>{"neg", "pos"}));
  EXPECT_EQ(h.task.shots, 1);
  EXPECT_THROW(config::from_yaml<Holder>(YAML::Load("task: {shots: -1}"), "t.yaml"), Error);
}

}  // namespace
}  // namespace opine::data
