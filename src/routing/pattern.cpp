#include "routing/pattern.hpp"

#include "routing/percent.hpp"

namespace spoa::routing {

namespace {

bool literal_char_ok(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  if (u <= ' ' || u == 0x7f) return false;
  return c != '{' && c != '}' && c != '*' && c != '?' && c != '#' && c != '|';
}

struct capture_name {
  std::string_view name;
  segment_kind kind;
};
constexpr capture_name capture_names[] = {
    {"room", segment_kind::room},
    {"alias", segment_kind::alias},
    {"user", segment_kind::user},
    {"event", segment_kind::event},
    {"room_or_alias", segment_kind::room_or_alias},
};

// One position of the pattern: a set of alternative segment runs (a single run when there is no
// "{a|b}" group).
using position = std::vector<segment_sequence>;

}  // namespace

std::variant<std::vector<segment_sequence>, pattern_error> parse_pattern(std::string_view text) {
  if (text.empty() || text.front() != '/') return pattern_error{"must start with '/'", 1};
  std::vector<position> positions;
  std::size_t i = 1;
  while (true) {
    if (i < text.size() && text[i] == '{') {
      const std::size_t close = text.find('}', i);
      if (close == std::string_view::npos) return pattern_error{"unterminated '{'", i + 1};
      const std::string_view body = text.substr(i + 1, close - i - 1);
      if (const std::size_t open = body.find('{'); open != std::string_view::npos) {
        return pattern_error{"nested '{'", i + 2 + open};
      }
      if (body.find('|') == std::string_view::npos) {
        bool found = false;
        for (const capture_name& c : capture_names) {
          if (c.name == body) {
            positions.push_back({{segment{c.kind, {}}}});
            found = true;
          }
        }
        if (!found) {
          return pattern_error{"unknown capture '{" + std::string(body) +
                                   "}' (room, alias, user, event, room_or_alias; or a|b)",
                               i + 1};
        }
      } else {
        position alts;
        std::size_t a = 0;
        while (true) {
          const std::size_t bar = body.find('|', a);
          const std::string_view alt =
              body.substr(a, bar == std::string_view::npos ? bar : bar - a);
          const std::size_t alt_col = i + 2 + a;
          if (alt.empty()) return pattern_error{"empty alternative", alt_col};
          segment_sequence run;
          std::size_t s = 0;
          while (true) {
            const std::size_t slash = alt.find('/', s);
            const std::string_view lit =
                alt.substr(s, slash == std::string_view::npos ? slash : slash - s);
            if (lit.empty()) return pattern_error{"empty segment in alternative", alt_col + s};
            for (std::size_t k = 0; k < lit.size(); ++k) {
              if (!literal_char_ok(lit[k])) {
                return pattern_error{
                    "bad character '" + std::string(1, lit[k]) + "' in alternative",
                    alt_col + s + k};
              }
            }
            run.push_back(segment{segment_kind::literal, std::string(lit)});
            if (slash == std::string_view::npos) break;
            s = slash + 1;
          }
          alts.push_back(std::move(run));
          if (bar == std::string_view::npos) break;
          a = bar + 1;
        }
        positions.push_back(std::move(alts));
      }
      i = close + 1;
      if (i < text.size() && text[i] != '/') {
        return pattern_error{"'{...}' must be a whole segment", i + 1};
      }
    } else {
      const std::size_t slash = text.find('/', i);
      const std::size_t end = slash == std::string_view::npos ? text.size() : slash;
      const std::string_view seg = text.substr(i, end - i);
      if (seg == "**") {
        if (end != text.size()) return pattern_error{"'**' must be the last segment", i + 1};
        positions.push_back({{segment{segment_kind::rest, {}}}});
      } else if (seg == "*") {
        positions.push_back({{segment{segment_kind::any, {}}}});
      } else {
        if (seg.empty() && end != text.size()) return pattern_error{"empty segment", i + 1};
        for (std::size_t k = 0; k < seg.size(); ++k) {
          if (!literal_char_ok(seg[k])) {
            return pattern_error{"bad character '" + std::string(1, seg[k]) + "'", i + k + 1};
          }
        }
        positions.push_back({{segment{segment_kind::literal, std::string(seg)}}});
      }
      i = end;
    }
    if (i >= text.size()) break;
    ++i;  // the '/'; a pattern ending in '/' gets an empty literal last segment next round
  }

  // Cartesian product of the alternatives, bounded.
  std::vector<segment_sequence> out(1);
  for (const position& p : positions) {
    if (out.size() * p.size() > max_pattern_expansions) {
      return pattern_error{
          "more than " + std::to_string(max_pattern_expansions) + " alternative expansions", 1};
    }
    std::vector<segment_sequence> next;
    next.reserve(out.size() * p.size());
    for (const segment_sequence& prefix : out) {
      for (const segment_sequence& run : p) {
        segment_sequence s = prefix;
        s.insert(s.end(), run.begin(), run.end());
        next.push_back(std::move(s));
      }
    }
    out = std::move(next);
  }
  for (const segment_sequence& s : out) {
    const std::size_t fixed =
        !s.empty() && s.back().kind == segment_kind::rest ? s.size() - 1 : s.size();
    if (fixed > max_pattern_segments) {
      return pattern_error{"more than " + std::to_string(max_pattern_segments) + " segments", 1};
    }
  }
  return out;
}

int room_capture_index(const segment_sequence& seq) noexcept {
  for (std::size_t i = 0; i < seq.size(); ++i) {
    if (seq[i].kind == segment_kind::room || seq[i].kind == segment_kind::room_or_alias) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

bool segment_fits(segment_kind k, std::string_view raw) noexcept {
  if (raw.empty()) return false;
  const char c = decoded_first_char(raw);
  switch (k) {
    case segment_kind::any:
      return true;
    case segment_kind::room:
      return c == '!';
    case segment_kind::alias:
      return c == '#';
    case segment_kind::user:
      return c == '@';
    case segment_kind::event:
      return c == '$';
    case segment_kind::room_or_alias:
      return c == '!' || c == '#';
    default:
      return false;
  }
}

namespace {

// Does pattern segment `a` match every path segment `b` matches? (Neither is `rest`.)
bool covers(const segment& a, const segment& b) noexcept {
  if (a.kind == segment_kind::literal) return b.kind == segment_kind::literal && a.text == b.text;
  if (b.kind == segment_kind::literal) return segment_fits(a.kind, b.text);
  if (a.kind == segment_kind::any || a.kind == b.kind) return true;
  return a.kind == segment_kind::room_or_alias &&
         (b.kind == segment_kind::room || b.kind == segment_kind::alias);
}

}  // namespace

bool subsumes(const segment_sequence& a, const segment_sequence& b) noexcept {
  for (std::size_t j = 0;; ++j) {
    if (j == a.size()) return j == b.size();
    if (a[j].kind == segment_kind::rest) return true;
    if (j == b.size() || b[j].kind == segment_kind::rest) return false;
    if (!covers(a[j], b[j])) return false;
  }
}

}  // namespace spoa::routing
