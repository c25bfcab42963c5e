// llama2.c's tokenizer.bin: a SentencePiece-style vocabulary (pieces with merge scores, byte
// fallback tokens <0x00>..<0xFF> at ids 3..258) encoded by greedy highest-score pair merging, as
// run.c does. Used by the llama2.c checkpoints (stories260K's tok512.bin).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "models/tokenizer.h"

namespace opine::models {

class Llama2cTokenizer : public Tokenizer {
 public:
  // `vocab_size` comes from the model: the file does not store it.
  Llama2cTokenizer(const std::string& path, int64_t vocab_size);

  // add_special adds BOS, as run.c does.
  std::vector<int64_t> encode(std::string_view text, bool add_special = true) const override;
  // The text of `id` when it follows `previous` (a leading space after BOS is dropped; byte
  // tokens become their byte).
  std::string decode_piece(int64_t previous, int64_t id) const;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(pieces_.size()); }
  std::optional<int64_t> bos_id() const override { return kBos; }
  std::optional<int64_t> eos_id() const override { return kEos; }
  std::optional<int64_t> token_to_id(std::string_view token) const override;
  std::string id_to_token(int64_t id) const override;
  std::string kind() const override { return "llama2.c tokenizer.bin"; }

  static constexpr int64_t kBos = 1;
  static constexpr int64_t kEos = 2;

 private:
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int64_t> ids_;
};

}  // namespace opine::models
