#include "models/tokenizer_spm.h"

#include <sentencepiece_processor.h>

#include "core/error.h"

namespace opine::models {

namespace {
std::optional<int64_t> id_or_none(int id) { return id >= 0 ? std::optional<int64_t>(id) : std::nullopt; }
}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& path, bool add_bos, bool add_eos)
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()), path_(path), add_bos_(add_bos),
      add_eos_(add_eos) {
  const auto status = sp_->Load(path);
  OPINE_CHECK_FORMAT(status.ok(), path, ": not a SentencePiece model: ", status.ToString());
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<int64_t> SentencePieceTokenizer::encode(std::string_view text, bool add_special) const {
  check_utf8(text);
  std::vector<int> pieces;
  const auto status = sp_->Encode(text, &pieces);
  OPINE_CHECK(status.ok(), "SentencePiece could not encode the text: ", status.ToString());
  std::vector<int64_t> ids;
  ids.reserve(pieces.size() + 2);
  if (add_special && add_bos_ && sp_->bos_id() >= 0) ids.push_back(sp_->bos_id());
  ids.insert(ids.end(), pieces.begin(), pieces.end());
  if (add_special && add_eos_ && sp_->eos_id() >= 0) ids.push_back(sp_->eos_id());
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  // The library drops control tokens (<s>, </s>); keep them as text unless asked to skip, as
  // transformers does, by decoding the runs between them.
  std::string out;
  std::vector<int> run;
  auto flush = [&] {
    if (run.empty()) return;
    std::string text;
    const auto status = sp_->Decode(run, &text);
    OPINE_CHECK(status.ok(), "SentencePiece could not decode: ", status.ToString());
    out += text;
    run.clear();
  };
  for (int64_t id : ids) {
    OPINE_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " outside the vocabulary of ", vocab_size());
    if (sp_->IsControl(static_cast<int>(id))) {
      flush();
      if (!skip_special) out += sp_->IdToPiece(static_cast<int>(id));
    } else {
      run.push_back(static_cast<int>(id));
    }
  }
  flush();
  return out;
}

int64_t SentencePieceTokenizer::vocab_size() const { return sp_->GetPieceSize(); }
std::optional<int64_t> SentencePieceTokenizer::bos_id() const { return id_or_none(sp_->bos_id()); }
std::optional<int64_t> SentencePieceTokenizer::eos_id() const { return id_or_none(sp_->eos_id()); }
std::optional<int64_t> SentencePieceTokenizer::pad_id() const { return id_or_none(sp_->pad_id()); }

std::optional<int64_t> SentencePieceTokenizer::token_to_id(std::string_view token) const {
  const int id = sp_->PieceToId(token);
  // PieceToId answers unk for unknown pieces; only the unk piece itself maps to it.
  if (id == sp_->unk_id() && token != sp_->IdToPiece(id)) return std::nullopt;
  return id;
}

std::string SentencePieceTokenizer::id_to_token(int64_t id) const {
  OPINE_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " outside the vocabulary of ", vocab_size());
  return sp_->IdToPiece(static_cast<int>(id));
}

}  // namespace opine::models
