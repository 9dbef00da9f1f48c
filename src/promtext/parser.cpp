// The line loop and the family state: which family a line belongs to, its HELP/TYPE metadata, and
// the assembly of a sample from the line's name, labels (labels.cpp), value and timestamp
// (value.cpp), checked across lines by series_check. Lexing is in lexer.hpp.

#include "promtext/parser.hpp"

#include <algorithm>
#include <array>
#include <string>

#include "promtext/family.hpp"
#include "promtext/labels.hpp"
#include "promtext/lexer.hpp"
#include "promtext/series_check.hpp"
#include "promtext/value.hpp"

namespace spoa::promtext {

namespace {

using namespace detail;

class parser {
 public:
  parser(std::string_view body, sink& out, limits lim)
      : body_(body),
        out_(out),
        max_labels_(std::min(lim.max_labels, max_labels_capacity)),
        max_line_(lim.max_line) {}

  parse_result run() {
    std::size_t pos = 0;
    while (pos < body_.size()) {
      ++line_no_;
      std::size_t nl = body_.find('\n', pos);
      std::size_t end = nl == std::string_view::npos ? body_.size() : nl;
      std::string_view text = body_.substr(pos, end - pos);
      pos = nl == std::string_view::npos ? body_.size() : nl + 1;
      if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
      if (text.size() > max_line_) {
        return fail("line is " + std::to_string(text.size()) + " bytes, over the limit of " +
                    std::to_string(max_line_));
      }
      if (!line(text)) return result_;
    }
    if (!end_family()) return result_;
    result_.samples = samples_;
    return result_;
  }

 private:
  parse_result fail(std::string what) {
    result_.ok = false;
    result_.line = line_no_;
    result_.message = "line " + std::to_string(line_no_) + ": " + what;
    result_.samples = samples_;
    return result_;
  }
  bool error(std::string what) {
    fail(std::move(what));
    return false;
  }

  bool line(std::string_view text) {
    text = trim(text);
    if (text.empty()) return true;
    if (eof_) return error("text after \"# EOF\"");
    if (text[0] == '#') return comment(text.substr(1));
    return sample_line(text);
  }

  bool comment(std::string_view rest) {
    // "#HELP x" (no blank) is a plain comment, like in Prometheus's own parser.
    if (rest.empty() || !is_blank(rest[0])) return true;
    rest = trim(rest);
    std::string_view keyword = next_token(rest);
    if (keyword == "EOF") {
      if (!rest.empty()) return error("unexpected text after \"# EOF\"");
      eof_ = true;
      return true;
    }
    if (keyword != "HELP" && keyword != "TYPE" && keyword != "UNIT") return true;
    std::string_view name = next_token(rest);
    if (name.empty())
      return error("expected a metric name after \"# " + std::string(keyword) + "\"");
    if (!valid_metric_name(name)) {
      return error("invalid metric name \"" + excerpt(name) + "\" after \"# " +
                   std::string(keyword) + "\"");
    }
    if (keyword == "UNIT") return true;
    if (keyword == "HELP") {
      if (!enter_family(name)) return false;
      if (family_has_help_) return error("second HELP line for \"" + std::string(name) + "\"");
      family_has_help_ = true;
      return true;  // docstring: free text, not needed
    }
    std::string_view type_text = next_token(rest);
    family_type type{};
    if (type_text.empty())
      return error("expected a type after \"# TYPE " + std::string(name) + "\"");
    if (!parse_type(type_text, type)) {
      return error("unknown metric type \"" + excerpt(type_text) +
                   "\" (expected counter, gauge, histogram, summary or untyped)");
    }
    if (!rest.empty())
      return error("unexpected text after \"# TYPE " + std::string(name) + " " +
                   std::string(type_text) + "\"");
    if (!enter_family(name)) return false;
    if (family_has_type_) return error("second TYPE line for \"" + std::string(name) + "\"");
    if (family_has_samples_) {
      return error("TYPE line for \"" + std::string(name) + "\" after its samples");
    }
    family_has_type_ = true;
    family_type_ = type;
    return true;
  }

  // Makes `name` the current family (HELP/TYPE lines), closing the previous one.
  bool enter_family(std::string_view name) {
    if (family_active_ && name == family_) return true;
    if (!end_family()) return false;
    family_active_ = true;
    family_ = name;
    family_type_ = family_type::untyped;
    family_has_help_ = family_has_type_ = family_has_samples_ = false;
    return true;
  }

  bool end_family() { return series_.end(why_) || error(std::move(why_)); }

  bool sample_line(std::string_view s) {
    std::size_t i = 0;
    std::string_view name;
    bool in_braces = false;
    if (is_name_start(s[0])) {
      while (i < s.size() && is_name_char(s[i]))
        ++i;
      name = s.substr(0, i);
      if (i < s.size() && !is_blank(s[i]) && s[i] != '{') {
        return error("invalid character '" + excerpt(s.substr(i, 1)) + "' in metric name \"" +
                     excerpt(name) + "\"");
      }
    } else if (s[0] == '{') {
      // Quoted UTF-8 metric name as the first item inside the braces.
      i = 1;
      skip_blanks(s, i);
      if (i >= s.size() || s[i] != '"') {
        return error("expected a metric name or a quoted name after '{'");
      }
      if (!read_quoted(s, i, name, why_, "quoted metric name")) return error(std::move(why_));
      skip_blanks(s, i);
      if (i < s.size() && s[i] == ',') {
        ++i;
      } else if (i >= s.size() || s[i] != '}') {
        return error("expected ',' or '}' after the quoted metric name");
      }
      in_braces = true;
    } else {
      return error("expected a metric name, '#' or '{' at the start of the line, found '" +
                   excerpt(s.substr(0, 1)) + "'");
    }

    part p = part::plain;
    if (!classify(name, p)) return false;

    if (!asked_ || name != asked_name_) {
      asked_ = true;
      asked_name_ = name;
      asked_answer_ = out_.wants(name);
    }
    if (!asked_answer_) return true;

    std::size_t n = 0;
    if (!in_braces) {
      skip_blanks(s, i);
      if (i < s.size() && s[i] == '{') {
        ++i;
        in_braces = true;
      }
    }
    if (in_braces && !read_labels(s, i, std::span<label>(labels_.data(), max_labels_), n, why_)) {
      return error(std::move(why_));
    }

    std::string_view rest = s.substr(i);
    while (!rest.empty() && is_blank(rest.front()))
      rest.remove_prefix(1);
    std::string_view value_text = next_token(rest);
    if (value_text.empty()) return error("expected a value after \"" + excerpt(name) + "\"");
    sample out;
    if (!parse_value(value_text, out.value)) {
      return error("invalid value \"" + excerpt(value_text) + "\" for \"" + excerpt(name) + "\"");
    }
    if (!rest.empty() && rest[0] != '#') {
      std::string_view ts = next_token(rest);
      if (!parse_timestamp(ts, out.timestamp_ms)) {
        return error("invalid timestamp \"" + excerpt(ts) + "\" (expected integer milliseconds)");
      }
      out.has_timestamp = true;
    }
    // An OpenMetrics exemplar ("# {labels} value [ts]") may follow; nothing else may.
    if (!rest.empty() && rest[0] != '#') {
      return error("unexpected text \"" + excerpt(rest) + "\" after the sample");
    }
    out.family = name;
    out.labels = std::span<const label>(labels_.data(), n);
    if (!series_.check(out, family_, family_type_, p, why_)) return error(std::move(why_));
    ++samples_;
    out_.on_sample(out);
    return true;
  }

  // Places a sample in the current family (or starts an untyped one) and finds its part.
  bool classify(std::string_view name, part& p) {
    if (family_active_ && name.size() >= family_.size() &&
        name.substr(0, family_.size()) == family_) {
      std::string_view suffix = name.substr(family_.size());
      if (suffix_part(family_type_, suffix, p)) {
        family_has_samples_ = true;
        return true;
      }
      if (suffix.empty()) {
        return error("sample \"" + excerpt(name) + "\" of family \"" + std::string(family_) +
                     "\" needs its type's suffix (_bucket, _count, _sum, _info, ...)");
      }
    }
    if (!end_family()) return false;
    family_active_ = true;
    family_ = name;
    family_type_ = family_type::untyped;
    family_has_help_ = family_has_type_ = false;
    family_has_samples_ = true;
    p = part::plain;
    return true;
  }

  std::string_view body_;
  sink& out_;
  std::size_t max_labels_;
  std::size_t max_line_;
  std::size_t line_no_ = 0;
  std::size_t samples_ = 0;
  parse_result result_;
  std::string why_;  // what a detail:: reader found wrong; empty, so never allocated, until then
  bool eof_ = false;

  bool family_active_ = false;
  std::string_view family_;
  family_type family_type_ = family_type::untyped;
  bool family_has_help_ = false;
  bool family_has_type_ = false;
  bool family_has_samples_ = false;

  bool asked_ = false;
  std::string_view asked_name_;
  bool asked_answer_ = false;

  std::array<label, max_labels_capacity> labels_{};
  series_check series_;
};

}  // namespace

parse_result parse(std::string_view body, sink& out, limits lim) {
  return parser(body, out, lim).run();
}

}  // namespace spoa::promtext
