// Which tweet tokens augmentation may touch (declared in data/augment.h).
#include <cstdint>

#include "data/augment.h"

namespace opine::data {
namespace {

// Decodes one UTF-8 code point at `i` (advancing it); a malformed byte is returned as U+FFFD.
char32_t next_code_point(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  int extra = b0 < 0x80 ? 0 : (b0 >> 5) == 0x6 ? 1 : (b0 >> 4) == 0xE ? 2 : (b0 >> 3) == 0x1E ? 3 : -1;
  if (extra < 0 || i + extra >= s.size()) {  // a stray continuation byte or a cut sequence
    ++i;
    return 0xFFFD;
  }
  char32_t cp = extra == 0 ? b0 : b0 & (0x3F >> extra);
  for (int k = 1; k <= extra; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b >> 6) != 0x2) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  i += extra + 1;
  return cp;
}

// Emoji and the pictographic symbols tweets use as emoji (with their joiners and modifiers).
bool is_emoji(char32_t c) {
  return (c >= 0x1F000 && c <= 0x1FAFF) || (c >= 0x2600 && c <= 0x27BF) || (c >= 0x2300 && c <= 0x23FF) ||
         (c >= 0x2B00 && c <= 0x2BFF) || (c >= 0x2190 && c <= 0x21FF) || (c >= 0x25A0 && c <= 0x25FF) ||
         (c >= 0xFE00 && c <= 0xFE0F) || (c >= 0xE0000 && c <= 0xE007F) || c == 0x200D || c == 0x20E3 ||
         c == 0x3030 || c == 0x303D || c == 0x3297 || c == 0x3299 || c == 0x00A9 || c == 0x00AE ||
         c == 0x203C || c == 0x2049 || c == 0x2122 || c == 0x2139 || c == 0x24C2;
}

// A code point that can be part of a word: an ASCII letter, or a non-ASCII one outside the
// punctuation and symbol blocks (letters of other scripts, accented letters).
bool is_word_char(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  if (c == 0xFFFD || is_emoji(c)) return false;
  if (c <= 0xBF || c == 0xD7 || c == 0xF7) return false;             // Latin-1 punctuation and signs
  if (c >= 0x2000 && c <= 0x2BFF) return false;                       // punctuation, currency, symbols
  if ((c >= 0x3000 && c <= 0x303F) || (c >= 0xFF00 && c <= 0xFF20)) return false;  // CJK/fullwidth punctuation
  return true;
}

bool starts_with_ci(std::string_view s, size_t at, std::string_view prefix) {
  if (s.size() - at < prefix.size()) return false;
  for (size_t k = 0; k < prefix.size(); ++k) {
    char c = s[at + k];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[k]) return false;
  }
  return true;
}

bool has_url(std::string_view t) {
  for (size_t i = 0; i < t.size(); ++i)
    if (starts_with_ci(t, i, "http://") || starts_with_ci(t, i, "https://") || starts_with_ci(t, i, "www."))
      return true;
  return false;
}

// "&amp;", "&lt;", "&#39;": TweetEval keeps Twitter's HTML escapes.
bool has_html_entity(std::string_view t) {
  for (size_t amp = t.find('&'); amp != std::string_view::npos; amp = t.find('&', amp + 1)) {
    size_t i = amp + 1;
    if (i < t.size() && t[i] == '#') ++i;
    const size_t start = i;
    while (i < t.size() && ((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') ||
                            (t[i] >= '0' && t[i] <= '9')))
      ++i;
    if (i > start && i < t.size() && t[i] == ';') return true;
  }
  return false;
}

}  // namespace

bool is_protected_token(std::string_view token) {
  // '@' and '#' anywhere: ".@user", "(#SemST)" are still a mention and a hashtag.
  if (token.find('@') != std::string_view::npos || token.find('#') != std::string_view::npos) return true;
  if (has_url(token) || has_html_entity(token)) return true;
  bool word = false;
  for (size_t i = 0; i < token.size();) {
    const char32_t c = next_code_point(token, i);
    if (is_emoji(c)) return true;
    word = word || is_word_char(c);
  }
  return !word;
}

std::vector<std::string> split_tokens(std::string_view text) {
  std::vector<std::string> out;
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && space(text[i])) ++i;
    const size_t start = i;
    while (i < text.size() && !space(text[i])) ++i;
    if (i > start) out.emplace_back(text.substr(start, i - start));
  }
  return out;
}

}  // namespace opine::data
