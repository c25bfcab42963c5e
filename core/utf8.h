// UTF-8 encoding of one code point, shared by the tokenizers and the data readers, and the
// repair of broken UTF-8 (a generated text may end inside a character).
#pragma once

#include <algorithm>
#include <string>

namespace opine {

inline void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6));
    out += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += char(0xE0 | (c >> 12));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  } else {
    out += char(0xF0 | (c >> 18));
    out += char(0x80 | ((c >> 12) & 0x3F));
    out += char(0x80 | ((c >> 6) & 0x3F));
    out += char(0x80 | (c & 0x3F));
  }
}

// `bytes` with each maximal invalid subsequence replaced by U+FFFD, as the Unicode standard
// recommends and Python's decode(errors="replace") and Rust's from_utf8_lossy (HF tokenizers'
// decode) do.
inline std::string to_valid_utf8(const std::string& bytes) {
  std::string out;
  const size_t n = bytes.size();
  auto at = [&](size_t i) { return static_cast<unsigned char>(bytes[i]); };
  for (size_t i = 0; i < n;) {
    const unsigned char b = at(i);
    if (b < 0x80) {
      out += char(b);
      ++i;
      continue;
    }
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (b >= 0xC2 && b <= 0xDF) need = 1;
    else if (b >= 0xE0 && b <= 0xEF) need = 2, lo = b == 0xE0 ? 0xA0 : 0x80, hi = b == 0xED ? 0x9F : 0xBF;
    else if (b >= 0xF0 && b <= 0xF4) need = 3, lo = b == 0xF0 ? 0x90 : 0x80, hi = b == 0xF4 ? 0x8F : 0xBF;
    size_t good = 0;  // continuation bytes that fit
    while (good < need && i + 1 + good < n) {
      const unsigned char c = at(i + 1 + good);
      if (good == 0 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) break;
      ++good;
    }
    if (need > 0 && good == need) {
      out.append(bytes, i, need + 1);
    } else {
      out += "\xEF\xBF\xBD";
    }
    i += need > 0 && good == need ? need + 1 : std::max<size_t>(1, good + (need > 0 ? 1 : 0));
  }
  return out;
}

}  // namespace opine
