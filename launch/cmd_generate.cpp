// `opine generate`: continue a prompt, streaming the text as it comes.
#include <filesystem>
#include <iostream>

#include "core/error.h"
#include "launch/commands.h"
#include "launch/resolve.h"
#include "models/generate.h"
#include "models/tokenizer_llama2c.h"

namespace opine::launch {

namespace {
const std::vector<FlagSpec> kFlags = {
    {"model", "PATH", "model (model.path)"},
    {"tokenizer", "FILE", "tokenizer file (generate.tokenizer); default: tokenizer.bin or tok*.bin beside the model"},
    {"prompt", "TEXT", "text to continue"},
    {"max-new-tokens", "N", "tokens to generate at most (generate.max_new_tokens)"},
    {"temperature", "T", "0 = greedy (generate.temperature)"},
    {"top-k", "K", "sample among the K most likely (generate.top_k)"},
    {"top-p", "P", "nucleus sampling mass (generate.top_p)"},
    {"seed", "S", "sampling seed (seed)"},
    {"dtype", "f32|bf16|f16", "compute dtype (model.dtype)"},
    {"device", "DEVICE", "cpu or cuda[:N] (model.device)"},
    {"config", "FILE", "YAML configuration"},
    {"help", "", "show this help"},
};

// A llama2.c tokenizer next to a llama2.c checkpoint (tokenizer.bin, or tok<N>.bin for its vocab).
std::string find_tokenizer(const std::string& model_path, int64_t vocab) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(model_path).parent_path();
  for (const fs::path& p : {dir / ("tok" + std::to_string(vocab) + ".bin"), dir / "tokenizer.bin"})
    if (fs::exists(p)) return p.string();
  throw Error(ErrorKind::kUser, "no tokenizer found beside " + model_path + "; pass --tokenizer FILE");
}
}  // namespace

int run_generate(const std::vector<std::string>& argv) {
  Args args(kFlags, argv);
  if (args.has("help")) {
    std::cout << "usage: opine generate --model MODEL --prompt TEXT [--max-new-tokens N]\n"
                 "                      [--temperature T --top-k K --top-p P --seed S]\n\n"
                 "Prints only the generated text, streamed token by token. Temperature 0 is greedy.\n"
                 "Tokenizers: llama2.c tokenizer.bin for now (Hugging Face and GGUF tokenizers\n"
                 "follow).\n\n"
              << format_flags(kFlags);
    return 0;
  }
  OPINE_CHECK(args.positionals().empty(), "unexpected argument '", args.positionals().front(), "'");
  OpineOptions o = resolve_options(
      args, {{"model", "model.path"}, {"tokenizer", "generate.tokenizer"}, {"dtype", "model.dtype"},
             {"device", "model.device"}, {"max-new-tokens", "generate.max_new_tokens"},
             {"temperature", "generate.temperature"}, {"top-k", "generate.top_k"},
             {"top-p", "generate.top_p"}, {"seed", "seed"}});
  OPINE_CHECK(args.has("prompt"), "--prompt is required");
  models::ModelFile file = models::open_model_file(o.model.path);
  OPINE_CHECK(file.format == models::ModelFormat::kLlama2c || !o.generate.tokenizer.empty(),
              "text generation needs a tokenizer; for now only llama2.c tokenizer.bin files are "
              "supported (pass --tokenizer)");
  const std::string tok_path =
      o.generate.tokenizer.empty() ? find_tokenizer(o.model.path, file.config.vocab_size) : o.generate.tokenizer;
  models::Llama2cTokenizer tokenizer(tok_path, file.config.vocab_size);
  models::LlamaModel model = models::load_model(file, load_options(o.model, o.seed));

  models::GenerateOptions g;
  g.max_new_tokens = o.generate.max_new_tokens;
  g.temperature = o.generate.temperature;
  g.top_k = o.generate.top_k;
  g.top_p = o.generate.top_p;
  g.seed = static_cast<uint64_t>(o.seed);
  g.stop_tokens = {models::Llama2cTokenizer::kEos};
  const std::vector<int64_t> prompt = tokenizer.encode(*args.get("prompt"), /*add_bos=*/true);
  int64_t previous = prompt.back();
  models::generate(model, prompt, g, [&](int64_t token) {
    if (token != models::Llama2cTokenizer::kEos) std::cout << tokenizer.decode_piece(previous, token) << std::flush;
    previous = token;
    return true;
  });
  std::cout << "\n";
  return 0;
}

}  // namespace opine::launch
