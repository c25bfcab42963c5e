// WordPiece tokenizers (BERT and its relatives: MiniLM, DistilBERT, ...) whose ids match Hugging
// Face `tokenizers`. Two sources:
//
//  * tokenizer.json with model "WordPiece" (read by load_hf_tokenizer_json, models/tokenizer_bpe.h):
//    vocab, unk_token, continuing_subword_prefix, max_input_chars_per_word; normalizer
//    BertNormalizer, pre-tokenizer BertPreTokenizer, decoder WordPiece, post-processor
//    TemplateProcessing / BertProcessing, added tokens. The file's truncation and padding are not
//    read: opine's data pipeline truncates and pads.
//  * vocab.txt, with tokenizer_config.json beside it when there is one (do_lower_case,
//    strip_accents, tokenize_chinese_chars, unk/sep/pad/cls/mask tokens), built as transformers'
//    BertTokenizer builds it: the same normalizer, pre-tokenizer and decoder, [CLS] $A [SEP].
//
// encode(text, true) is [CLS] ... [SEP]; bos_id()/eos_id() are empty (BERT has neither) and
// special_around() is {1, 1}. The Unicode predicates follow the tokenizers library exactly,
// including its Unicode 8.0 character categories (see tokenizer_wordpiece.cpp).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "models/tokenizer.h"

namespace opine::models {

// Hugging Face's BertNormalizer, in its order: clean_text (drop NUL, U+FFFD and control/format
// characters; whitespace to ' '), handle_chinese_chars (spaces around CJK ideographs),
// strip_accents (NFD, then nonspacing marks dropped), lowercase.
struct BertNormalizerOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  std::optional<bool> strip_accents;  // unset: follows lowercase, as in the original BERT
  bool lowercase = true;
};
// `text` must be valid UTF-8.
std::string bert_normalize(std::string_view text, const BertNormalizerOptions& options);

// BertPreTokenizer's punctuation: ASCII 33-47, 58-64, 91-96, 123-126 and Unicode category P*.
bool is_bert_punctuation(char32_t cp);

// vocab.txt (one token a line, the line number its id), reading tokenizer_config.json in the same
// folder when it is there.
std::unique_ptr<Tokenizer> load_wordpiece_vocab(const std::string& vocab_txt);

}  // namespace opine::models
