#include "promtext/labels.hpp"

#include "promtext/lexer.hpp"

namespace spoa::promtext {

namespace detail {

bool read_labels(std::string_view s, std::size_t& i, std::span<label> out, std::size_t& n,
                 std::string& why) {
  n = 0;
  for (;;) {
    skip_blanks(s, i);
    if (i >= s.size()) {
      why = "unterminated label set (expected '}')";
      return false;
    }
    if (s[i] == '}') {
      ++i;
      return true;
    }
    std::string_view name;
    if (s[i] == '"') {
      if (!read_quoted(s, i, name, why, "quoted label name")) return false;
    } else if (is_label_start(s[i])) {
      std::size_t st = i;
      while (i < s.size() && is_label_char(s[i]))
        ++i;
      name = s.substr(st, i - st);
    } else {
      why = "expected a label name or '}', found '" + excerpt(s.substr(i, 1)) + "'";
      return false;
    }
    skip_blanks(s, i);
    if (i >= s.size() || s[i] != '=') {
      why = "expected '=' after label name \"" + excerpt(name) + "\"";
      return false;
    }
    ++i;
    skip_blanks(s, i);
    if (i >= s.size() || s[i] != '"') {
      why = "expected '\"' to open the value of label \"" + excerpt(name) + "\"";
      return false;
    }
    std::string_view value;
    if (!read_quoted(s, i, value, why, "value of label", name)) return false;
    if (find_label(out.first(n), name) != nullptr) {
      why = "duplicate label \"" + excerpt(name) + "\"";
      return false;
    }
    if (n >= out.size()) {
      why = "more than " + std::to_string(out.size()) + " labels";
      return false;
    }
    out[n++] = label{name, value};
    skip_blanks(s, i);
    if (i < s.size() && s[i] == ',') {
      ++i;
      continue;
    }
    if (i < s.size() && s[i] == '}') {
      ++i;
      return true;
    }
    why = "expected ',' or '}' after the value of label \"" + excerpt(name) + "\"";
    return false;
  }
}

const label* find_label(std::span<const label> labels, std::string_view name) {
  for (const auto& l : labels) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

bool same_series(std::span<const label> a, std::span<const label> b, std::string_view ignored) {
  std::size_t na = 0;
  for (const auto& l : a) {
    if (l.name == ignored) continue;
    ++na;
    const label* m = find_label(b, l.name);
    if (m == nullptr || m->value != l.value) return false;
  }
  std::size_t nb = 0;
  for (const auto& l : b)
    nb += l.name == ignored ? 0 : 1;
  return na == nb;
}

}  // namespace detail

std::string unescape_label_value(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '\\' && i + 1 < raw.size()) {
      char e = raw[i + 1];
      if (e == '\\' || e == '"') {
        out += e;
        ++i;
        continue;
      }
      if (e == 'n') {
        out += '\n';
        ++i;
        continue;
      }
    }
    out += c;
  }
  return out;
}

}  // namespace spoa::promtext
