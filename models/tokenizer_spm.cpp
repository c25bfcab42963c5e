#include "models/tokenizer_spm.h"

#include <sentencepiece_processor.h>

#include "core/error.h"
#include "models/spm_proto.h"
#include "models/tokenizer_bpe_internal.h"

namespace opine::models {

namespace {
std::optional<int64_t> id_or_none(int id) { return id >= 0 ? std::optional<int64_t>(id) : std::nullopt; }

// Whether the library's encoding of this model is exactly opine's merge over the text with spaces
// written as ▁: a BPE model, byte fallback for unknown characters, no normalization table, spaces
// kept as they are, no user-defined or unused pieces (which the library matches or re-splits
// specially). Sets `add_dummy_prefix`.
bool merge_encodes(const sentencepiece::SentencePieceProcessor& sp, const std::string& path, bool& add_dummy_prefix) {
  namespace pb = spm_proto;
  const std::string proto = sp.serialized_model_proto();
  const std::string_view trainer = pb::bytes(proto, pb::kModelTrainerSpec, path).value_or("");
  const std::string_view normalizer = pb::bytes(proto, pb::kModelNormalizerSpec, path).value_or("");
  // Absent fields take sentencepiece_model.proto's defaults.
  if (pb::varint(trainer, pb::kTrainerModelType, path).value_or(1) != pb::kBpe) return false;
  if (!pb::varint(trainer, pb::kTrainerByteFallback, path).value_or(0)) return false;
  if (pb::varint(trainer, pb::kTrainerTreatWhitespaceAsSuffix, path).value_or(0)) return false;
  if (!pb::bytes(normalizer, pb::kNormalizerCharsmap, path).value_or("").empty()) return false;
  if (pb::varint(normalizer, pb::kNormalizerRemoveExtraWhitespaces, path).value_or(1)) return false;
  if (!pb::varint(normalizer, pb::kNormalizerEscapeWhitespaces, path).value_or(1)) return false;
  add_dummy_prefix = pb::varint(normalizer, pb::kNormalizerAddDummyPrefix, path).value_or(1) != 0;
  for (std::string_view piece : pb::all_bytes(proto, pb::kModelPieces, path)) {
    const uint64_t type = pb::varint(piece, pb::kPieceType, path).value_or(pb::kNormal);
    if (type == pb::kUserDefined || type == pb::kUnused) return false;
  }
  return true;
}
}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& path, bool add_bos, bool add_eos,
                                               bool library_encoder)
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()), path_(path), add_bos_(add_bos),
      add_eos_(add_eos) {
  const auto status = sp_->Load(path);
  OPINE_CHECK_FORMAT(status.ok(), path, ": not a SentencePiece model: ", status.ToString());
  if (library_encoder || !merge_encodes(*sp_, path, add_dummy_prefix_)) return;
  const int n = sp_->GetPieceSize();
  std::vector<std::string> vocab(n);
  std::vector<float> scores(n);
  std::vector<bool> text_pieces(n);
  for (int id = 0; id < n; ++id) {
    vocab[id] = sp_->IdToPiece(id);
    scores[id] = sp_->GetScore(id);
    text_pieces[id] = !sp_->IsControl(id) && !sp_->IsUnknown(id) && !sp_->IsByte(id);
  }
  merge_ = bpe::make_spm_model(std::move(vocab), std::move(scores), id_or_none(sp_->unk_id()), std::move(text_pieces));
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<int64_t> SentencePieceTokenizer::encode(std::string_view text, bool add_special) const {
  check_utf8(text);
  std::vector<int64_t> ids;
  if (add_special && add_bos_ && sp_->bos_id() >= 0) ids.push_back(sp_->bos_id());
  if (merge_) {
    // The library's normalization for such a model: ▁ before non-empty text, every space as ▁.
    if (!text.empty()) {
      std::string normalized = (add_dummy_prefix_ ? std::string(bpe::kMetaspace) : std::string()) + std::string(text);
      bpe::replace_all(normalized, " ", bpe::kMetaspace);
      merge_->tokenize(normalized, ids);
    }
  } else {
    std::vector<int> pieces;
    const auto status = sp_->Encode(text, &pieces);
    OPINE_CHECK(status.ok(), "SentencePiece could not encode the text: ", status.ToString());
    ids.insert(ids.end(), pieces.begin(), pieces.end());
  }
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
