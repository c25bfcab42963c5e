// Labels for new texts from a model and an adapter, the C++ face of `opine predict`:
//
//   auto predictor = opine::launch::Predictor::from_paths("SmolLM2-135M-Instruct.Q4_1.gguf",
//                                                         "runs/abortion/adapter");
//   for (const auto& p : predictor.predict({"Every life matters #prolife"}, 16))
//     std::cout << predictor.classes()[p.label] << " " << p.probabilities[p.label] << "\n";
//
// An adapter `opine train` saved carries its run's configuration (opine.yaml) and label names
// (opine_labels.json), so texts are normalised, templated and tokenized exactly as in training.
// With a classification or regression head the head predicts; a causal-LM adapter (SFT) or a
// base model alone uses eval.strategy (loglik, generate, vote; auto is loglik).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/runtime.h"
#include "data/batch.h"
#include "launch/options.h"
#include "launch/strategies.h"
#include "models/llama.h"
#include "models/loader.h"
#include "models/tokenizer.h"

namespace opine::launch {

class Trainable;

// What a saved adapter says about its run, beside the PEFT files.
inline constexpr const char* kAdapterConfigFile = "opine.yaml";
inline constexpr const char* kAdapterLabelsFile = "opine_labels.json";

// "runs/x/adapter/" -> "runs/x/adapter", so the run folder is its parent ("" stays "").
std::string normalized_adapter_path(const std::string& adapter);

// The configuration an adapter was trained with: ADAPTER/opine.yaml, else the run folder's
// config.yaml above it; empty when neither exists.
std::string adapter_config_file(const std::filesystem::path& adapter);
// Those options; an error when there are none.
OpineOptions options_for_adapter(const std::filesystem::path& adapter);

// Writes opine.yaml and opine_labels.json ({"classes": [...], "kind": "class|regression|causal_lm"})
// into an adapter folder.
void describe_adapter(const std::filesystem::path& adapter, const std::string& resolved_yaml,
                      const std::vector<std::string>& classes, data::LabelKind kind);

// What a saved adapter's opine_labels.json says: its classes and the kind of its head (none for
// an adapter that predates it, or is not opine's).
struct AdapterLabels {
  std::vector<std::string> classes;
  data::LabelKind kind = data::LabelKind::kClass;
};
std::optional<AdapterLabels> read_adapter_labels(const std::filesystem::path& adapter);

// The head a fine-tuned checkpoint carries (a Hugging Face *ForSequenceClassification folder,
// such as a sentiment-tuned RoBERTa): its classes (id2label; LABEL_i when unnamed, none for
// regression) and kind. Nothing for a checkpoint without one.
std::optional<AdapterLabels> checkpoint_head(const std::string& model_path);
// With no adapter, the checkpoint's own head predicts; it must fit the dataset's `classes`
// (empty: regression): same number, and the same names in the same order when it names them.
void check_checkpoint_head(const std::string& model_path, const AdapterLabels& head,
                           const std::vector<std::string>& classes);

// The strategy eval.strategy means for this adapter: "auto" is the head when the adapter (or,
// without an adapter, the checkpoint itself) has a classification or regression head, else
// loglik. Asking for a head where there is none is an error.
std::string resolve_strategy(const OpineOptions& options, const std::string& adapter);

class Predictor {
 public:
  // `options.model.path`: the base model; `adapter`: a folder `opine train` saved, or empty for
  // the base model with the options' task template. Without `runtime` the predictor runs as one
  // process; with it, loading follows the runtime's node (each rank keeps a whole model).
  Predictor(OpineOptions options, const std::string& adapter, dist::Runtime* runtime = nullptr);
  ~Predictor();
  Predictor(Predictor&&) noexcept;
  // The adapter's own configuration with `model` as the base model.
  static Predictor from_paths(const std::string& model, const std::string& adapter);

  // One prediction per text, in order. Texts are normalised as the run's data were; the
  // template's {topic} is the dataset spec's stance target. `first_index`: the first text's
  // index in the whole input, which seeds sampled answers (vote), so they do not depend on how
  // the input was split into calls or over ranks.
  std::vector<ExamplePrediction> predict(const std::vector<std::string>& texts, int64_t batch_size = 16,
                                         const Progress& progress = {}, uint64_t first_index = 0) const;
  // The same for examples whose text is already normalised (evaluation splits).
  std::vector<ExamplePrediction> predict_examples(const data::Examples& examples, int64_t batch_size,
                                                  uint64_t first_index = 0,
                                                  const Progress& progress = {}) const;

  const std::vector<std::string>& classes() const { return classes_; }
  data::LabelKind kind() const { return kind_; }
  const std::string& strategy() const { return strategy_; }
  const OpineOptions& options() const { return options_; }

 private:
  OpineOptions options_;
  std::string adapter_;
  std::string strategy_;  // head | loglik | generate | vote
  std::vector<std::string> classes_;
  data::LabelKind kind_ = data::LabelKind::kClass;
  std::string topic_;
  std::unique_ptr<dist::Runtime> own_runtime_;
  std::unique_ptr<models::Tokenizer> tokenizer_;
  data::Encoder encoder_;
  std::unique_ptr<models::ModelFile> file_;
  std::unique_ptr<Trainable> head_model_;   // head strategy
  std::unique_ptr<models::LlamaModel> lm_;  // prompt strategies
  at::Tensor soft_prompt_;
  std::unique_ptr<ShotSelector> shots_;
};

}  // namespace opine::launch
