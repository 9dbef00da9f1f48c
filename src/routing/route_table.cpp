#include "routing/route_table.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <optional>

#include "routing/pattern.hpp"
#include "routing/percent.hpp"

namespace spoa::routing {

namespace {

constexpr std::size_t max_methods = 63;  // bit 0 of a method mask is "a method no rule names"

std::string where(const rule_spec& r) {
  return "rule '" + r.name + "' (" + r.source + ")";
}

// Parses "*" or "GET|HEAD" into tokens; "*" gives an empty list and sets `any`.
std::optional<std::string> parse_methods(const std::string& text, bool& any,
                                         std::vector<std::string>& out) {
  any = false;
  out.clear();
  if (auto err = method_syntax_error(text)) return err;
  if (text == "*") {
    any = true;
    return std::nullopt;
  }
  std::size_t begin = 0;
  while (true) {
    const std::size_t bar = text.find('|', begin);
    out.push_back(text.substr(begin, bar == std::string::npos ? std::string::npos : bar - begin));
    if (bar == std::string::npos) break;
    begin = bar + 1;
  }
  return std::nullopt;
}

// Literal edges are ordered by (size, bytes): a size mismatch decides most comparisons.
bool literal_less(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return a.size() < b.size();
  return std::memcmp(a.data(), b.data(), a.size()) < 0;
}

struct literal_order {
  bool operator()(const std::string& a, const std::string& b) const noexcept {
    return literal_less(a, b);
  }
};

// The trie while it is being built; flattened into route_table's arrays afterwards.
struct build_node {
  std::map<std::string, int, literal_order> literals;
  std::array<int, static_cast<int>(route_table::edge::count_)> typed{-1, -1, -1, -1, -1, -1};
  std::vector<route_table::terminal> ends, rests;
};

route_table::edge edge_of(segment_kind k) {
  switch (k) {
    case segment_kind::room:
      return route_table::edge::room;
    case segment_kind::alias:
      return route_table::edge::alias;
    case segment_kind::user:
      return route_table::edge::user;
    case segment_kind::event:
      return route_table::edge::event;
    case segment_kind::room_or_alias:
      return route_table::edge::room_or_alias;
    default:
      return route_table::edge::any;
  }
}

std::string escape_pipes(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::variant<route_table, compile_error> route_table::compile(std::vector<rule_spec> rules,
                                                              std::vector<std::string> pool_names) {
  route_table t;
  const std::size_t n = rules.size();
  std::vector<std::vector<segment_sequence>> expansions(n);
  std::vector<std::vector<std::string>> rule_methods(n);
  std::vector<bool> any_method(n);
  std::map<std::string, std::size_t> names;

  // Pass 1: every rule on its own, in order, so the first error reported is the first bad rule.
  for (std::size_t i = 0; i < n; ++i) {
    const rule_spec& r = rules[i];
    if (r.name.empty())
      return compile_error{"rule #" + std::to_string(i + 1) + " (" + r.source + "): empty name"};
    if (auto [it, fresh] = names.emplace(r.name, i); !fresh) {
      return compile_error{where(r) + ": duplicate name (first used at " +
                           rules[it->second].source + ")"};
    }
    bool any = false;
    if (auto err = parse_methods(r.methods, any, rule_methods[i])) {
      return compile_error{where(r) + ": malformed methods '" + r.methods + "': " + *err};
    }
    any_method[i] = any;
    const auto pool = std::find(pool_names.begin(), pool_names.end(), r.pool);
    if (pool == pool_names.end()) {
      return compile_error{where(r) + ": unknown pool '" + r.pool + "'"};
    }
    auto parsed = parse_pattern(r.pattern);
    if (auto* err = std::get_if<pattern_error>(&parsed)) {
      return compile_error{where(r) + ": malformed pattern '" + r.pattern + "': " + err->what +
                           " at column " + std::to_string(err->column)};
    }
    expansions[i] = std::move(std::get<std::vector<segment_sequence>>(parsed));
    if (r.key == key_kind::room) {
      for (const segment_sequence& seq : expansions[i]) {
        if (room_capture_index(seq) < 0) {
          return compile_error{where(r) +
                               ": key room needs a {room} or {room_or_alias} capture in every "
                               "alternative"};
        }
      }
    }
    for (const segment_sequence& seq : expansions[i]) {
      int room_captures = 0;
      for (const segment& s : seq) {
        room_captures += s.kind == segment_kind::room || s.kind == segment_kind::room_or_alias;
      }
      if (room_captures > 1) {
        return compile_error{where(r) + ": malformed pattern '" + r.pattern +
                             "': more than one room capture"};
      }
    }
    for (char c : r.if_query_absent) {
      if (c == '&' || c == '=' || c == '?' || c == '#' || static_cast<unsigned char>(c) <= ' ') {
        return compile_error{where(r) + ": malformed if_query_absent '" + r.if_query_absent + "'"};
      }
    }
    t.compiled_.push_back(
        compiled_rule{0, static_cast<std::int32_t>(pool - pool_names.begin()), r.key, -1});
  }

  // Pass 2: shadowing. B is dead when one earlier A takes every request B would: A's methods
  // include B's, A has no query condition, and every expansion of B is subsumed by one of A's.
  for (std::size_t b = 0; b < n; ++b) {
    for (std::size_t a = 0; a < b; ++a) {
      if (!rules[a].if_query_absent.empty()) continue;
      if (!any_method[a]) {
        if (any_method[b]) continue;
        const auto& am = rule_methods[a];
        const bool covers = std::all_of(
            rule_methods[b].begin(), rule_methods[b].end(),
            [&](const std::string& m) { return std::find(am.begin(), am.end(), m) != am.end(); });
        if (!covers) continue;
      }
      const bool all_subsumed =
          std::all_of(expansions[b].begin(), expansions[b].end(), [&](const segment_sequence& sb) {
            return std::any_of(expansions[a].begin(), expansions[a].end(),
                               [&](const segment_sequence& sa) { return subsumes(sa, sb); });
          });
      if (!all_subsumed) continue;
      const bool operator_overrides_default =
          rules[b].source == "default" && rules[a].source != "default";
      if (operator_overrides_default) {
        if (t.compiled_[b].shadowed_by < 0) t.compiled_[b].shadowed_by = static_cast<int>(a);
        continue;
      }
      return compile_error{where(rules[b]) + " can never match: " + where(rules[a]) +
                           " before it matches every request it matches"};
    }
  }

  // Method masks over the distinct tokens, in order of first appearance.
  for (std::size_t i = 0; i < n; ++i) {
    if (any_method[i]) {
      t.compiled_[i].method_mask = ~std::uint64_t{0};
      continue;
    }
    std::uint64_t mask = 0;
    for (const std::string& m : rule_methods[i]) {
      auto it = std::find(t.methods_.begin(), t.methods_.end(), m);
      if (it == t.methods_.end()) {
        if (t.methods_.size() == max_methods) {
          return compile_error{where(rules[i]) + ": more than 63 distinct methods in the table"};
        }
        t.methods_.push_back(m);
        it = t.methods_.end() - 1;
      }
      mask |= std::uint64_t{1} << (1 + (it - t.methods_.begin()));
    }
    t.compiled_[i].method_mask = mask;
  }

  // Pass 3: the trie. Every expansion of rule i is a path from the root; its terminal remembers
  // where the room capture sits so classify() can find the segment without re-matching.
  std::vector<build_node> bn(1);
  for (std::size_t i = 0; i < n; ++i) {
    for (const segment_sequence& seq : expansions[i]) {
      int cur = 0;
      const int room_at = room_capture_index(seq);
      const bool roa = room_at >= 0 && seq[room_at].kind == segment_kind::room_or_alias;
      const terminal term{static_cast<std::int32_t>(i), static_cast<std::int16_t>(room_at), roa};
      bool ended_in_rest = false;
      for (const segment& s : seq) {
        if (s.kind == segment_kind::rest) {
          bn[cur].rests.push_back(term);
          ended_in_rest = true;
          break;
        }
        int next = -1;
        if (s.kind == segment_kind::literal) {
          auto it = bn[cur].literals.find(s.text);
          if (it != bn[cur].literals.end()) {
            next = it->second;
          } else {
            next = static_cast<int>(bn.size());
            bn[cur].literals.emplace(s.text, next);
            bn.emplace_back();
          }
        } else {
          const int e = static_cast<int>(edge_of(s.kind));
          next = bn[cur].typed[e];
          if (next < 0) {
            next = static_cast<int>(bn.size());
            bn[cur].typed[e] = next;
            bn.emplace_back();
          }
        }
        cur = next;
      }
      if (!ended_in_rest) bn[cur].ends.push_back(term);
    }
  }

  // Flatten. Terminals were appended in rule order, so each list is already sorted by rule.
  t.nodes_.resize(bn.size());
  for (std::size_t k = 0; k < bn.size(); ++k) {
    node& out = t.nodes_[k];
    out.lit_begin = static_cast<std::uint32_t>(t.literal_edges_.size());
    for (const auto& [text, child] : bn[k].literals) {
      t.literal_edges_.push_back(literal_edge{static_cast<std::uint32_t>(t.literals_.size()),
                                              static_cast<std::uint32_t>(text.size()), child});
      t.literals_ += text;
    }
    out.lit_count = static_cast<std::uint32_t>(bn[k].literals.size());
    for (int e = 0; e < static_cast<int>(edge::count_); ++e)
      out.typed[e] = bn[k].typed[e];
    out.end_begin = static_cast<std::uint32_t>(t.terminals_.size());
    t.terminals_.insert(t.terminals_.end(), bn[k].ends.begin(), bn[k].ends.end());
    out.end_count = static_cast<std::uint32_t>(bn[k].ends.size());
    out.rest_begin = static_cast<std::uint32_t>(t.terminals_.size());
    t.terminals_.insert(t.terminals_.end(), bn[k].rests.begin(), bn[k].rests.end());
    out.rest_count = static_cast<std::uint32_t>(bn[k].rests.size());
  }
  // min_rule bottom-up: children always have larger indices than their parent (created later).
  for (std::size_t k = bn.size(); k-- > 0;) {
    node& nd = t.nodes_[k];
    std::int32_t m = 0x7fffffff;
    if (nd.end_count) m = std::min(m, t.terminals_[nd.end_begin].rule);
    if (nd.rest_count) m = std::min(m, t.terminals_[nd.rest_begin].rule);
    for (std::uint32_t j = 0; j < nd.lit_count; ++j) {
      m = std::min(m, t.nodes_[t.literal_edges_[nd.lit_begin + j].child].min_rule);
    }
    for (int e = 0; e < static_cast<int>(edge::count_); ++e) {
      if (nd.typed[e] >= 0) m = std::min(m, t.nodes_[nd.typed[e]].min_rule);
    }
    nd.min_rule = m;
  }

  t.rules_ = std::move(rules);
  t.pool_names_ = std::move(pool_names);
  return t;
}

// One classification: the path split lazily into segments, a depth-first walk over the trie that
// keeps the lowest matching rule index and prunes subtrees that cannot beat it.
struct classify_walk {
  static constexpr int max_depth = max_pattern_segments + 1;

  const route_table& t;
  std::string_view path;   // query removed, leading '/' removed
  std::string_view query;  // for if_query_absent
  std::uint64_t method_bit;
  std::array<std::string_view, max_depth> segs{};
  std::int32_t best = 0x7fffffff;
  std::string_view best_room;
  bool best_room_or_alias = false;

  bool accepts(std::int32_t rule) const noexcept {
    if ((t.compiled_[rule].method_mask & method_bit) == 0) return false;
    const std::string& absent = t.rules_[rule].if_query_absent;
    return absent.empty() || !query_param(query, absent);
  }

  // Terminals are sorted by rule, so the first acceptable one is the best of the list.
  void take(std::uint32_t begin, std::uint32_t count) noexcept {
    for (std::uint32_t j = 0; j < count; ++j) {
      const route_table::terminal& term = t.terminals_[begin + j];
      if (term.rule >= best) return;
      if (!accepts(term.rule)) continue;
      best = term.rule;
      best_room = term.room_segment >= 0 ? segs[term.room_segment] : std::string_view{};
      best_room_or_alias = term.room_or_alias;
      return;
    }
  }

  std::int32_t find_literal(const route_table::node& nd, std::string_view seg) const noexcept {
    std::uint32_t lo = nd.lit_begin;
    std::uint32_t hi = nd.lit_begin + nd.lit_count;
    while (lo < hi) {
      const std::uint32_t mid = lo + (hi - lo) / 2;
      const route_table::literal_edge& e = t.literal_edges_[mid];
      const std::string_view key(t.literals_.data() + e.offset, e.size);
      if (literal_less(key, seg)) {
        lo = mid + 1;
      } else if (literal_less(seg, key)) {
        hi = mid;
      } else {
        return e.child;
      }
    }
    return -1;
  }

  // `pos` is the start of segment `depth` in `path`, or npos when the path has no more segments.
  void walk(std::int32_t node_index, std::size_t pos, int depth) noexcept {
    const route_table::node& nd = t.nodes_[node_index];
    if (nd.min_rule >= best) return;
    take(nd.rest_begin, nd.rest_count);
    if (pos == std::string_view::npos) {
      take(nd.end_begin, nd.end_count);
      return;
    }
    if (depth >= max_depth) return;  // unreachable: the trie is never deeper than a pattern
    const std::size_t slash = path.find('/', pos);
    const std::string_view seg =
        path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    const std::size_t next = slash == std::string_view::npos ? slash : slash + 1;
    segs[depth] = seg;
    if (nd.lit_count) {
      const std::int32_t child = find_literal(nd, seg);
      if (child >= 0) walk(child, next, depth + 1);
    }
    if (seg.empty()) return;
    using edge = route_table::edge;
    auto go = [&](edge e) {
      const std::int32_t child = nd.typed[static_cast<int>(e)];
      if (child >= 0) walk(child, next, depth + 1);
    };
    switch (decoded_first_char(seg)) {
      case '!':
        go(edge::room);
        go(edge::room_or_alias);
        break;
      case '#':
        go(edge::alias);
        go(edge::room_or_alias);
        break;
      case '@':
        go(edge::user);
        break;
      case '$':
        go(edge::event);
        break;
      default:
        break;
    }
    go(edge::any);
  }
};

classification route_table::classify(const request& req, key_buffer& buf) const noexcept {
  classification out;
  buf.size = 0;
  if (nodes_.empty()) return out;

  std::string_view path = req.path.substr(0, req.path.find('?'));
  const std::string_view query = query_of(req);
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);

  std::uint64_t method_bit = 1;  // a method no rule names: only "*" rules accept it
  for (std::size_t i = 0; i < methods_.size(); ++i) {
    if (methods_[i] == req.method) {
      method_bit = std::uint64_t{1} << (i + 1);
      break;
    }
  }

  classify_walk w{*this, path, query, method_bit, {}, 0x7fffffff, {}, false};
  w.walk(0, 0, 0);
  if (w.best == 0x7fffffff) return out;

  const compiled_rule& r = compiled_[w.best];
  out.rule = w.best;
  out.pool = r.pool;
  out.kind = r.key;
  switch (r.key) {
    case key_kind::room: {
      const std::size_t len = percent_decode(w.best_room, buf.data, sizeof buf.data);
      if (len == npos_decoded) break;  // over-long capture: route, but no key
      if (w.best_room_or_alias && (len == 0 || buf.data[0] != '!')) break;  // an alias
      buf.size = len;
      out.key = buf.view();
      break;
    }
    case key_kind::user:
      out.key = req.user;
      break;
    case key_kind::origin:
      out.key = req.origin;
      break;
    case key_kind::none:
      break;
  }
  return out;
}

std::string route_table::to_markdown() const {
  std::string out =
      "| # | name | methods | pattern | pool | key |\n"
      "|---|---|---|---|---|---|\n";
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    const rule_spec& r = rules_[i];
    out += "| " + std::to_string(i + 1) + " | " + r.name + " | " + escape_pipes(r.methods) +
           " | `" + escape_pipes(r.pattern) + "`";
    if (!r.if_query_absent.empty()) out += " without `?" + r.if_query_absent + "`";
    if (compiled_[i].shadowed_by >= 0) {
      out += " (overridden by #" + std::to_string(compiled_[i].shadowed_by + 1) + ")";
    }
    out += " | " + r.pool + " | " + std::string(to_string(r.key)) + " |\n";
  }
  return out;
}

std::variant<std::vector<rule_spec>, compile_error> effective_rules(
    std::vector<rule_spec> prepend,
    const std::vector<std::pair<std::string, std::string>>& retarget, bool replace_defaults) {
  std::vector<rule_spec> out = std::move(prepend);
  const std::size_t first_retargetable = replace_defaults ? 0 : out.size();
  if (!replace_defaults) {
    std::vector<rule_spec> defaults = default_rules();
    out.insert(out.end(), std::make_move_iterator(defaults.begin()),
               std::make_move_iterator(defaults.end()));
  }
  for (const auto& entry : retarget) {
    // Not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
    const std::string& name = entry.first;
    const auto it = std::find_if(out.begin() + static_cast<std::ptrdiff_t>(first_retargetable),
                                 out.end(), [&](const rule_spec& r) { return r.name == name; });
    if (it == out.end()) return compile_error{"retarget: no rule named '" + name + "'"};
    it->pool = entry.second;
  }
  return out;
}

}  // namespace spoa::routing
