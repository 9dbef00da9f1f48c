#pragma once
// The route table: Synapse's worker rules as data, compiled into a segment trie.
//
// A rule (rule_spec) names methods, a path pattern, a target pool and an affinity key. Rules are
// tried in order and the first one that matches wins; compile() turns the ordered list into a
// trie so that classify() walks the path once instead of trying rules one by one.
//
// Pattern syntax
// --------------
// A pattern starts with '/' and is a sequence of segments separated by '/'. It is matched against
// the raw (not decoded) request path with the query string removed, split the same way. Each
// segment is one of:
//
//   literal        matches a path segment byte for byte (raw, case-sensitive), e.g. "rooms".
//   {a|b/c|d}      alternatives: one of several literal segment sequences. An alternative may span
//                  segments ("api/v1"), so {api/v1|r0|v3|unstable} matches one or two segments.
//                  Needs at least one '|'; no empty alternatives; literals only inside.
//   {room}         one segment whose decoded form starts with '!' (raw "!" or "%21"): a room ID.
//   {alias}        ... starts with '#' ("%23"): a room alias.
//   {user}         ... starts with '@' ("%40"): a user ID.
//   {event}        ... starts with '$' ("%24"): an event ID.
//   {room_or_alias} ... starts with '!' or '#'.
//   *              any one non-empty segment.
//   **             only as the last segment: any remainder of the path, including nothing. This is
//                  how a prefix is written: "/_matrix/media/**" matches "/_matrix/media",
//                  "/_matrix/media/" and everything below it (Synapse's unanchored "^…/media/").
//
// Captures are typed by their sigil so that a rule can tell a room ID from an alias in the same
// position (POST /join/!room goes to a room worker keyed by the room, /join/#alias does not match
// "{room}" and falls through to a later rule). A segment that does not look like what a capture
// wants simply does not match; the default table's last rule ("/**" to main) catches it, and main
// can serve everything.
//
// A trailing '/' in a pattern is a literal empty last segment: "/a/b/" matches "/a/b/" only. An
// empty segment anywhere else ("//") is malformed. The characters '?', '#', '*' (outside a whole
// "*"/"**" segment), '{', '}', whitespace and control bytes are not allowed in literals.
//
// Paths: everything from the first '?' is ignored for matching. One leading '/' is dropped and
// the rest is split at every '/', so "/a/b/" has the segments "a", "b", "". A path without a
// leading '/' is split the same way (deterministic; only "**" rules can match such oddities).
//
// Methods: "*" (any) or exact, case-sensitive tokens joined by '|': "GET|HEAD". HEAD is not
// implied by GET.
//
// if_query_absent: "since" makes the rule match only when the query has no parameter named
// "since" (with or without a value: "since=x", "since=", "since" all count as present). The query
// is request::query, or the part of the path after '?' when request::query is empty.
//
// Keys: key room takes the {room} capture (or the {room_or_alias} capture when it decodes to
// something starting with '!') and percent-decodes that one segment into the caller's key_buffer;
// an alias, or a capture whose decoded form does not fit the buffer, gives an empty key (the rule
// still routes). key user / origin return request::user / request::origin (may be empty).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "routing/default_rules.hpp"
#include "routing/request.hpp"
#include "routing/rule.hpp"

namespace spoa::routing {

// Where classify() writes a decoded room ID. 768 bytes: three times the 255-byte limit on room IDs
// (spec appendix), so every legal ID fits even in the raw, fully escaped form.
struct key_buffer {
  char data[768];
  std::size_t size = 0;
  std::string_view view() const noexcept { return {data, size}; }
};

struct classification {
  int pool = -1;  // index into the pool-name list given to compile(); -1 only if no rule matched
  int rule = -1;  // index of the matched rule in rules()
  key_kind kind = key_kind::none;  // the matched rule's key kind, even when `key` is empty
  std::string_view key;  // decoded room ID (in the key_buffer), or request.user/.origin; may be
                         // empty (alias, missing arg, over-long capture): place by load then
};

struct compile_error {
  std::string message;  // exact; names the rule(s) and their source ("default" or "FILE:LINE")
};

class route_table {
 public:
  // Pool names are indices for classification::pool. Rules are tried in order: first match wins.
  // Errors (first one found, in rule order):
  //   "rule 'x' (SRC): unknown pool 'y'"
  //   "rule 'x' (SRC): malformed pattern '/p': WHAT at column N"
  //   "rule 'x' (SRC): malformed methods 'M': WHAT"
  //   "rule 'x' (SRC): key room needs a {room} or {room_or_alias} capture in every alternative"
  //   "rule 'x' (SRC): duplicate name (first used at SRC2)"
  //   "rule 'b' (SRC) can never match: rule 'a' (SRC) before it matches every request it matches"
  // The shadow check is conservative (it reports only certain shadowing: one earlier rule whose
  // methods include b's, without if_query_absent, whose pattern subsumes b's segment by segment).
  // A default rule shadowed by a rule written by the operator is an intended override, not an
  // error; to_markdown() marks it.
  static std::variant<route_table, compile_error> compile(std::vector<rule_spec> rules,
                                                          std::vector<std::string> pool_names);

  // No allocation, no exceptions; O(path segments x candidate branches).
  classification classify(const request& req, key_buffer& buf) const noexcept;

  const std::vector<rule_spec>& rules() const noexcept { return rules_; }
  const std::vector<std::string>& pool_names() const noexcept { return pool_names_; }

  // The effective table as Markdown: #, name, methods, pattern, pool, key (one row per rule, '#'
  // 1-based). Pipes are escaped as "\|" so the table renders on GitHub.
  std::string to_markdown() const;

  // Internal representation, public only so the implementation's helpers can name it.
  enum class edge : std::uint8_t { any, room, alias, user, event, room_or_alias, count_ };
  struct terminal {
    std::int32_t rule;
    std::int16_t room_segment;  // index of the room capture's path segment, -1 if none
    bool room_or_alias;         // that capture is {room_or_alias}: key only if it decodes to '!'
  };
  struct node {
    std::uint32_t lit_begin = 0, lit_count = 0;  // literal edges, sorted by (size, bytes)
    std::int32_t typed[static_cast<int>(edge::count_)] = {-1, -1, -1, -1, -1, -1};
    std::uint32_t end_begin = 0, end_count = 0;    // patterns ending exactly here, by rule
    std::uint32_t rest_begin = 0, rest_count = 0;  // patterns ending in "**" here, by rule
    std::int32_t min_rule = 0x7fffffff;            // lowest rule index in this subtree
  };
  struct literal_edge {
    std::uint32_t offset;  // into literals_
    std::uint32_t size;
    std::int32_t child;
  };
  struct compiled_rule {
    std::uint64_t method_mask;  // bit 0: a method no rule names; bit i+1: methods_[i]
    std::int32_t pool;
    key_kind key;
    int shadowed_by = -1;  // a default rule overridden by this earlier operator rule
  };

 private:
  route_table() = default;
  friend struct classify_walk;

  std::vector<rule_spec> rules_;
  std::vector<std::string> pool_names_;
  std::vector<compiled_rule> compiled_;
  std::vector<std::string> methods_;  // distinct method tokens named by any rule (<= 63)
  std::vector<node> nodes_;           // nodes_[0] is the root
  std::vector<literal_edge> literal_edges_;
  std::vector<terminal> terminals_;
  std::string literals_;  // all literal segment bytes; literal_edge points into it
};

// Builds the effective rule list: `prepend` first (they win), then the embedded defaults with
// `retarget` (rule name -> pool) applied; or only `prepend` when replace_defaults, and then
// `retarget` applies to `prepend`. A retarget naming no rule is an error:
//   "retarget: no rule named 'x'"
std::variant<std::vector<rule_spec>, compile_error> effective_rules(
    std::vector<rule_spec> prepend,
    const std::vector<std::pair<std::string, std::string>>& retarget, bool replace_defaults);

}  // namespace spoa::routing
