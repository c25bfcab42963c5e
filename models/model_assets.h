// What comes with a model besides its weights: its tokenizer and its chat template, found where
// each format keeps them (a Hugging Face folder's files, GGUF metadata, a llama2.c tokenizer.bin
// beside the checkpoint).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "models/chat_template.h"
#include "models/loader.h"
#include "models/tokenizer.h"

namespace opine::models {

// `tokenizer_path` (a file or folder) wins when given; otherwise the model's own.
std::unique_ptr<Tokenizer> load_model_tokenizer(const ModelFile& model, const std::string& tokenizer_path = "");

// The template the model declares (tokenizer_config.json / chat_template.jinja / GGUF
// tokenizer.chat_template); nullopt when it declares none. `tokenizer` names BOS/EOS for Llama-2.
std::optional<ChatTemplate> load_model_chat_template(const ModelFile& model, const Tokenizer& tokenizer);

}  // namespace opine::models
