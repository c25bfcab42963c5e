// SentencePiece models (tokenizer.model: Llama-2, Mistral, ...) through the SentencePiece library,
// so ids are the library's own.
#pragma once

#include <memory>
#include <string>

#include "models/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace opine::models {

class SentencePieceTokenizer : public Tokenizer {
 public:
  // `add_bos`/`add_eos`: what add_special adds (Llama: BOS only, as its tokenizer_config says).
  explicit SentencePieceTokenizer(const std::string& path, bool add_bos = true, bool add_eos = false);
  ~SentencePieceTokenizer() override;

  std::vector<int64_t> encode(std::string_view text, bool add_special = true) const override;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const override;
  int64_t vocab_size() const override;
  std::optional<int64_t> bos_id() const override;
  std::optional<int64_t> eos_id() const override;
  std::optional<int64_t> pad_id() const override;
  std::optional<int64_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int64_t id) const override;
  std::string kind() const override { return "sentencepiece"; }

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::string path_;
  bool add_bos_, add_eos_;
};

}  // namespace opine::models
