#pragma once
// Route patterns as data: parsing the pattern text (syntax documented in route_table.hpp) into
// plain segment sequences, and the subsumption test behind the shadowed-rule check.
//
// Alternatives are expanded at parse time: "/_matrix/client/{api/v1|r0}/sync" becomes the two
// sequences [_matrix, client, api, v1, sync] and [_matrix, client, r0, sync]. Every sequence has
// a fixed length, except that one ending in `rest` ("**") matches any remainder.

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace spoa::routing {

enum class segment_kind {
  literal,        // raw bytes, compared exactly
  any,            // "*": one non-empty segment
  room,           // "{room}": one segment decoding to '!'...
  alias,          // "{alias}": '#'...
  user,           // "{user}": '@'...
  event,          // "{event}": '$'...
  room_or_alias,  // "{room_or_alias}": '!' or '#'
  rest,           // "**": the remainder, possibly nothing; always last
};

struct segment {
  segment_kind kind = segment_kind::literal;
  std::string text;  // literal only

  friend bool operator==(const segment&, const segment&) = default;
};

using segment_sequence = std::vector<segment>;

struct pattern_error {
  std::string what;
  std::size_t column = 0;  // 1-based position in the pattern text
};

// Bounds that keep the compiled trie and classify()'s segment stack small and fixed.
inline constexpr std::size_t max_pattern_segments = 32;
inline constexpr std::size_t max_pattern_expansions = 64;

std::variant<std::vector<segment_sequence>, pattern_error> parse_pattern(std::string_view text);

// Index of the {room} or {room_or_alias} segment, -1 if none (the first, if several).
int room_capture_index(const segment_sequence& seq) noexcept;

// True when every path `b` matches is also matched by `a` (segment-wise; certain, not complete).
bool subsumes(const segment_sequence& a, const segment_sequence& b) noexcept;

// Whether one raw path segment can match a segment of kind `k` (literal excluded): the sigil test
// classify() applies, shared with the subsumption check for literal segments.
bool segment_fits(segment_kind k, std::string_view raw) noexcept;

}  // namespace spoa::routing
