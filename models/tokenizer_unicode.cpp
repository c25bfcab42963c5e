// Text utilities of the BPE tokenizers: UTF-8, GPT-2's byte alphabet, PCRE2 regexes (UTF + UCP,
// JIT, thread-local match state) and ICU normalization.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>

#include <algorithm>

#include "core/error.h"
#include "core/utf8.h"
#include "models/tokenizer_bpe_internal.h"

namespace opine::models::bpe {

// ---- UTF-8 -----------------------------------------------------------------------------------

char32_t utf8_decode(std::string_view s, size_t pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + pos;
  const size_t len = std::min(utf8_char_len(p[0]), s.size() - pos);
  if (len == 1) return p[0];
  char32_t cp = p[0] & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (p[k] & 0x3F);
  return cp;
}

void utf8_append(std::string& out, char32_t cp) { append_utf8(out, cp); }

std::string utf8_lossy(std::string_view bytes) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(bytes.size());
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    // Second-byte ranges of well-formed sequences (Unicode table 3-7); a maximal invalid
    // subpart is the longest prefix of a well-formed sequence.
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    if (need == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    size_t k = 1;
    for (; k < need && i + k < n; ++k) {
      const unsigned char b = s[i + k];
      const bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
      if (!ok) break;
    }
    if (k == need) {
      out.append(bytes.substr(i, need));
    } else {
      out += kReplacement;
    }
    i += k;
  }
  return out;
}

bool is_unicode_whitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet alphabet = [] {
    // Printable bytes spell themselves; the other 68 take the code points from U+0100 on, in
    // byte order, so every byte has a visible character.
    ByteAlphabet a;
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const char32_t cp = printable ? static_cast<char32_t>(b) : next++;
      utf8_append(a.spelling[b], cp);
      a.byte_of[cp] = static_cast<uint8_t>(b);
    }
    return a;
  }();
  return alphabet;
}

// ---- PCRE2 -----------------------------------------------------------------------------------

namespace {

// Per-thread match state: one ovector pair is all find_all reads, and a JIT stack larger than
// PCRE2's 32 KiB default so lookaheads over long runs of spaces cannot overflow it.
struct MatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  MatchState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchState() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
  }
  MatchState(const MatchState&) = delete;
  MatchState& operator=(const MatchState&) = delete;
};

MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

}  // namespace

Regex::Regex(const std::string& pattern, const std::string& where) : pattern_(pattern) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    throw Error(ErrorKind::kFormat, detail::concat(where, ": cannot compile regex '", pattern, "' at offset ",
                                                   offset, ": ", reinterpret_cast<const char*>(message)));
  }
  // JIT is an optimisation: a platform without it still matches, only slower.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_.reset(code, [](pcre2_code* c) { pcre2_code_free(c); });
}

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  MatchState& state = match_state();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0;
  while (offset <= text.size()) {
    // The text was checked as UTF-8 before tokenizing started.
    const int rc =
        pcre2_match(code_.get(), subject, text.size(), offset, PCRE2_NO_UTF_CHECK, state.data, state.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof(message));
      throw Error(ErrorKind::kInternal,
                  detail::concat("regex '", pattern_, "' failed: ", reinterpret_cast<const char*>(message)));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(state.data);
    const size_t start = ov[0], end = ov[1];
    if (end > start) {
      out.emplace_back(start, end);
      offset = end;
    } else {
      // An empty match: step over one character, as the tokenizers library's find_iter does.
      if (start >= text.size()) break;
      offset = start + utf8_char_len(static_cast<unsigned char>(text[start]));
    }
  }
}

// ---- ICU -------------------------------------------------------------------------------------

namespace {

// ICU's instances, fetched once under a C++ static (ICU's own lazy set-up is invisible to thread
// sanitizers); using them afterwards is const and thread-safe.
const icu::Normalizer2& icu_normalizer(UnicodeForm form) {
  static const std::array<const icu::Normalizer2*, 4> instances = [] {
    UErrorCode status = U_ZERO_ERROR;
    std::array<const icu::Normalizer2*, 4> n = {
        icu::Normalizer2::getNFCInstance(status), icu::Normalizer2::getNFDInstance(status),
        icu::Normalizer2::getNFKCInstance(status), icu::Normalizer2::getNFKDInstance(status)};
    OPINE_ASSERT(U_SUCCESS(status), "ICU normalizers unavailable: ", u_errorName(status));
    return n;
  }();
  return *instances[static_cast<size_t>(form)];
}

}  // namespace

void unicode_normalize(UnicodeForm form, std::string& text) {
  if (std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
    return;
  const icu::Normalizer2& normalizer = icu_normalizer(form);
  UErrorCode status = U_ZERO_ERROR;
  const icu::StringPiece piece(text.data(), static_cast<int32_t>(text.size()));
  if (normalizer.isNormalizedUTF8(piece, status) && U_SUCCESS(status)) return;
  status = U_ZERO_ERROR;
  std::string out;
  icu::StringByteSink<std::string> sink(&out);
  normalizer.normalizeUTF8(0, piece, sink, nullptr, status);
  OPINE_ASSERT(U_SUCCESS(status), "ICU normalization failed: ", u_errorName(status));
  text = std::move(out);
}

// ---- Replacing ------------------------------------------------------------------------------

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  if (from.empty() || text.find(from) == std::string::npos) return;
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (size_t hit; (hit = text.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(text, pos, hit - pos);
    out += to;
  }
  out.append(text, pos, std::string::npos);
  text = std::move(out);
}

void replace_all(std::string& text, const Regex& regex, std::string_view to) {
  std::vector<std::pair<size_t, size_t>> matches;
  regex.find_all(text, matches);
  if (matches.empty()) return;
  std::string out;
  size_t pos = 0;
  for (const auto& [start, end] : matches) {
    out.append(text, pos, start - pos);
    out += to;
    pos = end;
  }
  out.append(text, pos, std::string::npos);
  text = std::move(out);
}

}  // namespace opine::models::bpe
