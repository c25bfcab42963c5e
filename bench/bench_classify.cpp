// Classification throughput on a split of a dataset, as `opine eval` / `opine predict` run it:
//   --strategy loglik (default): tweets/s of the log-likelihood strategy with the shared prompt
//     prefix computed once (eval.prefix_cache) and without;
//   --strategy head: tweets/s of a classification head (a checkpoint with its own head, through
//     launch::Predictor).
// Prints one JSON line; bench/classify_throughput.py runs it beside transformers and prints
// ratios. With --dump FILE it writes the exact token ids and opine's log-probabilities (or
// class probabilities), so the peer scores the same tokens and checks it gets the same numbers.
//   bench_classify --config experiments/stance/abortion-binary-prompting.yaml --model M.gguf
//                  [--strategy loglik|head] [--tokenizer T] [--split train] [--limit 128]
//                  [--shots 4] [--batch 16] [--repeats 2] [--dump F]
#include <ATen/Parallel.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/config.h"
#include "core/error.h"
#include "data/dataset.h"
#include "data/pipeline.h"
#include "launch/predictor.h"
#include "launch/resolve.h"
#include "launch/shots.h"
#include "launch/strategies.h"
#include "models/loader.h"
#include "models/model_assets.h"

namespace {

using namespace opine;
using namespace opine::launch;

// The head strategy through the predictor `opine predict` uses (texts sorted by length into batches).
int head_throughput(OpineOptions o, const std::string& split, int limit, int batch, int repeats,
                    const std::string& dump) {
  o.eval.strategy = "head";
  const data::Dataset d = data::load_dataset(data::resolve_spec(o.data));
  data::Examples examples = data::normalized_split(d, split, o.data.normalize);
  if (int64_t(examples.size()) > limit) examples.resize(size_t(limit));
  const Predictor predictor(o, "");
  double best = 1e30;
  std::vector<ExamplePrediction> predictions;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    predictions = predictor.predict_examples(examples, batch);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  if (!dump.empty()) {
    const std::unique_ptr<models::Tokenizer> tokenizer = resolve_tokenizer(o);
    data::Encoder enc = make_encoder(o, *tokenizer);
    enc.format = "classification";
    nlohmann::json rows = nlohmann::json::array();
    for (size_t i = 0; i < examples.size(); ++i)
      rows.push_back({{"ids", data::encode_example(examples[i], enc).ids},
                      {"probabilities", predictions[i].probabilities}});
    std::ofstream(dump) << rows.dump();
  }
  std::cout << nlohmann::json({{"examples", examples.size()},
                               {"batch", batch},
                               {"threads", at::get_num_threads()},
                               {"model", o.model.path},
                               {"head_tweets_per_s", double(examples.size()) / best}})
                   .dump()
            << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace opine;
  using namespace opine::launch;
  std::string config, model, split = "train", dump, strategy = "loglik", tokenizer_path;
  int limit = 128, shots = 0, batch = 16, repeats = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--config")
      config = v;
    else if (a == "--model")
      model = v;
    else if (a == "--split")
      split = v;
    else if (a == "--limit")
      limit = std::stoi(v);
    else if (a == "--shots")
      shots = std::stoi(v);
    else if (a == "--batch")
      batch = std::stoi(v);
    else if (a == "--repeats")
      repeats = std::stoi(v);
    else if (a == "--dump")
      dump = v;
    else if (a == "--strategy")
      strategy = v;
    else if (a == "--tokenizer")
      tokenizer_path = v;
    else {
      std::cerr << "unknown flag " << a << "\n";
      return 2;
    }
  }
  try {
    YAML::Node root = config::load_yaml_file(config);
    OpineOptions o = config::from_yaml<OpineOptions>(root, config, {});
    o.model.path = model;
    o.task.shots = shots;
    if (!tokenizer_path.empty()) o.generate.tokenizer = tokenizer_path;
    if (strategy == "head") return head_throughput(o, split, limit, batch, repeats, dump);
    const std::unique_ptr<models::Tokenizer> tokenizer = resolve_tokenizer(o);
    models::ModelFile file = models::open_model_file(model);
    o.model.head = "causal-lm";
    const models::LlamaModel lm = build_model(file, o);
    const data::Dataset d = data::load_dataset(data::resolve_spec(o.data));
    data::Examples examples = data::normalized_split(d, split, o.data.normalize);
    if (int64_t(examples.size()) > limit) examples.resize(size_t(limit));
    const data::Examples pool = data::normalized_split(d, "train", o.data.normalize);
    const ShotSelector selector(pool, shots, o.eval.shot_selection, uint64_t(o.seed), d.classes.size());
    PromptModel pm{&lm, {}, tokenizer.get(), make_encoder(o, *tokenizer)};
    if (pm.encoder.task.labels.empty()) pm.encoder.task.labels = d.classes;

    nlohmann::json out = {{"examples", examples.size()},
                          {"shots", shots},
                          {"batch", batch},
                          {"threads", at::get_num_threads()},
                          {"model", model}};
    std::vector<ExamplePrediction> reference;
    for (const bool cached : {false, true}) {
      EvalOptions eo = o.eval;
      eo.batch_size = batch;
      eo.prefix_cache = cached;
      double best = 1e30;
      for (int r = 0; r < repeats; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        const auto p = run_prompt_strategy("loglik", pm, examples, selector, eo, 0);
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        if (reference.empty()) reference = p;
      }
      out[cached ? "prefix_cache_tweets_per_s" : "no_cache_tweets_per_s"] = double(examples.size()) / best;
    }
    if (!dump.empty()) {
      // The tokens each strategy run scored, as data/pipeline.h's encoder makes them.
      data::Encoder enc = pm.encoder;
      enc.format = "sft";
      enc.max_length = int(lm.config().max_position_embeddings);
      nlohmann::json rows = nlohmann::json::array();
      for (size_t i = 0; i < examples.size(); ++i) {
        nlohmann::json row = {{"logprobs", reference[i].logprobs}};
        for (size_t c = 0; c < pm.encoder.task.labels.size(); ++c) {
          data::Example e = examples[i];
          e.label = int(c);
          const data::TokenizedExample t = data::encode_example(e, enc, selector.shots_for(examples[i]));
          row["prompt"] = std::vector<int64_t>(t.ids.begin(), t.ids.begin() + t.prompt_length);
          row["answers"].push_back(std::vector<int64_t>(t.ids.begin() + t.prompt_length, t.ids.end()));
        }
        rows.push_back(row);
      }
      std::ofstream(dump) << rows.dump();
    }
    std::cout << out.dump() << std::endl;
  } catch (const Error& e) {
    std::cerr << "bench_classify: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
