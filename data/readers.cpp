#include "data/readers.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/utf8.h"

namespace opine::data {

namespace {

// Windows-1252's 0x80..0x9F; the five bytes it leaves undefined map to the C1 controls of the
// same value (as the WHATWG encoding standard does).
constexpr char32_t kCp1252High[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x008D, 0x017D, 0x008F, 0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

// Offset of the first byte that is not valid UTF-8 (overlong forms, surrogates and code points
// above U+10FFFF are invalid), or npos.
size_t invalid_utf8_at(const std::string& s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    char32_t c, min;
    if ((b & 0xE0) == 0xC0) {
      len = 2, c = b & 0x1F, min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3, c = b & 0x0F, min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4, c = b & 0x07, min = 0x10000;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      const auto cb = static_cast<unsigned char>(s[i + k]);
      if ((cb & 0xC0) != 0x80) return i;
      c = (c << 6) | (cb & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return i;
    i += len;
  }
  return std::string::npos;
}

std::string single_byte_to_utf8(const std::string& bytes, bool cp1252) {
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 8);
  for (char ch : bytes) {
    const auto b = static_cast<unsigned char>(ch);
    append_utf8(out, cp1252 && b >= 0x80 && b < 0xA0 ? kCp1252High[b - 0x80] : char32_t(b));
  }
  return out;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  OPINE_CHECK_KIND(in.good(), ErrorKind::kIo, "cannot open ", path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  std::string bytes = std::move(buffer).str();
  if (bytes.rfind("\xEF\xBB\xBF", 0) == 0) bytes.erase(0, 3);  // UTF-8 byte-order mark
  return bytes;
}

// Splits into lines (LF or CRLF), decoding each; a final line end adds no empty line.
Lines decode_lines(const std::filesystem::path& path, Encoding encoding) {
  const std::string bytes = read_file(path);
  Lines out;
  size_t start = 0;
  int64_t line = 1;
  while (start < bytes.size()) {
    size_t end = bytes.find('\n', start);
    if (end == std::string::npos) end = bytes.size();
    size_t stop = end;
    if (stop > start && bytes[stop - 1] == '\r') --stop;
    bool fell_back = false;
    out.lines.push_back(decode(bytes.substr(start, stop - start), encoding,
                               path.string() + ":" + std::to_string(line), &fell_back));
    out.fallback_decoded += fell_back;
    start = end + 1;
    ++line;
  }
  return out;
}

}  // namespace

Encoding parse_encoding(const std::string& name) {
  if (name == "utf-8" || name == "utf8") return Encoding::kUtf8;
  if (name == "utf-8-or-windows-1252") return Encoding::kUtf8OrCp1252;
  if (name == "windows-1252" || name == "cp1252") return Encoding::kCp1252;
  if (name == "latin-1" || name == "iso-8859-1") return Encoding::kLatin1;
  OPINE_CHECK_KIND(false, ErrorKind::kConfig, "unknown encoding '", name,
                   "' (use utf-8, utf-8-or-windows-1252, windows-1252 or latin-1)");
  return Encoding::kUtf8;
}

const char* encoding_name(Encoding encoding) {
  switch (encoding) {
    case Encoding::kUtf8: return "utf-8";
    case Encoding::kUtf8OrCp1252: return "utf-8-or-windows-1252";
    case Encoding::kCp1252: return "windows-1252";
    case Encoding::kLatin1: return "latin-1";
  }
  return "?";
}

std::string decode(const std::string& bytes, Encoding encoding, const std::string& where, bool* fell_back) {
  if (fell_back) *fell_back = false;
  switch (encoding) {
    case Encoding::kCp1252: return single_byte_to_utf8(bytes, true);
    case Encoding::kLatin1: return single_byte_to_utf8(bytes, false);
    case Encoding::kUtf8:
    case Encoding::kUtf8OrCp1252: break;
  }
  const size_t bad = invalid_utf8_at(bytes);
  if (bad == std::string::npos) return bytes;
  if (encoding == Encoding::kUtf8OrCp1252) {
    if (fell_back) *fell_back = true;
    return single_byte_to_utf8(bytes, true);
  }
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(bytes[bad]));
  OPINE_CHECK_FORMAT(false, where, ": invalid UTF-8 (byte ", hex, " at offset ", bad,
                     "); if the file is Windows-1252, set encoding: utf-8-or-windows-1252 or windows-1252");
  return {};
}

size_t Table::column(const std::string& name) const {
  for (size_t i = 0; i < columns.size(); ++i)
    if (columns[i] == name) return i;
  std::string have;
  for (const std::string& c : columns) have += (have.empty() ? "" : ", ") + c;
  OPINE_CHECK_KIND(false, ErrorKind::kConfig, path.string(), " has no column '", name, "' (it has: ", have, ")");
  return 0;
}

Lines read_lines(const std::filesystem::path& path, Encoding encoding) { return decode_lines(path, encoding); }

Table read_delimited(const std::filesystem::path& path, char delimiter, Encoding encoding, bool quoting,
                     bool tolerant) {
  Lines lines = decode_lines(path, encoding);
  Table table;
  table.path = path;
  table.fallback_decoded = lines.fallback_decoded;
  std::vector<std::string> record;
  std::string field;
  int64_t record_line = 0;
  bool in_quotes = false, quoted = false;
  auto end_record = [&](int64_t line) {
    record.push_back(std::move(field));
    field.clear();
    quoted = false;
    if (table.columns.empty()) {
      table.columns = std::move(record);
    } else {
      std::string error;
      if (record.size() != table.columns.size()) {
        error = path.string() + ":" + std::to_string(record_line) + ": " + std::to_string(record.size()) +
                " fields, but the header has " + std::to_string(table.columns.size());
        OPINE_CHECK_FORMAT(tolerant, error);
        record.assign(table.columns.size(), std::string());
      }
      table.rows.push_back(std::move(record));
      table.lines.push_back(record_line);
      if (tolerant) table.errors.push_back(std::move(error));
    }
    record.clear();
  };
  for (size_t li = 0; li < lines.lines.size(); ++li) {
    const std::string& text = lines.lines[li];
    const int64_t line = int64_t(li) + 1;
    if (!in_quotes) {
      if (text.empty()) continue;  // blank lines between records
      record_line = line;
    } else {
      field += '\n';  // a line break inside a quoted field
    }
    for (size_t i = 0; i < text.size(); ++i) {
      const char ch = text[i];
      if (in_quotes) {
        if (ch != '"') {
          field += ch;
        } else if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else if (ch == delimiter) {
        record.push_back(std::move(field));
        field.clear();
        quoted = false;
      } else if (quoting && ch == '"' && field.empty() && !quoted) {
        in_quotes = quoted = true;
      } else {
        field += ch;  // a quote inside an unquoted field is literal
      }
    }
    if (!in_quotes) end_record(line);
  }
  OPINE_CHECK_FORMAT(!in_quotes, path.string(), ":", record_line, ": quoted field never closed");
  OPINE_CHECK_FORMAT(!table.columns.empty(), path.string(), ": empty file (no header line)");
  return table;
}

Table read_jsonl(const std::filesystem::path& path, Encoding encoding, bool tolerant) {
  Lines lines = decode_lines(path, encoding);
  Table table;
  table.path = path;
  table.fallback_decoded = lines.fallback_decoded;
  for (size_t li = 0; li < lines.lines.size(); ++li) {
    const std::string& text = lines.lines[li];
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path.string() + ":" + std::to_string(li + 1);
    nlohmann::ordered_json object;
    std::string error;
    try {
      object = nlohmann::ordered_json::parse(text);
      if (!object.is_object()) error = where + ": expected a JSON object per line";
    } catch (const nlohmann::json::parse_error& e) {
      error = where + ": not JSON (" + e.what() + ")";
    }
    OPINE_CHECK_FORMAT(error.empty() || tolerant, error);
    if (tolerant) table.errors.push_back(error);
    if (!error.empty()) {
      // Its place is kept; the columns come from the first good line (filled in below).
      table.rows.emplace_back();
      table.lines.push_back(int64_t(li) + 1);
      continue;
    }
    // Columns: every key in the order first seen (a key missing from a line is empty there).
    std::vector<std::string> row(table.columns.size());
    for (const auto& item : object.items()) {
      size_t c = std::find(table.columns.begin(), table.columns.end(), item.key()) - table.columns.begin();
      if (c == table.columns.size()) {
        table.columns.push_back(item.key());
        row.resize(table.columns.size());
      }
      const auto& v = item.value();
      row[c] = v.is_null() ? std::string() : v.is_string() ? v.get<std::string>() : v.dump();
    }
    table.rows.push_back(std::move(row));
    table.lines.push_back(int64_t(li) + 1);
  }
  for (std::vector<std::string>& row : table.rows) row.resize(table.columns.size());  // bad lines' rows
  return table;
}

}  // namespace opine::data
