#pragma once
// Metric families: the types a "# TYPE" line may name, and which part of its family a sample is
// from the suffix after the family name (x_bucket is the bucket part of histogram x).

#include <cstdint>
#include <string_view>

namespace spoa::promtext::detail {

enum class family_type : std::uint8_t {
  untyped,  // also OpenMetrics "unknown"
  counter,
  gauge,
  histogram,
  summary,
  gaugehistogram,
  info,
  stateset,
};

enum class part : std::uint8_t { plain, total, created, bucket, count, sum, gcount, gsum, info };

// counter, gauge, histogram, summary, untyped, and OpenMetrics unknown, gaugehistogram, info and
// stateset; false on anything else.
bool parse_type(std::string_view s, family_type& t);

// The part a sample named family + suffix is in a family of type t; false when type t has no such
// suffix (an empty suffix is the plain part, which histograms and info have not).
bool suffix_part(family_type t, std::string_view suffix, part& p);

}  // namespace spoa::promtext::detail
