#pragma once
// The checks on decoded samples that need more than one line: a histogram series' buckets (every
// _bucket has a numeric le, le strictly increases, counts never decrease, le="+Inf" is present
// and equals _count), and a summary sample's numeric quantile.
//
// Only one histogram series is remembered, its labels copied into a fixed array: histogram lines
// of one series are contiguous in every exporter we know (prometheus_client writes buckets,
// _count, _sum; prometheus-cpp _count, _sum, buckets), so a change of family or of label set
// (le aside) ends the series.

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "promtext/family.hpp"
#include "promtext/parser.hpp"

namespace spoa::promtext::detail {

class series_check {
 public:
  // s is a decoded sample of `family`, of type t, in part p of it.
  bool check(const sample& s, std::string_view family, family_type t, part p, std::string& why);
  // Ends the open histogram series, if any: at a new series, a new family and the end of the body.
  bool end(std::string& why);

 private:
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
  histogram_series h_;
};

}  // namespace spoa::promtext::detail
