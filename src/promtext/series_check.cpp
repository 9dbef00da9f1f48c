#include "promtext/series_check.hpp"

#include <algorithm>
#include <cmath>
#include <span>

#include "promtext/labels.hpp"
#include "promtext/lexer.hpp"
#include "promtext/value.hpp"

namespace spoa::promtext::detail {

bool series_check::end(std::string& why) {
  histogram_series& s = h_;
  if (!s.active) return true;
  s.active = false;
  if (s.has_bucket && !s.has_inf) {
    why = "histogram \"" + std::string(s.family) + "\" series ended without a le=\"+Inf\" bucket";
    return false;
  }
  if (s.has_inf && s.has_count && s.inf_value != s.count_value && !std::isnan(s.inf_value) &&
      !std::isnan(s.count_value)) {
    why = "histogram \"" + std::string(s.family) + "\": le=\"+Inf\" bucket (" +
          format_value(s.inf_value) + ") differs from its _count (" + format_value(s.count_value) +
          ")";
    return false;
  }
  return true;
}

bool series_check::check(const sample& s, std::string_view family, family_type t, part p,
                         std::string& why) {
  if (t == family_type::summary && p == part::plain) {
    const label* q = find_label(s.labels, "quantile");
    double qv = 0;
    if (q == nullptr) {
      why = "summary sample \"" + excerpt(s.family) + "\" has no quantile label";
      return false;
    }
    if (!parse_value(q->value, qv)) {
      why = "invalid quantile \"" + excerpt(q->value) + "\" on \"" + excerpt(s.family) + "\"";
      return false;
    }
    return true;
  }
  if (t != family_type::histogram && t != family_type::gaugehistogram) return true;
  histogram_series& h = h_;
  if (!h.active || h.family != family ||
      !same_series(std::span<const label>(h.labels.data(), h.label_count), s.labels, "le")) {
    if (!end(why)) return false;
    h = histogram_series{};
    h.active = true;
    h.family = family;
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
  if (le == nullptr) {
    why = "histogram bucket \"" + excerpt(s.family) + "\" has no le label";
    return false;
  }
  if (!parse_value(le->value, lev) || std::isnan(lev)) {
    why = "invalid le \"" + excerpt(le->value) + "\" on \"" + excerpt(s.family) + "\"";
    return false;
  }
  if (h.has_bucket) {
    if (!(lev > h.last_le)) {
      why = "le=\"" + excerpt(le->value) + "\" is not above the previous bucket's le=\"" +
            excerpt(h.last_le_raw) + "\"";
      return false;
    }
    if (s.value < h.last_bucket) {
      why = "bucket count " + format_value(s.value) + " is below the previous bucket's " +
            format_value(h.last_bucket) + " (buckets are cumulative)";
      return false;
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

}  // namespace spoa::promtext::detail
