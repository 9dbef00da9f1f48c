#include "promtext/family.hpp"

#include <array>
#include <cstddef>
#include <span>

namespace spoa::promtext::detail {

namespace {

struct suffix {
  std::string_view text;
  part p;
};

constexpr suffix counter_suffixes[] = {{"_total", part::total}, {"_created", part::created}};
constexpr suffix histogram_suffixes[] = {{"_bucket", part::bucket},
                                         {"_count", part::count},
                                         {"_sum", part::sum},
                                         {"_created", part::created}};
constexpr suffix summary_suffixes[] = {
    {"_count", part::count}, {"_sum", part::sum}, {"_created", part::created}};
constexpr suffix gaugehistogram_suffixes[] = {
    {"_bucket", part::bucket}, {"_gcount", part::gcount}, {"_gsum", part::gsum}};
constexpr suffix info_suffixes[] = {{"_info", part::info}};

struct type_row {
  std::string_view name;
  family_type type;
  std::span<const suffix> suffixes;
  bool plain;  // a sample may carry the bare family name
};

// Rows in family_type order, so a type's row is types[type]; aliases follow.
constexpr std::array<type_row, 9> types{{
    {"untyped", family_type::untyped, {}, true},
    {"counter", family_type::counter, counter_suffixes, true},
    {"gauge", family_type::gauge, {}, true},
    {"histogram", family_type::histogram, histogram_suffixes, false},
    {"summary", family_type::summary, summary_suffixes, true},
    {"gaugehistogram", family_type::gaugehistogram, gaugehistogram_suffixes, false},
    {"info", family_type::info, info_suffixes, false},
    {"stateset", family_type::stateset, {}, true},
    {"unknown", family_type::untyped, {}, true},
}};

constexpr bool rows_in_type_order() {
  for (std::size_t i = 0; i <= static_cast<std::size_t>(family_type::stateset); ++i) {
    if (static_cast<std::size_t>(types[i].type) != i) return false;
  }
  return true;
}
static_assert(rows_in_type_order());

}  // namespace

bool parse_type(std::string_view s, family_type& t) {
  for (const auto& row : types) {
    if (row.name == s) {
      t = row.type;
      return true;
    }
  }
  return false;
}

bool suffix_part(family_type t, std::string_view suffix_text, part& p) {
  const type_row& row = types[static_cast<std::size_t>(t)];
  if (suffix_text.empty()) {
    p = part::plain;
    return row.plain;
  }
  for (const auto& s : row.suffixes) {
    if (s.text == suffix_text) {
      p = s.p;
      return true;
    }
  }
  return false;
}

}  // namespace spoa::promtext::detail
