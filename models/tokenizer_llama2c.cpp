#include "models/tokenizer_llama2c.h"

#include <cstring>
#include <fstream>

#include "core/error.h"

namespace opine::models {

Llama2cTokenizer::Llama2cTokenizer(const std::string& path, int64_t vocab_size) {
  std::ifstream in(path, std::ios::binary);
  OPINE_CHECK_KIND(in.good(), ErrorKind::kIo, "cannot open tokenizer ", path);
  int32_t max_len = 0;
  in.read(reinterpret_cast<char*>(&max_len), 4);
  OPINE_CHECK_FORMAT(in.good() && max_len > 0 && max_len < 4096, path,
                     ": not a llama2.c tokenizer.bin (bad max token length)");
  for (int64_t i = 0; i < vocab_size; ++i) {
    float score = 0;
    int32_t len = 0;
    in.read(reinterpret_cast<char*>(&score), 4);
    in.read(reinterpret_cast<char*>(&len), 4);
    OPINE_CHECK_FORMAT(in.good() && len >= 0 && len <= max_len, path, ": token ", i,
                       " is truncated or longer than the declared maximum (", max_len, ")");
    std::string piece(len, '\0');
    in.read(piece.data(), len);
    OPINE_CHECK_FORMAT(in.good(), path, ": truncated at token ", i, " of ", vocab_size);
    pieces_.push_back(piece);
    scores_.push_back(score);
    ids_.emplace(piece, i);
  }
  OPINE_CHECK_FORMAT(vocab_size > 258, path, ": vocabulary of ", vocab_size, " lacks the byte tokens");
}

std::vector<int64_t> Llama2cTokenizer::encode(std::string_view text_view, bool add_bos) const {
  check_utf8(text_view);
  const std::string text(text_view);
  std::vector<int64_t> tokens;
  if (add_bos) tokens.push_back(kBos);
  if (text.empty()) return tokens;
  // SentencePiece's dummy prefix: the text starts with a space.
  auto space = ids_.find(" ");
  if (space != ids_.end()) tokens.push_back(space->second);
  // One token per UTF-8 character, or its bytes (ids 3 + byte) when it has no piece.
  for (size_t i = 0; i < text.size();) {
    size_t n = 1;
    while (i + n < text.size() && n < 4 && (static_cast<unsigned char>(text[i + n]) & 0xC0) == 0x80) ++n;
    auto it = ids_.find(text.substr(i, n));
    if (it != ids_.end()) {
      tokens.push_back(it->second);
    } else {
      for (size_t b = 0; b < n; ++b) tokens.push_back(static_cast<unsigned char>(text[i + b]) + 3);
    }
    i += n;
  }
  // Merge the adjacent pair whose union has the best score until none is in the vocabulary.
  const size_t first = add_bos ? 1 : 0;
  while (true) {
    float best = -1e10f;
    int64_t best_id = -1;
    size_t best_at = 0;
    for (size_t i = first; i + 1 < tokens.size(); ++i) {
      auto it = ids_.find(pieces_[tokens[i]] + pieces_[tokens[i + 1]]);
      if (it != ids_.end() && scores_[it->second] > best) {
        best = scores_[it->second];
        best_id = it->second;
        best_at = i;
      }
    }
    if (best_id < 0) break;
    tokens[best_at] = best_id;
    tokens.erase(tokens.begin() + best_at + 1);
  }
  return tokens;
}

std::string Llama2cTokenizer::decode_piece(int64_t previous, int64_t id) const {
  OPINE_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " outside the vocabulary of ", vocab_size());
  std::string piece = pieces_[id];
  if (previous == kBos && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
  unsigned int byte = 0;
  if (piece.size() == 6 && std::sscanf(piece.c_str(), "<0x%02X>", &byte) == 1) return std::string(1, char(byte));
  return piece;
}

std::string Llama2cTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  std::string out;
  int64_t previous = kBos;
  for (int64_t id : ids) {
    if (!(skip_special && (id == kBos || id == kEos))) out += decode_piece(previous, id);
    previous = id;
  }
  return out;
}

}  // namespace opine::models

namespace opine::models {

std::optional<int64_t> Llama2cTokenizer::token_to_id(std::string_view token) const {
  auto it = ids_.find(std::string(token));
  return it == ids_.end() ? std::nullopt : std::optional<int64_t>(it->second);
}

std::string Llama2cTokenizer::id_to_token(int64_t id) const {
  OPINE_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " outside the vocabulary of ", vocab_size());
  return pieces_[id];
}

}  // namespace opine::models
