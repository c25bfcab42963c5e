// Fields of a SentencePiece ModelProto (a serialized protobuf message), read without generated
// protobuf code: the library's headers do not expose the proto, and opine needs only a few fields
// (the normalizer's charsmap and flags, the trainer's model type, each piece's type).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace opine::models::spm_proto {

// Field numbers in sentencepiece_model.proto.
constexpr uint32_t kModelPieces = 1, kModelTrainerSpec = 2, kModelNormalizerSpec = 3;
constexpr uint32_t kPieceType = 3;
constexpr uint32_t kTrainerModelType = 3, kTrainerTreatWhitespaceAsSuffix = 24, kTrainerByteFallback = 35;
constexpr uint32_t kNormalizerCharsmap = 2, kNormalizerAddDummyPrefix = 3,
                   kNormalizerRemoveExtraWhitespaces = 4, kNormalizerEscapeWhitespaces = 5;
// ModelProto.SentencePiece.Type and TrainerSpec.ModelType values.
constexpr uint64_t kNormal = 1, kUserDefined = 4, kUnused = 5, kBpe = 2;

// The last length-delimited field `number` of `msg` (protobuf keeps the last of a repeated scalar).
// `where` names the file in errors.
std::optional<std::string_view> bytes(std::string_view msg, uint32_t number, const std::string& where);
// Every length-delimited field `number`, in order (a repeated message).
std::vector<std::string_view> all_bytes(std::string_view msg, uint32_t number, const std::string& where);
// The last varint field `number` (enums, bools, integers).
std::optional<uint64_t> varint(std::string_view msg, uint32_t number, const std::string& where);

}  // namespace opine::models::spm_proto
