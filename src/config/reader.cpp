#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <stdexcept>
#include <utility>

#include "config/duration.hpp"
#include "config/endpoint.hpp"
#include "config/reader.hpp"

namespace spoa::config::detail {

bool mark_valid(const YAML::Mark& m) {
  return m.line >= 0 && m.column >= 0;
}

// Where to point for a problem with a field's value. yaml-cpp gives an empty value (`key:`) the
// position of whatever follows it, so an empty value points at its key instead.
YAML::Mark value_mark(const field& f) {
  if (f.value.IsDefined() && !f.value.IsNull() && mark_valid(f.value.Mark())) {
    return f.value.Mark();
  }
  if (f.key.IsDefined() && mark_valid(f.key.Mark())) return f.key.Mark();
  if (f.value.IsDefined() && mark_valid(f.value.Mark())) return f.value.Mark();
  return YAML::Mark{};
}

YAML::Mark key_mark(const field& f) {
  if (f.key.IsDefined() && mark_valid(f.key.Mark())) return f.key.Mark();
  return value_mark(f);
}

// The value as it appears in a message: one line, bounded.
std::string show(std::string_view s) {
  constexpr std::size_t max_shown = 64;
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < max_shown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > max_shown) out += "...";
  return out;
}

std::string got(const YAML::Node& v) {
  if (!v.IsDefined() || v.IsNull()) return " (got null)";
  if (v.IsMap()) return " (got a mapping)";
  if (v.IsSequence()) return " (got a sequence)";
  return " (got '" + show(v.Scalar()) + "')";
}

// Keys come from the file too: escaped and bounded like values, so a message stays one line.
std::string join_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return show(key);
  std::string out(parent);
  out += '.';
  out += show(key);
  return out;
}

std::string index_path(std::string_view parent, std::size_t i) {
  return std::string(parent) + "[" + std::to_string(i) + "]";
}

std::string format_number(double v) {
  // Whole numbers as integers ("1000000", not "1e+06"): bounds are read by people.
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<long long>(v));
  }
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Names that end up in HAProxy (backend, server) or in messages and metrics labels (pool,
// worker, rule): HAProxy's identifier characters.
bool is_name(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':' || c == '-';
  });
}

bool is_query_param_name(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

loader::mapping loader::read_mapping(const field& f,
                                     std::initializer_list<std::string_view> known) const {
  mapping m;
  m.path = f.path;
  m.mark = value_mark(f);
  // An empty section (`placement:` with nothing under it) is the same as an omitted one.
  if (!f.value.IsDefined() || f.value.IsNull()) return m;
  if (!f.value.IsMap()) fail_value(f, "expected a mapping");
  for (auto it = f.value.begin(); it != f.value.end(); ++it) {
    // A copy: yaml-cpp's iterator returns a proxy, and a reference into it would dangle.
    const YAML::Node k = it->first;
    if (!k.IsScalar()) {
      fail(mark_valid(k.Mark()) ? k.Mark() : m.mark, f.path, "keys must be plain strings");
    }
    field entry{join_path(f.path, k.Scalar()), k, it->second};
    if (known.size() != 0 && std::find(known.begin(), known.end(), k.Scalar()) == known.end()) {
      std::string what = "unknown key '" + show(k.Scalar()) + "'";
      std::string_view best;
      std::size_t best_d = std::numeric_limits<std::size_t>::max();
      for (std::string_view cand : known) {
        const std::size_t d = edit_distance(k.Scalar(), cand);
        if (d < best_d) {
          best_d = d;
          best = cand;
        }
      }
      // A typo is at most two edits away (or one for very short keys).
      if (best_d <= std::min<std::size_t>(2, std::max<std::size_t>(1, best.size() / 3))) {
        what += " (did you mean '" + std::string(best) + "'?)";
      } else {
        what += " (expected one of: ";
        for (std::string_view cand : known) {
          if (cand != *known.begin()) what += ", ";
          what += cand;
        }
        what += ')';
      }
      fail(key_mark(entry), entry.path, what);
    }
    if (const field* first = m.find(k.Scalar())) {
      const YAML::Mark fm = key_mark(*first);
      fail(key_mark(entry), entry.path,
           "duplicate key (first at line " + std::to_string(fm.line + 1) + ")");
    }
    m.entries.push_back(std::move(entry));
  }
  return m;
}

const field& loader::require(const mapping& m, std::string_view key) const {
  const field* f = m.find(key);
  if (f == nullptr) fail(m.mark, join_path(m.path, key), "missing required key");
  return *f;
}

std::vector<field> loader::read_sequence(const field& f) const {
  std::vector<field> out;
  if (!f.value.IsDefined() || f.value.IsNull()) return out;
  if (!f.value.IsSequence()) fail_value(f, "expected a sequence");
  std::size_t i = 0;
  for (const YAML::Node& e : f.value) {
    out.push_back(field{index_path(f.path, i), YAML::Node(YAML::NodeType::Undefined), e});
    ++i;
  }
  return out;
}

std::string loader::read_string(const field& f) const {
  if (!f.value.IsScalar()) fail_value(f, "expected a string");
  return f.value.Scalar();
}

std::string loader::read_name(const field& f) const {
  std::string s = read_string(f);
  if (!is_name(s)) fail_value(f, "expected a name made of A-Z a-z 0-9 _ . : -");
  return s;
}

double loader::read_double(const field& f) const {
  if (!f.value.IsScalar()) fail_value(f, "expected a number");
  const std::string& s = f.value.Scalar();
  double v = 0;
  const char* end = s.data() + s.size();
  const auto r = std::from_chars(s.data(), end, v);
  if (r.ec != std::errc{} || r.ptr != end || !std::isfinite(v)) {
    std::string lower;
    for (char c : s)
      lower += static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
    // YAML spells them .inf and .nan; from_chars reads inf and nan.
    if (lower.find("inf") != std::string::npos || lower.find("nan") != std::string::npos ||
        r.ec == std::errc::result_out_of_range || (r.ec == std::errc{} && r.ptr == end)) {
      fail_value(f, "must be a finite number");
    }
    fail_value(f, "expected a number");
  }
  return v;
}

double loader::read_double_in(const field& f, double lo, bool lo_open, double hi) const {
  const double v = read_double(f);
  if ((lo_open ? v <= lo : v < lo) || v > hi) {
    fail_value(f, std::string("must be in ") + (lo_open ? "(" : "[") + format_number(lo) + ", " +
                      format_number(hi) + "]");
  }
  return v;
}

std::int64_t loader::read_integer_in(const field& f, std::int64_t lo, std::int64_t hi) const {
  if (!f.value.IsScalar()) fail_value(f, "expected an integer");
  const std::string& s = f.value.Scalar();
  std::int64_t v = 0;
  const char* end = s.data() + s.size();
  const auto r = std::from_chars(s.data(), end, v);
  const std::string range = "must be between " + std::to_string(lo) + " and " + std::to_string(hi);
  if (r.ptr != end || s.empty()) fail_value(f, "expected an integer");
  if (r.ec == std::errc::result_out_of_range) fail_value(f, range);
  if (r.ec != std::errc{}) fail_value(f, "expected an integer");
  if (v < lo || v > hi) fail_value(f, range);
  return v;
}

bool loader::read_bool(const field& f) const {
  if (f.value.IsScalar()) {
    const std::string& s = f.value.Scalar();
    // YAML 1.2 core schema only: yes/no/on/off are too easy to write by accident.
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  fail_value(f, "expected true or false");
}

std::chrono::milliseconds loader::read_duration(const field& f) const {
  if (!f.value.IsScalar()) fail_value(f, "expected a duration like 250ms, 2s, 5m, 1h or 1d");
  const auto d = parse_duration(f.value.Scalar());
  if (!d) fail_value(f, "expected a duration like 250ms, 2s, 5m, 1h or 1d, at most 365d");
  if (d->count() == 0) fail_value(f, "must be more than 0");
  return *d;
}

routing::key_kind loader::read_key_kind(const field& f) const {
  if (f.value.IsScalar()) {
    const std::string& s = f.value.Scalar();
    if (s == "room") return routing::key_kind::room;
    if (s == "user") return routing::key_kind::user;
    if (s == "origin") return routing::key_kind::origin;
    if (s == "none") return routing::key_kind::none;
  }
  fail_value(f, "expected room, user, origin or none");
}

std::string loader::read_listen(const field& f) const {
  std::string s = read_string(f);
  const auto ep = parse_endpoint(s);
  // The agent binds without resolving names, so a listen address must be an IP literal; saying
  // so here keeps check-config and run in agreement.
  if (!ep || ep->host.find('/') != std::string::npos || !is_address_or_cidr(ep->host)) {
    fail_value(f, "expected IP:PORT or [IPV6]:PORT");
  }
  return s;
}

const pool& loader::pool_ref(const field& f, const agent_config& c) const {
  const std::string name = read_string(f);
  if (const pool* p = find_pool(c, name)) return *p;
  std::string what = "unknown pool (pools are:";
  for (const pool& p : c.pools)
    what += ' ' + p.name;
  what += ')';
  fail_value(f, what);
}

}  // namespace spoa::config::detail
