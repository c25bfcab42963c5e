#include "launch/predictor.h"

#include <ATen/Parallel.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "data/dataset.h"
#include "data/normalize.h"
#include "data/pipeline.h"
#include "launch/resolve.h"
#include "launch/train.h"
#include "launch/trainable.h"
#include "models/model_assets.h"
#include "peft/adapter_io.h"
#include "peft/lora_config.h"

namespace opine::launch {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const char* kind_name(data::LabelKind kind) {
  switch (kind) {
    case data::LabelKind::kClass:
      return "class";
    case data::LabelKind::kRegression:
      return "regression";
    case data::LabelKind::kCausalLm:
      return "causal_lm";
  }
  return "class";
}

data::LabelKind parse_kind(const std::string& name, const fs::path& file) {
  if (name == "class") return data::LabelKind::kClass;
  if (name == "regression") return data::LabelKind::kRegression;
  OPINE_CHECK_FORMAT(name == "causal_lm", file.string(), ": unknown kind '", name, "'");
  return data::LabelKind::kCausalLm;
}

// The stance target of the options' dataset, when its spec can be read.
std::string spec_topic(const OpineOptions& o) {
  if (o.data.spec.empty() && o.data.dataset.name.empty()) return {};
  try {
    return data::resolve_spec(o.data).topic;
  } catch (const Error&) {
    return {};
  }
}

}  // namespace

std::string normalized_adapter_path(const std::string& adapter) {
  if (adapter.empty()) return adapter;
  fs::path p = fs::path(adapter).lexically_normal();
  if (!p.has_filename() && p.has_parent_path()) p = p.parent_path();
  return p.string();
}

std::string adapter_config_file(const fs::path& adapter) {
  for (const fs::path& file : {adapter / kAdapterConfigFile, adapter.parent_path() / "config.yaml"})
    if (fs::exists(file)) return file.string();
  return {};
}

OpineOptions options_for_adapter(const fs::path& adapter) {
  const std::string file = adapter_config_file(adapter);
  OPINE_CHECK(!file.empty(), "adapter ", adapter.string(), " has no ", kAdapterConfigFile,
              " and its folder no config.yaml: give the run's configuration with --config");
  YAML::Node root = config::load_yaml_file(file);
  return config::from_yaml<OpineOptions>(root, file, {});
}

void describe_adapter(const fs::path& adapter, const std::string& resolved_yaml,
                      const std::vector<std::string>& classes, data::LabelKind kind) {
  write_text_atomic(adapter / kAdapterConfigFile, resolved_yaml);
  write_text_atomic(adapter / kAdapterLabelsFile,
                    json{{"classes", classes}, {"kind", kind_name(kind)}}.dump(2) + "\n");
}

std::optional<AdapterLabels> read_adapter_labels(const fs::path& adapter) {
  const fs::path file = adapter / kAdapterLabelsFile;
  if (adapter.empty() || !fs::exists(file)) return std::nullopt;
  std::ifstream in(file);
  AdapterLabels out;
  try {
    const json j = json::parse(in);
    out.classes = j.at("classes").get<std::vector<std::string>>();
    out.kind = parse_kind(j.at("kind").get<std::string>(), file);
  } catch (const json::exception& e) {
    OPINE_CHECK_FORMAT(false, file.string(), ": ", e.what());
  }
  return out;
}

std::optional<AdapterLabels> checkpoint_head(const std::string& model_path) {
  if (model_path.empty() || !fs::is_directory(model_path) || !fs::exists(fs::path(model_path) / "config.json"))
    return std::nullopt;
  const models::ModelFile file = models::open_model_file(model_path);
  AdapterLabels head;
  int64_t labels = 0;
  if (file.encoder && file.encoder->head) {
    head.kind = *file.encoder->head == models::HeadKind::kRegression ? data::LabelKind::kRegression
                                                                     : data::LabelKind::kClass;
    head.classes = file.encoder->labels;
    labels = file.encoder->num_labels;
  } else if (!file.encoder && file.config.head != models::HeadKind::kCausalLm) {
    head.kind = file.config.head == models::HeadKind::kRegression ? data::LabelKind::kRegression
                                                                  : data::LabelKind::kClass;
    labels = file.config.num_labels;
  } else {
    return std::nullopt;
  }
  if (head.kind == data::LabelKind::kRegression) head.classes.clear();
  else if (head.classes.empty())
    for (int64_t i = 0; i < labels; ++i) head.classes.push_back("LABEL_" + std::to_string(i));
  return head;
}

void check_checkpoint_head(const std::string& model_path, const AdapterLabels& head,
                           const std::vector<std::string>& classes) {
  auto list = [](const std::vector<std::string>& names) {
    std::string out;
    for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
    return "[" + out + "]";
  };
  OPINE_CHECK((head.kind == data::LabelKind::kRegression) == classes.empty(), model_path, "'s own head is a ",
              head.kind == data::LabelKind::kRegression ? "regression" : "classification", " head; the dataset ",
              classes.empty() ? "is a regression task" : "has classes " + list(classes));
  if (classes.empty()) return;
  OPINE_CHECK(head.classes.size() == classes.size(), model_path, "'s own head predicts ", head.classes.size(),
              " classes ", list(head.classes), "; the dataset has ", classes.size(), " ", list(classes),
              " (train a new head: opine train with this model)");
  const bool unnamed = head.classes.front().rfind("LABEL_", 0) == 0;
  if (unnamed)
    log::warn(model_path, " does not name its classes (", list(head.classes), "): they are taken to be the dataset's ",
              list(classes), " in that order");
  else
    OPINE_CHECK(head.classes == classes, model_path, "'s own head predicts ", list(head.classes),
                " in that order; the dataset's classes are ", list(classes));
}

namespace {
bool adapter_has_head(const OpineOptions& o, const std::string& adapter) {
  if (adapter.empty()) return checkpoint_head(o.model.path).has_value();
  if (const auto labels = read_adapter_labels(adapter)) return labels->kind != data::LabelKind::kCausalLm;
  // An adapter from before opine_labels.json: its run's format says.
  return o.data.format == "classification";
}
}  // namespace

std::string resolve_strategy(const OpineOptions& o, const std::string& adapter) {
  const bool head = adapter_has_head(o, adapter);
  const std::string s = o.eval.strategy == "auto" ? (head ? "head" : "loglik") : o.eval.strategy;
  OPINE_CHECK(s != "head" || head,
              "eval.strategy=head needs an adapter (or a fine-tuned checkpoint) with a classification or "
              "regression head (opine train with data.format=classification); ",
              adapter.empty() ? "none was given and " + o.model.path + " has none" : adapter + " has none");
  return s;
}

Predictor::~Predictor() = default;
Predictor::Predictor(Predictor&&) noexcept = default;

Predictor Predictor::from_paths(const std::string& model, const std::string& adapter) {
  OpineOptions o = options_for_adapter(normalized_adapter_path(adapter));
  if (!model.empty()) o.model.path = model;
  return Predictor(std::move(o), normalized_adapter_path(adapter));
}

Predictor::Predictor(OpineOptions o, const std::string& adapter, dist::Runtime* runtime)
    : options_(std::move(o)), adapter_(adapter) {
  OPINE_CHECK(!options_.model.path.empty(), "no model given (--model PATH or model.path=PATH)");
  if (!runtime) {
    own_runtime_ = dist::Runtime::start(nullptr, nullptr);
    runtime = own_runtime_.get();
  }
  strategy_ = resolve_strategy(options_, adapter);
  std::optional<data::Dataset> dataset;  // read once, when the classes or the k-shot pool need it
  auto loaded = [&]() -> const data::Dataset& {
    if (!dataset) dataset = data::load_dataset(data::resolve_spec(options_.data));
    return *dataset;
  };
  const std::optional<AdapterLabels> own_head =
      adapter.empty() && strategy_ == "head" ? checkpoint_head(options_.model.path) : std::nullopt;
  if (const auto labels = read_adapter_labels(adapter)) {
    classes_ = labels->classes;
    kind_ = labels->kind == data::LabelKind::kCausalLm ? data::LabelKind::kClass : labels->kind;
  } else if (own_head && options_.data.spec.empty() && options_.data.dataset.name.empty()) {
    classes_ = own_head->classes;  // no dataset: the checkpoint names the classes
    kind_ = own_head->kind;
    if (options_.task.labels.empty()) options_.task.labels = classes_;
  } else {
    classes_ = options_.task.labels;
    if (classes_.empty() && (!options_.data.spec.empty() || !options_.data.dataset.name.empty()))
      classes_ = loaded().classes;
    kind_ = strategy_ == "head" && classes_.empty() ? data::LabelKind::kRegression : data::LabelKind::kClass;
  }
  OPINE_CHECK(strategy_ == "head" || !classes_.empty(), "strategy ", strategy_,
              " needs the label names: set task.labels or data.spec");
  OPINE_CHECK(strategy_ == "head" || kind_ == data::LabelKind::kClass, "strategy ", strategy_,
              " predicts classes; a regression adapter predicts with its head (eval.strategy=head)");
  topic_ = spec_topic(options_);

  if (own_head) check_checkpoint_head(options_.model.path, *own_head, classes_);
  tokenizer_ = resolve_tokenizer(options_);
  encoder_ = make_encoder(options_, *tokenizer_);
  if (encoder_.task.labels.empty()) encoder_.task.labels = classes_;
  const at::Device device = runtime->bind_device(options_.model.device);
  file_ = std::make_unique<models::ModelFile>(models::open_model_file(options_.model.path));
  if (strategy_ == "head") {
    OpineOptions h = options_;
    h.model.adapter.clear();
    h.train.shard.mode = "replicate";  // every rank a whole model: ranks predict different texts
    h.train.shard.activation_checkpointing = false;
    if (adapter.empty()) h.peft.method = "none";  // the checkpoint's own head, as it is
    else if (h.peft.method == "lora") h.peft.lora = peft::read_lora_config(adapter);
    head_model_ = std::make_unique<Trainable>(
        h, *runtime, device, *file_,
        kind_ == data::LabelKind::kRegression ? std::vector<std::string>{} : classes_, *tokenizer_);
    if (!adapter.empty()) head_model_->load_adapter_values(adapter);
    head_model_->set_training(false);
  } else {
    OpineOptions g = options_;
    g.model.adapter = adapter;
    g.model.head = "causal-lm";
    g.model.device = device.str();
    lm_ = std::make_unique<models::LlamaModel>(build_model(*file_, g, &soft_prompt_));
  }
  data::Examples pool;
  if (strategy_ != "head" && options_.task.shots > 0) {
    pool = data::normalized_split(loaded(), options_.eval.shot_split, options_.data.normalize);
  }
  shots_ =
      std::make_unique<ShotSelector>(pool, strategy_ == "head" ? 0 : options_.task.shots,
                                     options_.eval.shot_selection, uint64_t(options_.seed), classes_.size());
}

std::vector<ExamplePrediction> Predictor::predict(const std::vector<std::string>& texts, int64_t batch_size,
                                                  const Progress& progress, uint64_t first_index) const {
  data::Examples examples(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    examples[i].text = data::normalize(texts[i], options_.data.normalize);
    examples[i].topic = topic_;
  }
  return predict_examples(examples, batch_size, first_index, progress);
}

std::vector<ExamplePrediction> Predictor::predict_examples(const data::Examples& examples, int64_t batch_size,
                                                           uint64_t first_index,
                                                           const Progress& progress) const {
  OPINE_CHECK(batch_size >= 1, "batch size must be at least 1");
  if (strategy_ != "head") {
    PromptModel pm{lm_.get(), soft_prompt_, tokenizer_.get(), encoder_};
    EvalOptions eo = options_.eval;
    eo.batch_size = int(batch_size);
    return run_prompt_strategy(strategy_, pm, examples, *shots_, eo, uint64_t(options_.seed),
                               int64_t(first_index), progress);
  }
  std::vector<data::TokenizedExample> encoded(examples.size());
  data::Encoder enc = encoder_;
  enc.format = "classification";
  at::parallel_for(0, int64_t(examples.size()), 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      encoded[i] = data::encode_example(examples[i], enc);
      encoded[i].label = 0;  // unused: inference needs no truth
      encoded[i].target = 0;
      encoded[i].index = i;
    }
  });
  std::vector<size_t> lengths;
  for (const auto& e : encoded) lengths.push_back(e.ids.size());
  const std::vector<size_t> order = order_by_length(lengths);
  const data::CollateOptions collate = collate_options(options_, *tokenizer_);
  std::vector<ExamplePrediction> out(examples.size());
  for (size_t start = 0; start < order.size(); start += size_t(batch_size)) {
    const size_t stop = std::min(order.size(), start + size_t(batch_size));
    std::vector<data::TokenizedExample> batch;
    for (size_t k = start; k < stop; ++k) batch.push_back(encoded[order[k]]);
    const Predictions p = head_model_->infer(data::collate(batch, kind_, collate));
    for (size_t k = start; k < stop; ++k) {
      ExamplePrediction& e = out[order[k]];
      const int64_t r = int64_t(k - start);
      if (kind_ == data::LabelKind::kClass) {
        e.label = int(p.classes[r].item<int64_t>());
        const at::Tensor row = p.probabilities[r].to(at::kDouble).contiguous();
        e.probabilities.assign(row.data_ptr<double>(), row.data_ptr<double>() + row.numel());
      } else {
        e.score = p.scores[r].item<double>();
      }
    }
    if (progress) progress(int64_t(stop), int64_t(order.size()));
  }
  return out;
}

}  // namespace opine::launch
