// Byte-level and SentencePiece-style BPE tokenizers whose ids match Hugging Face `tokenizers`
// (and llama.cpp for GGUF vocabularies). Three sources:
//
//  * tokenizer.json: model BPE (merges as "a b" or [a, b]; byte_fallback, ignore_merges,
//    fuse_unk, unk_token, continuing_subword_prefix / end_of_word_suffix); normalizers NFC, NFD,
//    NFKC, NFKD, Prepend, Replace, Strip, Sequence; pre-tokenizers ByteLevel, Split, Metaspace,
//    Digits, Sequence; post-processors TemplateProcessing, ByteLevel, Roberta/BertProcessing,
//    Sequence; decoders ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence; added
//    tokens (special or not, lstrip/rstrip/single_word/normalized), matched before the model,
//    leftmost-longest. Also model WordPiece with BertNormalizer, BertPreTokenizer and the
//    WordPiece decoder (models/tokenizer_wordpiece.h); a Unigram model is read as XLM-R from the
//    sentencepiece.bpe.model beside the file (models/tokenizer_xlmr.h). Anything else is an
//    opine::Error (kFormat) naming the component and file.
//    A tokenizer_config.json beside it adds its added_tokens_decoder, names BOS/EOS/PAD and, when
//    it states add_bos_token / add_eos_token, decides what add_special puts around a text.
//  * vocab.json + merges.txt (GPT-2, Qwen2): byte-level BPE with the model family's pre-tokenizer
//    regex, picked by tokenizer_config.json's tokenizer_class (GPT-2's when there is none) or
//    given explicitly; added tokens from tokenizer_config.json / added_tokens.json /
//    special_tokens_map.json in the same folder. merges.txt may have CRLF line ends.
//  * GGUF metadata: tokenizer.ggml.model "gpt2" (byte-level BPE, pre-tokenizer regexes chosen by
//    tokenizer.ggml.pre as llama.cpp does) or "llama" (llama.cpp's SentencePiece algorithm over
//    tokens/scores with <0xXX> byte tokens).
//
// Regexes run on PCRE2 (UTF + UCP, JIT), Unicode normalization on ICU. encode() is thread-safe:
// the per-word cache is sharded behind mutexes and regex match state is thread-local.
#pragma once

#include <memory>
#include <string>

#include "models/tokenizer.h"

namespace opine::gguf {
class File;
}

namespace opine::models {

// tokenizer.json; also reads tokenizer_config.json in the same folder when it is there.
std::unique_ptr<Tokenizer> load_hf_tokenizer_json(const std::string& path);

// Which pre-tokenizer a vocab.json + merges.txt pair gets: kAuto reads tokenizer_config.json's
// tokenizer_class (GPT2Tokenizer -> kGpt2, Qwen2Tokenizer -> kQwen2; absent -> kGpt2; any other
// class is an error). kQwen2 also NFC-normalizes, as transformers' Qwen2Tokenizer does.
enum class VocabMergesStyle { kAuto, kGpt2, kQwen2 };
std::unique_ptr<Tokenizer> load_vocab_merges(const std::string& vocab_json, const std::string& merges_txt,
                                             VocabMergesStyle style = VocabMergesStyle::kAuto);

// The tokenizer a GGUF file's metadata describes.
std::unique_ptr<Tokenizer> load_gguf_tokenizer(const gguf::File& file);

}  // namespace opine::models
