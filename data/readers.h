// Readers for the files users hold their tweets in: CSV/TSV (RFC 4180 quoting, CRLF), JSON Lines,
// and plain one-record-per-line files (TweetEval's *_text.txt / *_labels.txt). Each returns the
// records as UTF-8 strings with the line each record starts on, so later errors can name it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace opine::data {

// How the bytes of a file are decoded:
//  kUtf8: strict; invalid UTF-8 is an error naming the file, line and byte.
//  kUtf8OrCp1252: a line that is not valid UTF-8 is decoded as Windows-1252 (what Excel and old
//    Windows tools write; the SemEval-2016 file has such bytes) and counted.
//  kCp1252, kLatin1: the whole file in that encoding.
enum class Encoding { kUtf8, kUtf8OrCp1252, kCp1252, kLatin1 };
Encoding parse_encoding(const std::string& name);  // utf-8 | utf-8-or-windows-1252 | windows-1252 | latin-1
const char* encoding_name(Encoding encoding);

struct Table {
  std::filesystem::path path;
  std::vector<std::string> columns;            // from the header line
  std::vector<std::vector<std::string>> rows;  // each as wide as `columns`
  std::vector<int64_t> lines;                  // the 1-based line each row starts on
  int64_t fallback_decoded = 0;                // lines decoded as Windows-1252 by kUtf8OrCp1252
  // Tolerant reading only: per row, why it could not be read ("" when it could). A bad row
  // keeps its place (empty fields), so output written row by row still lines up with the input.
  std::vector<std::string> errors;

  // Index of a column; an error naming the file and the columns it has when absent.
  size_t column(const std::string& name) const;
};

// Delimited text with a header line. With `quoting`, a field that starts with '"' may hold the
// delimiter, doubled quotes and line breaks (RFC 4180); without it quotes are plain characters
// (GLUE's TSVs are read that way). CRLF and LF both end records; a UTF-8 byte-order mark is
// skipped. A row with the wrong number of fields is a format error naming file and line.
// `tolerant`: a row with the wrong number of fields is kept, its error in `errors`.
Table read_delimited(const std::filesystem::path& path, char delimiter, Encoding encoding, bool quoting = true,
                     bool tolerant = false);

// One JSON object per line (blank lines skipped). Columns are the keys in the order first seen;
// string values are kept as they are, numbers and booleans as their JSON text, null as "".
// A line that is not an object is a format error naming file and line.
// `tolerant`: a line that is not a JSON object is kept as a row, its error in `errors`.
Table read_jsonl(const std::filesystem::path& path, Encoding encoding, bool tolerant = false);

// The lines of a file without their line ends (LF or CRLF); a final line end adds no empty line.
struct Lines {
  std::vector<std::string> lines;
  int64_t fallback_decoded = 0;
};
Lines read_lines(const std::filesystem::path& path, Encoding encoding);

// Decodes bytes to UTF-8. For kUtf8 an invalid sequence is an error that names `where` and the
// byte offset; `fell_back` (may be null) is set when kUtf8OrCp1252 had to fall back.
std::string decode(const std::string& bytes, Encoding encoding, const std::string& where, bool* fell_back);

}  // namespace opine::data
