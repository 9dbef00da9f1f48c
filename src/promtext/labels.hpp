#pragma once
// Label sets: {name="value", "quoted.name"="value", ...}. Labels are views into the line, stored
// in a caller's fixed array, so reading them never allocates; values stay escaped
// (unescape_label_value in parser.hpp resolves them when a caller needs the text).

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "promtext/parser.hpp"

namespace spoa::promtext::detail {

// Reads labels from s[i], just inside the '{' (or after the quoted metric name's ','), through
// the closing '}'; i ends past it. Fills out[0..n); more than out.size() labels, a duplicate
// name or bad syntax is an error told in `why`.
bool read_labels(std::string_view s, std::size_t& i, std::span<label> out, std::size_t& n,
                 std::string& why);

const label* find_label(std::span<const label> labels, std::string_view name);

// Same labels apart from `ignored`, in any order. Raw (escaped) values compare correctly because
// the escaping is canonical: each character has exactly one written form.
bool same_series(std::span<const label> a, std::span<const label> b, std::string_view ignored);

}  // namespace spoa::promtext::detail
