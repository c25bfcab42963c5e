// `opine score`: the log-probability of each token given its prefix, as JSON.
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "launch/commands.h"
#include "launch/resolve.h"
#include "models/model_assets.h"

namespace opine::launch {

namespace {
const std::vector<FlagSpec> kFlags = with_model_setup_flags({
    {"model", "PATH", "model folder, GGUF or llama2.c file (model.path)"},
    {"ids", "\"1 2 3\"", "token ids, separated by spaces or commas"},
    {"text", "TEXT", "text, tokenized by the model's tokenizer (BOS added as the tokenizer does)"},
    {"tokenizer", "PATH", "tokenizer file or folder for --text (generate.tokenizer)"},
    {"dtype", "f32|bf16|f16", "compute dtype (model.dtype)"},
    {"device", "DEVICE", "cpu or cuda[:N] (model.device)"},
    {"config", "FILE", "YAML configuration"},
    {"help", "", "show this help"},
});

std::vector<int64_t> parse_ids(const std::string& text) {
  std::string s = text;
  for (char& ch : s)
    if (ch == ',' || ch == '[' || ch == ']') ch = ' ';
  std::istringstream in(s);
  std::vector<int64_t> ids;
  std::string word;
  while (in >> word) {
    size_t used = 0;
    int64_t id = -1;
    try {
      id = std::stoll(word, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    OPINE_CHECK(used == word.size() && id >= 0, "--ids: '", word, "' is not a token id");
    ids.push_back(id);
  }
  return ids;
}
}  // namespace

int run_score(const std::vector<std::string>& argv) {
  Args args(kFlags, argv);
  if (args.has("help")) {
    std::cout << "usage: opine score --model MODEL (--ids \"1 2 3 ...\" | --text TEXT) [--dtype f32|bf16|f16]\n\n"
                 "Prints {\"tokens\": [...], \"logprobs\": [...], \"sum\": ...}: each token after the\n"
                 "first with its log-probability given the tokens before it.\n\n"
              << format_flags(kFlags);
    return 0;
  }
  OPINE_CHECK(args.positionals().empty(), "unexpected argument '", args.positionals().front(), "'");
  OpineOptions options = resolve_options(args, with_model_setup_bindings({{"model", "model.path"}, {"dtype", "model.dtype"},
                                                {"device", "model.device"}, {"tokenizer", "generate.tokenizer"}}));
  OPINE_CHECK(args.has("ids") != args.has("text"), "give exactly one of --ids and --text");
  OPINE_CHECK(!options.model.path.empty(), "no model given (--model PATH or model.path=PATH)");
  models::ModelFile file = models::open_model_file(options.model.path);
  const std::vector<int64_t> ids =
      args.has("ids") ? parse_ids(*args.get("ids"))
                      : models::load_model_tokenizer(file, options.generate.tokenizer)->encode(*args.get("text"));
  OPINE_CHECK(ids.size() >= 2, "need at least two tokens (the first is only context)");
  at::Tensor soft_prompt;
  models::LlamaModel model = build_model(file, options, &soft_prompt);
  const at::Tensor lp =
      models::token_logprobs(model, at::tensor(ids, at::kLong).unsqueeze(0), {}, soft_prompt).to(at::kCPU);
  nlohmann::json out;
  out["tokens"] = std::vector<int64_t>(ids.begin() + 1, ids.end());
  std::vector<double> values(lp.size(1));
  double sum = 0;
  for (int64_t i = 0; i < lp.size(1); ++i) sum += values[i] = lp[0][i].item<double>();
  out["logprobs"] = values;
  out["sum"] = sum;
  std::cout << out.dump() << "\n";
  return 0;
}

}  // namespace opine::launch
