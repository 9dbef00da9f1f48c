#pragma once
// Lexing inside one exposition line: character classes, blanks, tokens and quoted strings, and the
// bounded excerpt through which error messages quote untrusted text. Nothing here allocates except
// on the error paths, which build the message.

#include <cstddef>
#include <string>
#include <string_view>

namespace spoa::promtext::detail {

constexpr bool is_blank(char c) {
  return c == ' ' || c == '\t';
}
constexpr bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
constexpr bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
constexpr bool is_name_start(char c) {
  return is_alpha(c) || c == '_' || c == ':';
}
constexpr bool is_name_char(char c) {
  return is_name_start(c) || is_digit(c);
}
constexpr bool is_label_start(char c) {
  return is_alpha(c) || c == '_';
}
constexpr bool is_label_char(char c) {
  return is_label_start(c) || is_digit(c);
}

inline void skip_blanks(std::string_view s, std::size_t& i) {
  while (i < s.size() && is_blank(s[i]))
    ++i;
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back()))
    s.remove_suffix(1);
  return s;
}

// Splits off the leading token (up to the first blank) and leaves the rest without its blanks.
inline std::string_view next_token(std::string_view& s) {
  std::size_t end = 0;
  while (end < s.size() && !is_blank(s[end]))
    ++end;
  std::string_view tok = s.substr(0, end);
  s.remove_prefix(end);
  while (!s.empty() && is_blank(s.front()))
    s.remove_prefix(1);
  return tok;
}

bool valid_metric_name(std::string_view n);

// Printable excerpt of untrusted text for an error message: bounded and without control bytes.
std::string excerpt(std::string_view s);

// Reads a quoted string starting at s[i] == '"'; on success `raw` is the text between the quotes
// (escapes kept, only \\ \" \n allowed) and i is past the closing quote. On failure `why` says
// what was wrong with the `what` (with `label`: `what "label"`, e.g. value of label "le"); the
// description is built only then, so reading a label costs no allocation.
bool read_quoted(std::string_view s, std::size_t& i, std::string_view& raw, std::string& why,
                 std::string_view what, std::string_view label = {});

}  // namespace spoa::promtext::detail
