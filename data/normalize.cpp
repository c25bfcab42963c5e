#include "data/normalize.h"

#include <cctype>
#include <cstring>
#include <utility>

#include "core/utf8.h"

namespace opine::data {

namespace {

// The named entities tweets carry (the API escapes &amp; &lt; &gt;; the rest come from pasted HTML).
constexpr std::pair<const char*, char32_t> kNamedEntities[] = {
    {"amp", '&'},       {"lt", '<'},        {"gt", '>'},        {"quot", '"'},      {"apos", '\''},
    {"nbsp", 0xA0},     {"hellip", 0x2026}, {"mdash", 0x2014},  {"ndash", 0x2013},  {"lsquo", 0x2018},
    {"rsquo", 0x2019},  {"ldquo", 0x201C},  {"rdquo", 0x201D},  {"copy", 0xA9},     {"reg", 0xAE},
    {"trade", 0x2122},  {"euro", 0x20AC},   {"pound", 0xA3},    {"laquo", 0xAB},    {"raquo", 0xBB},
    {"deg", 0xB0},      {"middot", 0xB7},   {"bull", 0x2022},   {"times", 0xD7},    {"eacute", 0xE9},
};

// Python's str.isspace() set, as UTF-8 sequences.
size_t whitespace_length(const std::string& s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b == ' ' || (b >= 0x09 && b <= 0x0D) || (b >= 0x1C && b <= 0x1F)) return 1;
  auto at = [&](const char* seq) { return s.compare(i, std::strlen(seq), seq) == 0; };
  if (at("\xC2\x85") || at("\xC2\xA0")) return 2;
  if (at("\xE1\x9A\x80") || at("\xE2\x80\xA8") || at("\xE2\x80\xA9") || at("\xE2\x80\xAF") ||
      at("\xE2\x81\x9F") || at("\xE3\x80\x80"))
    return 3;
  if (b == 0xE2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
      static_cast<unsigned char>(s[i + 2]) >= 0x80 && static_cast<unsigned char>(s[i + 2]) <= 0x8A)
    return 3;  // U+2000..U+200A
  return 0;
}

bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "BlackLivesMatter2020" -> "Black Lives Matter 2020"; "NASAData" -> "NASA Data"; "a_b" -> "a b".
std::string split_hashtag(const std::string& tag) {
  std::string out;
  for (size_t i = 0; i < tag.size(); ++i) {
    const char c = tag[i];
    if (c == '_') {
      if (!out.empty() && out.back() != ' ') out += ' ';
      continue;
    }
    if (!out.empty() && out.back() != ' ') {
      const char p = tag[i - 1];
      const bool next_lower = i + 1 < tag.size() && is_lower(tag[i + 1]);
      if ((is_upper(c) && (is_lower(p) || (is_upper(p) && next_lower))) || (is_digit(c) != is_digit(p) &&
                                                                             (is_digit(c) || is_digit(p))))
        out += ' ';
    }
    out += c;
  }
  return out;
}

}  // namespace

std::string decode_html_entities(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '&') {
      out += text[i];
      continue;
    }
    const size_t semi = text.find(';', i + 1);
    if (semi == std::string::npos || semi - i > 12) {
      out += '&';
      continue;
    }
    const std::string name = text.substr(i + 1, semi - i - 1);
    char32_t code = 0;
    if (name.size() > 1 && name[0] == '#') {
      const bool hex = name[1] == 'x' || name[1] == 'X';
      const std::string digits = name.substr(hex ? 2 : 1);
      bool ok = !digits.empty();
      for (char d : digits) ok = ok && (hex ? std::isxdigit(static_cast<unsigned char>(d)) : is_digit(d));
      if (ok) code = char32_t(std::stoul(digits, nullptr, hex ? 16 : 10));
      if (code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) code = 0xFFFD;  // as html.unescape
    } else {
      for (const auto& [entity, value] : kNamedEntities)
        if (name == entity) code = value;
    }
    if (code == 0) {
      out += '&';
      continue;
    }
    append_utf8(out, code);
    i = semi;
  }
  return out;
}

std::string replace_mentions_and_urls(const std::string& text, bool mentions, bool urls) {
  // Token by token on single spaces, exactly as the cardiffnlp models' preprocessing.
  std::string out;
  out.reserve(text.size());
  size_t start = 0;
  while (true) {
    const size_t end = std::min(text.find(' ', start), text.size());
    const std::string_view token(text.data() + start, end - start);
    if (mentions && token.size() > 1 && token[0] == '@') {
      out += "@user";
    } else if (urls && token.substr(0, 4) == "http") {
      out += "http";
    } else {
      out += token;
    }
    if (end >= text.size()) break;
    out += ' ';
    start = end + 1;
  }
  return out;
}

std::string segment_hashtags(const std::string& text, bool keep_words_only) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const bool starts_tag = text[i] == '#' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\n') &&
                            i + 1 < text.size() && (std::isalnum(static_cast<unsigned char>(text[i + 1])) || text[i + 1] == '_');
    if (!starts_tag) {
      out += text[i++];
      continue;
    }
    size_t end = i + 1;
    while (end < text.size() && (std::isalnum(static_cast<unsigned char>(text[end])) || text[end] == '_')) ++end;
    const std::string tag = text.substr(i + 1, end - i - 1);
    out += keep_words_only ? tag : split_hashtag(tag);
    i = end;
  }
  return out;
}

std::string collapse_whitespace(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  bool pending = false;
  for (size_t i = 0; i < text.size();) {
    if (const size_t n = whitespace_length(text, i)) {
      pending = !out.empty();
      i += n;
      continue;
    }
    if (pending) out += ' ';
    pending = false;
    out += text[i++];
  }
  return out;
}

std::string normalize(const std::string& text, const NormalizeOptions& o) {
  std::string s = o.html_entities ? decode_html_entities(text) : text;
  if (o.mentions || o.urls) s = replace_mentions_and_urls(s, o.mentions, o.urls);
  if (o.hashtags != "keep") s = segment_hashtags(s, o.hashtags == "strip");
  if (o.whitespace) s = collapse_whitespace(s);
  if (o.lowercase)
    for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace opine::data
