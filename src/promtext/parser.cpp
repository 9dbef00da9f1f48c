#include "promtext/parser.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <system_error>

namespace spoa::promtext {

namespace {

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

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (x != b[i]) return false;  // b is lower case
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back()))
    s.remove_suffix(1);
  return s;
}

// Splits off the leading token (up to the first blank) and the rest with its blanks removed.
std::string_view next_token(std::string_view& s) {
  std::size_t end = 0;
  while (end < s.size() && !is_blank(s[end]))
    ++end;
  std::string_view tok = s.substr(0, end);
  s.remove_prefix(end);
  while (!s.empty() && is_blank(s.front()))
    s.remove_prefix(1);
  return tok;
}

bool valid_metric_name(std::string_view n) {
  if (n.empty() || !is_name_start(n[0])) return false;
  return std::all_of(n.begin(), n.end(), is_name_char);
}

// Printable excerpt of untrusted text for an error message: bounded and without control bytes.
std::string excerpt(std::string_view s) {
  constexpr std::size_t max = 40;
  std::string out;
  for (char c : s.substr(0, max)) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
  if (s.size() > max) out += "...";
  return out;
}

enum class family_type : std::uint8_t {
  untyped,
  counter,
  gauge,
  histogram,
  summary,
  gaugehistogram,
  info,
  stateset,
};

bool parse_type(std::string_view s, family_type& t) {
  struct entry {
    std::string_view name;
    family_type type;
  };
  static constexpr std::array<entry, 9> types{{
      {"counter", family_type::counter},
      {"gauge", family_type::gauge},
      {"histogram", family_type::histogram},
      {"summary", family_type::summary},
      {"untyped", family_type::untyped},
      {"unknown", family_type::untyped},
      {"gaugehistogram", family_type::gaugehistogram},
      {"info", family_type::info},
      {"stateset", family_type::stateset},
  }};
  for (const auto& e : types) {
    if (e.name == s) {
      t = e.type;
      return true;
    }
  }
  return false;
}

// Which part of its family a sample is, from the suffix after the family name.
enum class part : std::uint8_t { plain, total, created, bucket, count, sum, gcount, gsum, info };

bool suffix_part(family_type t, std::string_view suffix, part& p) {
  if (suffix.empty()) {
    p = part::plain;
    return t != family_type::histogram && t != family_type::gaugehistogram &&
           t != family_type::info;
  }
  struct entry {
    std::string_view suffix;
    part p;
  };
  static constexpr std::array<entry, 4> counter{
      {{"_total", part::total}, {"_created", part::created}, {}, {}}};
  static constexpr std::array<entry, 4> histogram{{{"_bucket", part::bucket},
                                                   {"_count", part::count},
                                                   {"_sum", part::sum},
                                                   {"_created", part::created}}};
  static constexpr std::array<entry, 4> summary{
      {{"_count", part::count}, {"_sum", part::sum}, {"_created", part::created}, {}}};
  static constexpr std::array<entry, 4> gaugehistogram{
      {{"_bucket", part::bucket}, {"_gcount", part::gcount}, {"_gsum", part::gsum}, {}}};
  static constexpr std::array<entry, 4> info{{{"_info", part::info}, {}, {}, {}}};
  const std::array<entry, 4>* table = nullptr;
  switch (t) {
    case family_type::counter:
      table = &counter;
      break;
    case family_type::histogram:
      table = &histogram;
      break;
    case family_type::summary:
      table = &summary;
      break;
    case family_type::gaugehistogram:
      table = &gaugehistogram;
      break;
    case family_type::info:
      table = &info;
      break;
    default:
      return false;
  }
  for (const auto& e : *table) {
    if (!e.suffix.empty() && e.suffix == suffix) {
      p = e.p;
      return true;
    }
  }
  return false;
}

const label* find_label(std::span<const label> labels, std::string_view name) {
  for (const auto& l : labels) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

// Same labels apart from `ignored`, in any order. Raw (escaped) values compare correctly because
// the escaping is canonical: each character has exactly one written form.
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

// The state of the histogram series being read, so the bucket rules can be checked on the fly
// without remembering more than one series. Histogram lines of one series are contiguous in every
// exporter we know (prometheus_client writes buckets, _count, _sum; prometheus-cpp _count, _sum,
// buckets), so a change of label set ends the series.
struct histogram_series {
  bool active = false;
  std::string_view family;
  std::array<label, max_labels_capacity> labels{};
  std::size_t label_count = 0;
  bool has_bucket = false;
  double last_le = 0;
  std::string_view last_le_raw;
  double last_bucket = 0;
  bool has_inf = false;
  double inf_value = 0;
  bool has_count = false;
  double count_value = 0;
};

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

  bool end_family() { return end_series(); }

  bool end_series() {
    histogram_series& s = series_;
    if (!s.active) return true;
    s.active = false;
    if (s.has_bucket && !s.has_inf) {
      return error("histogram \"" + std::string(s.family) +
                   "\" series ended without a le=\"+Inf\" bucket");
    }
    if (s.has_inf && s.has_count && s.inf_value != s.count_value && !std::isnan(s.inf_value) &&
        !std::isnan(s.count_value)) {
      return error("histogram \"" + std::string(s.family) + "\": le=\"+Inf\" bucket (" +
                   format(s.inf_value) + ") differs from its _count (" + format(s.count_value) +
                   ")");
    }
    return true;
  }

  static std::string format(double v) {
    std::array<char, 32> buf{};
    auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
    return std::string(buf.data(), r.ptr);
  }

  // Reads a quoted string starting at s[i] == '"'; on success `raw` is the text between the
  // quotes (escapes kept) and i is past the closing quote.
  bool quoted(std::string_view s, std::size_t& i, std::string_view& raw, std::string_view what) {
    std::size_t start = ++i;
    while (i < s.size()) {
      char c = s[i];
      if (c == '"') {
        raw = s.substr(start, i - start);
        ++i;
        return true;
      }
      if (c == '\\') {
        if (i + 1 >= s.size()) break;
        char e = s[i + 1];
        if (e != '\\' && e != '"' && e != 'n') {
          return error("invalid escape \"\\" + excerpt(std::string_view(&s[i + 1], 1)) + "\" in " +
                       std::string(what));
        }
        i += 2;
        continue;
      }
      ++i;
    }
    return error("unterminated " + std::string(what) + " (expected a closing '\"')");
  }

  static void skip_blanks(std::string_view s, std::size_t& i) {
    while (i < s.size() && is_blank(s[i]))
      ++i;
  }

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
      if (!quoted(s, i, name, "quoted metric name")) return false;
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
    if (in_braces) {
      for (;;) {
        skip_blanks(s, i);
        if (i >= s.size()) return error("unterminated label set (expected '}')");
        if (s[i] == '}') {
          ++i;
          break;
        }
        std::string_view lname;
        if (s[i] == '"') {
          if (!quoted(s, i, lname, "quoted label name")) return false;
        } else if (is_label_start(s[i])) {
          std::size_t st = i;
          while (i < s.size() && is_label_char(s[i]))
            ++i;
          lname = s.substr(st, i - st);
        } else {
          return error("expected a label name or '}', found '" + excerpt(s.substr(i, 1)) + "'");
        }
        skip_blanks(s, i);
        if (i >= s.size() || s[i] != '=') {
          return error("expected '=' after label name \"" + excerpt(lname) + "\"");
        }
        ++i;
        skip_blanks(s, i);
        if (i >= s.size() || s[i] != '"') {
          return error("expected '\"' to open the value of label \"" + excerpt(lname) + "\"");
        }
        std::string_view lvalue;
        if (!quoted(s, i, lvalue, "value of label \"" + excerpt(lname) + "\"")) return false;
        if (find_label(std::span<const label>(labels_.data(), n), lname) != nullptr) {
          return error("duplicate label \"" + excerpt(lname) + "\"");
        }
        if (n >= max_labels_) {
          return error("more than " + std::to_string(max_labels_) + " labels");
        }
        labels_[n++] = label{lname, lvalue};
        skip_blanks(s, i);
        if (i < s.size() && s[i] == ',') {
          ++i;
          continue;
        }
        if (i < s.size() && s[i] == '}') {
          ++i;
          break;
        }
        return error("expected ',' or '}' after the value of label \"" + excerpt(lname) + "\"");
      }
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
    if (!check_semantics(out, p)) return false;
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

  bool check_semantics(const sample& s, part p) {
    const bool histogram =
        family_type_ == family_type::histogram || family_type_ == family_type::gaugehistogram;
    if (family_type_ == family_type::summary && p == part::plain) {
      const label* q = find_label(s.labels, "quantile");
      double qv = 0;
      if (q == nullptr)
        return error("summary sample \"" + excerpt(s.family) + "\" has no quantile label");
      if (!parse_value(q->value, qv)) {
        return error("invalid quantile \"" + excerpt(q->value) + "\" on \"" + excerpt(s.family) +
                     "\"");
      }
      return true;
    }
    if (!histogram) return true;
    histogram_series& h = series_;
    if (!h.active || h.family != family_ ||
        !same_series(std::span<const label>(h.labels.data(), h.label_count), s.labels, "le")) {
      if (!end_series()) return false;
      h = histogram_series{};
      h.active = true;
      h.family = family_;
      std::copy(s.labels.begin(), s.labels.end(), h.labels.begin());
      h.label_count = s.labels.size();
    }
    if (p == part::count || p == part::gcount) {
      h.has_count = true;
      h.count_value = s.value;
      return true;
    }
    if (p != part::bucket) return true;
    const label* le = find_label(s.labels, "le");
    double lev = 0;
    if (le == nullptr)
      return error("histogram bucket \"" + excerpt(s.family) + "\" has no le label");
    if (!parse_value(le->value, lev) || std::isnan(lev)) {
      return error("invalid le \"" + excerpt(le->value) + "\" on \"" + excerpt(s.family) + "\"");
    }
    if (h.has_bucket) {
      if (!(lev > h.last_le)) {
        return error("le=\"" + excerpt(le->value) + "\" is not above the previous bucket's le=\"" +
                     excerpt(h.last_le_raw) + "\"");
      }
      if (s.value < h.last_bucket) {
        return error("bucket count " + format(s.value) + " is below the previous bucket's " +
                     format(h.last_bucket) + " (buckets are cumulative)");
      }
    }
    h.has_bucket = true;
    h.last_le = lev;
    h.last_le_raw = le->value;
    h.last_bucket = s.value;
    if (std::isinf(lev) && lev > 0) {
      h.has_inf = true;
      h.inf_value = s.value;
    }
    return true;
  }

  static bool parse_timestamp(std::string_view t, std::int64_t& ms) {
    if (t.empty()) return false;
    std::string_view digits = t[0] == '+' ? t.substr(1) : t;
    if (digits.empty() || digits[0] == '+') return false;
    auto r = std::from_chars(digits.data(), digits.data() + digits.size(), ms);
    if (r.ec == std::errc{} && r.ptr == digits.data() + digits.size()) return true;
    // OpenMetrics: seconds, possibly fractional.
    double seconds = 0;
    if (!parse_value(t, seconds) || !std::isfinite(seconds)) return false;
    double v = std::round(seconds * 1000.0);
    if (!(v > -9.2e18 && v < 9.2e18)) return false;
    ms = static_cast<std::int64_t>(v);
    return true;
  }

  std::string_view body_;
  sink& out_;
  std::size_t max_labels_;
  std::size_t max_line_;
  std::size_t line_no_ = 0;
  std::size_t samples_ = 0;
  parse_result result_;
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
  histogram_series series_;
};

}  // namespace

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

bool parse_value(std::string_view token, double& out) {
  if (token.empty()) return false;
  if (iequals(token, "nan")) {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  bool negative = false;
  std::string_view t = token;
  if (t[0] == '+' || t[0] == '-') {
    negative = t[0] == '-';
    t.remove_prefix(1);
  }
  if (iequals(t, "inf") || iequals(t, "infinity")) {
    out = negative ? -std::numeric_limits<double>::infinity()
                   : std::numeric_limits<double>::infinity();
    return true;
  }
  // from_chars takes no sign and would accept "nan(...)"/"inf"; only digits or '.' may start.
  if (t.empty() || !(is_digit(t[0]) || t[0] == '.')) return false;
  double v = 0;
  auto r = std::from_chars(t.data(), t.data() + t.size(), v, std::chars_format::general);
  if (r.ec != std::errc{} || r.ptr != t.data() + t.size()) return false;
  out = negative ? -v : v;
  return true;
}

parse_result parse(std::string_view body, sink& out, limits lim) {
  return parser(body, out, lim).run();
}

}  // namespace spoa::promtext
