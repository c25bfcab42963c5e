// XLM-RoBERTa's tokenizer: its SentencePiece unigram model (sentencepiece.bpe.model) with fairseq's
// ids, as transformers' XLMRobertaTokenizer lays them out:
//
//   <s> = 0, <pad> = 1, </s> = 2, <unk> = 3, SentencePiece piece i >= 3 -> i + 1,
//   <mask> = the last id (pieces + 1); vocab_size() = pieces + 2.
//
// The sentencepiece library reads the model (pieces, scores, the normalization charsmap). Encoding
// is the tokenizers library's pipeline that transformers' XLMRobertaTokenizer builds (whatever
// pipeline a tokenizer.json beside the model spells out, transformers builds its own), and opine
// matches its ids: the charsmap applied per grapheme cluster ("Precompiled"), WhitespaceSplit,
// Metaspace (always a "▁" before each word) and the Unigram Viterbi with its tie-breaking. The
// sentencepiece library's own Encode() differs from it on a few texts: equal-score segmentations
// of repeated characters ("OOOO" as O + OOO or OOO + O), and marks after Arabic presentation
// forms, which the grapheme lookup drops.
//
// encode(text, true) is <s> ... </s>; the special tokens (<s>, <pad>, </s>, <unk>, <mask>) written
// in a text are single tokens. special_around() is {1, 1}.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "models/tokenizer.h"

namespace opine::models {

// `spm_model`: the sentencepiece.bpe.model. The added tokens' flags (lstrip for <mask>, ...) come
// from tokenizer_config.json's added_tokens_decoder in the same folder when it is there.
std::unique_ptr<Tokenizer> load_xlmr_tokenizer(const std::string& spm_model);
// The same, with the tokenizer.json beside it already parsed (null: none): its added tokens' flags,
// and its pieces' scores, which transformers reads from there (they can be a float64 ulp off the
// model's float32 scores); its pieces must be the model's.
std::unique_ptr<Tokenizer> load_xlmr_tokenizer(const std::string& spm_model,
                                               const nlohmann::json& tokenizer_json);

}  // namespace opine::models
