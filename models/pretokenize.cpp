// Hugging Face's normalizers (NFC/NFD/NFKC/NFKD, Prepend, Replace, Strip, Sequence) and
// pre-tokenizers (Split with its five behaviours, ByteLevel, Metaspace, Digits, Sequence) with the
// tokenizers library's semantics.
#include <algorithm>

#include "models/tokenizer_bpe_internal.h"

namespace opine::models::bpe {

// ---- Normalizers -----------------------------------------------------------------------------

namespace {

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(UnicodeForm form) : form_(form) {}
  void normalize(std::string& text) const override { unicode_normalize(form_, text); }

 private:
  UnicodeForm form_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prepend) : prepend_(std::move(prepend)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prepend_);
  }

 private:
  std::string prepend_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::string literal, std::shared_ptr<const Regex> regex, std::string content)
      : literal_(std::move(literal)), regex_(std::move(regex)), content_(std::move(content)) {}
  void normalize(std::string& text) const override {
    if (regex_) {
      replace_all(text, *regex_, content_);
    } else {
      replace_all(text, literal_, content_);
    }
  }

 private:
  std::string literal_;
  std::shared_ptr<const Regex> regex_;
  std::string content_;
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text) const override {
    size_t begin = 0, end = text.size();
    while (left_ && begin < end && is_unicode_whitespace(utf8_decode(text, begin)))
      begin += utf8_char_len(static_cast<unsigned char>(text[begin]));
    while (right_ && end > begin) {
      size_t last = end - 1;
      while (last > begin && (static_cast<unsigned char>(text[last]) & 0xC0) == 0x80) --last;
      if (!is_unicode_whitespace(utf8_decode(text, last))) break;
      end = last;
    }
    text = text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  void normalize(std::string& text) const override {
    for (const auto& step : steps_) step->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace

std::unique_ptr<Normalizer> make_unicode_normalizer(UnicodeForm form) {
  return std::make_unique<UnicodeNormalizer>(form);
}
std::unique_ptr<Normalizer> make_prepend_normalizer(std::string prepend) {
  return std::make_unique<PrependNormalizer>(std::move(prepend));
}
std::unique_ptr<Normalizer> make_replace_normalizer(std::string literal, std::shared_ptr<const Regex> regex,
                                                    std::string content) {
  return std::make_unique<ReplaceNormalizer>(std::move(literal), std::move(regex), std::move(content));
}
std::unique_ptr<Normalizer> make_strip_normalizer(bool left, bool right) {
  return std::make_unique<StripNormalizer>(left, right);
}
std::unique_ptr<Normalizer> make_sequence_normalizer(std::vector<std::unique_ptr<Normalizer>> steps) {
  return std::make_unique<SequenceNormalizer>(std::move(steps));
}

// ---- Pre-tokenizers --------------------------------------------------------------------------

namespace {

// Cuts `piece` at the matches, then groups matches and the text between them the way `behavior`
// says (the tokenizers library's NormalizedString::split). Empty pieces are dropped.
void split_piece(const Piece& piece, const std::vector<std::pair<size_t, size_t>>& matches,
                 SplitBehavior behavior, bool invert, std::vector<Piece>& out) {
  const std::string& text = piece.text;
  struct Span {
    size_t start, end;
    bool is_match;
  };
  std::vector<Span> spans;
  size_t prev = 0;
  for (const auto& [start, end] : matches) {
    if (start > prev) spans.push_back({prev, start, invert});
    spans.push_back({start, end, !invert});
    prev = end;
  }
  if (prev < text.size()) spans.push_back({prev, text.size(), invert});

  std::vector<std::pair<size_t, size_t>> kept;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const Span& s : spans)
        if (!s.is_match) kept.emplace_back(s.start, s.end);
      break;
    case SplitBehavior::kIsolated:
      for (const Span& s : spans) kept.emplace_back(s.start, s.end);
      break;
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.is_match && !previous_match && !kept.empty()) {
          kept.back().second = s.end;
        } else {
          kept.emplace_back(s.start, s.end);
        }
        previous_match = s.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !kept.empty()) {
          kept.back().first = it->start;
        } else {
          kept.emplace_back(it->start, it->end);
        }
        previous_match = it->is_match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    }
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.is_match == previous_match && !kept.empty()) {
          kept.back().second = s.end;
        } else {
          kept.emplace_back(s.start, s.end);
        }
        previous_match = s.is_match;
      }
      break;
    }
  }
  for (const auto& [start, end] : kept) {
    if (end > start) out.push_back({text.substr(start, end - start), piece.at_start && start == 0});
  }
}

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(std::string literal, std::shared_ptr<const Regex> regex, SplitBehavior behavior,
                    bool invert)
      : literal_(std::move(literal)), regex_(std::move(regex)), behavior_(behavior), invert_(invert) {}
  void split(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size() * 4);
    std::vector<std::pair<size_t, size_t>> matches;
    for (const Piece& piece : pieces) {
      matches.clear();
      find(piece.text, matches);
      split_piece(piece, matches, behavior_, invert_, out);
    }
    pieces = std::move(out);
  }

 private:
  void find(std::string_view text, std::vector<std::pair<size_t, size_t>>& matches) const {
    if (regex_) {
      regex_->find_all(text, matches);
      return;
    }
    if (literal_.empty()) return;
    for (size_t pos = 0; (pos = text.find(literal_, pos)) != std::string_view::npos; pos += literal_.size())
      matches.emplace_back(pos, pos + literal_.size());
  }

  std::string literal_;
  std::shared_ptr<const Regex> regex_;
  SplitBehavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space) {
    if (use_regex) regex_ = std::make_shared<Regex>(gpt2_pattern(), "ByteLevel pre-tokenizer");
  }
  void split(std::vector<Piece>& pieces) const override {
    if (add_prefix_space_) {
      for (Piece& p : pieces)
        if (p.text.empty() || p.text[0] != ' ') p.text.insert(0, " ");
    }
    if (regex_) {
      std::vector<Piece> out;
      out.reserve(pieces.size() * 8);
      std::vector<std::pair<size_t, size_t>> matches;
      for (const Piece& piece : pieces) {
        matches.clear();
        regex_->find_all(piece.text, matches);
        split_piece(piece, matches, SplitBehavior::kIsolated, false, out);
      }
      pieces = std::move(out);
    }
    const ByteAlphabet& alphabet = byte_alphabet();
    for (Piece& p : pieces) {
      std::string spelled;
      spelled.reserve(p.text.size() * 2);
      for (unsigned char c : p.text) spelled += alphabet.spelling[c];
      p.text = std::move(spelled);
    }
  }

 private:
  bool add_prefix_space_;
  std::shared_ptr<const Regex> regex_;
};

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void split(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    std::vector<std::pair<size_t, size_t>> matches;
    for (Piece& piece : pieces) {
      replace_all(piece.text, " ", replacement_);
      const bool starts = piece.text.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts &&
          (scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && piece.at_start)))
        piece.text.insert(0, replacement_);
      if (!split_) {
        if (!piece.text.empty()) out.push_back(std::move(piece));
        continue;
      }
      matches.clear();
      for (size_t pos = 0; (pos = piece.text.find(replacement_, pos)) != std::string::npos;
           pos += replacement_.size())
        matches.emplace_back(pos, pos + replacement_.size());
      split_piece(piece, matches, SplitBehavior::kMergedWithNext, false, out);
    }
    pieces = std::move(out);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  void split(std::vector<Piece>& pieces) const override {
    for (const auto& step : steps_) step->split(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

}  // namespace

const std::string& gpt2_pattern() {
  static const std::string pattern =
      R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
  return pattern;
}

std::unique_ptr<PreTokenizer> make_split(std::string literal, std::shared_ptr<const Regex> regex,
                                         SplitBehavior behavior, bool invert) {
  return std::make_unique<SplitPreTokenizer>(std::move(literal), std::move(regex), behavior, invert);
}
std::unique_ptr<PreTokenizer> make_byte_level(bool add_prefix_space, bool use_regex) {
  return std::make_unique<ByteLevelPreTokenizer>(add_prefix_space, use_regex);
}
std::unique_ptr<PreTokenizer> make_metaspace(std::string replacement, PrependScheme scheme, bool split) {
  return std::make_unique<MetaspacePreTokenizer>(std::move(replacement), scheme, split);
}
std::unique_ptr<PreTokenizer> make_digits(bool individual_digits) {
  // Rust's char::is_numeric is the N categories; each numeric character is its own match, so
  // "individual" isolates them and the other mode joins the neighbours.
  static const auto numeric = std::make_shared<const Regex>(R"(\p{N})", "Digits pre-tokenizer");
  return make_split("", numeric, individual_digits ? SplitBehavior::kIsolated : SplitBehavior::kContiguous,
                    false);
}
std::unique_ptr<PreTokenizer> make_sequence_pre_tokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) {
  return std::make_unique<SequencePreTokenizer>(std::move(steps));
}

}  // namespace opine::models::bpe
