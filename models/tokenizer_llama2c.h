// llama2.c's tokenizer.bin: a SentencePiece-style vocabulary (pieces with merge scores, byte
// fallback tokens <0x00>..<0xFF> at ids 3..258) encoded by greedy highest-score pair merging, as
// run.c does. Used by the llama2.c checkpoints (stories260K's tok512.bin).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace opine::models {

class Llama2cTokenizer {
 public:
  // `vocab_size` comes from the model: the file does not store it.
  Llama2cTokenizer(const std::string& path, int64_t vocab_size);

  std::vector<int64_t> encode(const std::string& text, bool add_bos) const;
  // The text of `id` when it follows `previous` (a leading space after BOS is dropped; byte
  // tokens become their byte).
  std::string decode_piece(int64_t previous, int64_t id) const;
  std::string decode(const std::vector<int64_t>& ids) const;
  int64_t vocab_size() const { return static_cast<int64_t>(pieces_.size()); }

  static constexpr int64_t kBos = 1;
  static constexpr int64_t kEos = 2;

 private:
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::unordered_map<std::string, int64_t> ids_;
};

}  // namespace opine::models
