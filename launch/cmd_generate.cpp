// `opine generate`: continue a prompt (or answer it as a chat), streaming the text as it comes.
#include <iostream>

#include "core/error.h"
#include "launch/commands.h"
#include "launch/resolve.h"
#include "models/generate.h"
#include "models/model_assets.h"

namespace opine::launch {

namespace {
const std::vector<FlagSpec> kFlags = with_model_setup_flags({
    {"model", "PATH", "model (model.path)"},
    {"tokenizer", "PATH", "tokenizer file or folder (generate.tokenizer); default: the model's own"},
    {"prompt", "TEXT", "text to continue, or the user's message with --chat"},
    {"chat", "", "wrap the prompt in the model's chat template"},
    {"system", "TEXT", "system message for --chat"},
    {"max-new-tokens", "N", "tokens to generate at most (generate.max_new_tokens)"},
    {"temperature", "T", "0 = greedy (generate.temperature)"},
    {"top-k", "K", "sample among the K most likely (generate.top_k)"},
    {"top-p", "P", "nucleus sampling mass (generate.top_p)"},
    {"seed", "S", "sampling seed (seed)"},
    {"dtype", "f32|bf16|f16", "compute dtype (model.dtype)"},
    {"device", "DEVICE", "cpu or cuda[:N] (model.device)"},
    {"config", "FILE", "YAML configuration"},
    {"help", "", "show this help"},
});
}  // namespace

int run_generate(const std::vector<std::string>& argv) {
  Args args(kFlags, argv);
  if (args.has("help")) {
    std::cout << "usage: opine generate --model MODEL --prompt TEXT [--chat [--system TEXT]]\n"
                 "                      [--max-new-tokens N --temperature T --top-k K --top-p P --seed S]\n\n"
                 "Prints only the generated text, streamed token by token. Temperature 0 is greedy.\n\n"
              << format_flags(kFlags);
    return 0;
  }
  OPINE_CHECK(args.positionals().empty(), "unexpected argument '", args.positionals().front(), "'");
  OpineOptions o = resolve_options(
      args, with_model_setup_bindings(
                {{"model", "model.path"}, {"tokenizer", "generate.tokenizer"}, {"dtype", "model.dtype"},
                 {"device", "model.device"}, {"max-new-tokens", "generate.max_new_tokens"},
                 {"temperature", "generate.temperature"}, {"top-k", "generate.top_k"},
                 {"top-p", "generate.top_p"}, {"seed", "seed"}}));
  OPINE_CHECK(args.has("prompt"), "--prompt is required");
  OPINE_CHECK(!args.has("system") || args.has("chat"), "--system goes with --chat");
  OPINE_CHECK(!o.model.path.empty(), "no model given (--model PATH or model.path=PATH)");
  models::ModelFile file = models::open_model_file(o.model.path);
  const auto tokenizer = models::load_model_tokenizer(file, o.generate.tokenizer);

  models::GenerateOptions g;
  g.max_new_tokens = o.generate.max_new_tokens;
  g.temperature = o.generate.temperature;
  g.top_k = o.generate.top_k;
  g.top_p = o.generate.top_p;
  g.seed = static_cast<uint64_t>(o.seed);
  if (auto eos = tokenizer->eos_id()) g.stop_tokens.push_back(*eos);

  std::vector<int64_t> prompt;
  if (args.has("chat")) {
    const auto chat = models::load_model_chat_template(file, *tokenizer);
    OPINE_CHECK(chat.has_value(), o.model.path, " declares no chat template; drop --chat");
    std::vector<models::ChatMessage> messages;
    if (args.has("system")) messages.push_back({"system", *args.get("system")});
    messages.push_back({"user", *args.get("prompt")});
    // The template writes BOS itself where the model wants one.
    prompt = tokenizer->encode(chat->render(messages, true), /*add_special=*/false);
    if (auto end = tokenizer->token_to_id(chat->end_of_turn())) g.stop_tokens.push_back(*end);
  } else {
    prompt = tokenizer->encode(*args.get("prompt"), /*add_special=*/true);
  }
  OPINE_CHECK(!prompt.empty(), "the prompt encodes to no tokens and the tokenizer adds no BOS");

  models::LlamaModel model = build_model(file, o, &g.prefix_embeds);
  models::StreamDecoder stream(*tokenizer, {prompt.back()});
  models::generate(model, prompt, g, [&](int64_t token) {
    const bool stop = std::find(g.stop_tokens.begin(), g.stop_tokens.end(), token) != g.stop_tokens.end();
    if (!stop) std::cout << stream.push(token) << std::flush;
    return true;
  });
  std::cout << stream.finish() << "\n";
  return 0;
}

}  // namespace opine::launch
