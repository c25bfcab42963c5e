// SentencePiece models (tokenizer.model: Llama-2, Mistral, ...), read by the SentencePiece library.
// A BPE model with byte fallback and no normalization beyond SentencePiece's space handling
// (Llama-2's, and models built like it) is encoded by opine's own merge (models/tokenizer_bpe_models.cpp), which
// gives the library's ids about 4x faster because it splits at words and caches them
// (bench/README.md); any other model is encoded by the library.
#pragma once

#include <memory>
#include <string>

#include "models/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace opine::models {

namespace bpe {
class Model;
}

class SentencePieceTokenizer : public Tokenizer {
 public:
  // `add_bos`/`add_eos`: what add_special adds (Llama: BOS only, as its tokenizer_config says).
  // `library_encoder`: encode with the library even where opine's merge would do (for tests).
  explicit SentencePieceTokenizer(const std::string& path, bool add_bos = true, bool add_eos = false,
                                  bool library_encoder = false);
  ~SentencePieceTokenizer() override;

  std::vector<int64_t> encode(std::string_view text, bool add_special = true) const override;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const override;
  int64_t vocab_size() const override;
  std::optional<int64_t> bos_id() const override;
  std::optional<int64_t> eos_id() const override;
  std::optional<int64_t> pad_id() const override;
  std::optional<int64_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int64_t id) const override;
  std::string kind() const override { return merge_ ? "sentencepiece (bpe, opine's merge)" : "sentencepiece"; }

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::unique_ptr<bpe::Model> merge_;  // null: the library encodes
  bool add_dummy_prefix_ = true;
  std::string path_;
  bool add_bos_, add_eos_;
};

}  // namespace opine::models
