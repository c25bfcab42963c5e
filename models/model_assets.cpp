#include "models/model_assets.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "models/gguf.h"
#include "models/tokenizer_llama2c.h"
#include "models/tokenizer_bpe.h"

namespace opine::models {

namespace fs = std::filesystem;

std::unique_ptr<Tokenizer> load_model_tokenizer(const ModelFile& model, const std::string& tokenizer_path) {
  if (!tokenizer_path.empty()) return load_tokenizer(tokenizer_path, model.config.vocab_size);
  switch (model.format) {
    case ModelFormat::kHuggingFace:
      return load_tokenizer(model.path);
    case ModelFormat::kGguf:
      return load_gguf_tokenizer(gguf::File::open(model.path));
    case ModelFormat::kLlama2c: {
      const fs::path dir = fs::path(model.path).parent_path();
      for (const fs::path& p : {dir / ("tok" + std::to_string(model.config.vocab_size) + ".bin"), dir / "tokenizer.bin"})
        if (fs::exists(p)) return std::make_unique<Llama2cTokenizer>(p.string(), model.config.vocab_size);
      throw Error(ErrorKind::kUser, "no tokenizer.bin or tok" + std::to_string(model.config.vocab_size) +
                                        ".bin beside " + model.path + "; pass --tokenizer FILE");
    }
  }
  return nullptr;
}

std::optional<ChatTemplate> load_model_chat_template(const ModelFile& model, const Tokenizer& tokenizer) {
  std::string jinja, source;
  if (model.format == ModelFormat::kGguf) {
    gguf::File g = gguf::File::open(model.path);
    if (auto t = g.get_string("tokenizer.chat_template")) jinja = *t, source = model.path;
  } else if (model.format == ModelFormat::kHuggingFace) {
    const fs::path dir(model.path);
    if (fs::exists(dir / "chat_template.jinja")) {
      std::ifstream in(dir / "chat_template.jinja");
      std::stringstream s;
      s << in.rdbuf();
      jinja = s.str(), source = (dir / "chat_template.jinja").string();
    } else if (fs::exists(dir / "tokenizer_config.json")) {
      std::ifstream in(dir / "tokenizer_config.json");
      const auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.contains("chat_template") && j.at("chat_template").is_string())
        jinja = j.at("chat_template").get<std::string>(), source = (dir / "tokenizer_config.json").string();
    }
  }
  if (jinja.empty()) return std::nullopt;
  auto piece = [&](std::optional<int64_t> id, const char* fallback) {
    return id ? tokenizer.id_to_token(*id) : std::string(fallback);
  };
  return ChatTemplate::from_jinja(jinja, source, piece(tokenizer.bos_id(), "<s>"), piece(tokenizer.eos_id(), "</s>"));
}

}  // namespace opine::models
