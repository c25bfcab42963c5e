// Text to token ids and back. One interface over every tokenizer format opine reads:
// SentencePiece models, Hugging Face tokenizer.json, vocab.json + merges.txt, GGUF metadata,
// llama2.c tokenizer.bin, and the encoders' WordPiece vocab.txt and XLM-R sentencepiece.bpe.model.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace opine::models {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // `add_special`: add what the tokenizer adds around a text by default (BOS for Llama-2 and
  // SentencePiece models, nothing for GPT-2/Qwen2/SmolLM2), like HF's add_special_tokens=True.
  // Special tokens written in the text ("<|im_start|>") are recognised as single tokens.
  // Invalid UTF-8 input is an opine::Error.
  virtual std::vector<int64_t> encode(std::string_view text, bool add_special = true) const = 0;
  // Bytes of the ids, joined as the tokenizer's decoder does; `skip_special` drops special tokens.
  virtual std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const = 0;

  virtual int64_t vocab_size() const = 0;
  virtual std::optional<int64_t> bos_id() const = 0;
  virtual std::optional<int64_t> eos_id() const = 0;
  virtual std::optional<int64_t> pad_id() const { return std::nullopt; }
  virtual std::optional<int64_t> token_to_id(std::string_view token) const = 0;
  virtual std::string id_to_token(int64_t id) const = 0;
  // What the file says about its format ("sentencepiece", "bpe (byte-level)", ...).
  virtual std::string kind() const = 0;
  // How many tokens encode(text, true) puts before and after the text's own: {1, 1} for BERT's
  // [CLS] ... [SEP] and XLM-R's <s> ... </s>. Truncation keeps them. The decoders' tokenizers
  // answer {0, 0} and the pipeline keeps their BOS by its id.
  virtual std::pair<int, int> special_around() const { return {0, 0}; }

  // Many texts at once, over `threads` threads (0 = all cores); same result as encode() each.
  std::vector<std::vector<int64_t>> encode_batch(const std::vector<std::string>& texts, bool add_special = true,
                                                 int threads = 0) const;
};

// Decodes ids one at a time for streaming: returns the text that is complete so far and holds
// back the bytes of a UTF-8 character that later tokens will finish.
class StreamDecoder {
 public:
  // `context`: tokens before the streamed ones (the prompt's last few), so a leading space that
  // decoders drop at the start of a text is kept.
  explicit StreamDecoder(const Tokenizer& tokenizer, std::vector<int64_t> context = {});
  std::string push(int64_t id);
  std::string finish();  // whatever is left, invalid bytes replaced by U+FFFD

 private:
  const Tokenizer& tokenizer_;
  std::vector<int64_t> ids_;
  size_t emitted_ = 0;  // bytes of decode(ids_) already returned
};

// Throws opine::Error (kUser) naming the byte offset of the first invalid UTF-8 sequence
// (overlong forms, surrogates and code points past U+10FFFF count as invalid). Every encode()
// calls it first.
void check_utf8(std::string_view text);

// Opens a tokenizer from a file or a folder: tokenizer.json (BPE, WordPiece; Unigram with XLM-R's
// sentencepiece.bpe.model beside it), vocab.json + merges.txt, tokenizer.model (SentencePiece),
// sentencepiece.bpe.model (XLM-R), vocab.txt (WordPiece), a .gguf file, or a llama2.c
// tokenizer.bin (needs vocab_size).
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path, std::optional<int64_t> vocab_size = {});

}  // namespace opine::models
