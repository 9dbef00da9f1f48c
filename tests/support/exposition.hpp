#pragma once
// Prometheus text exposition 0.0.4 written the way Python's prometheus_client writes it (what a
// Synapse worker serves): `# HELP` / `# TYPE` per family (an empty HELP keeps its trailing
// space), labels sorted by name, numbers through floatToGoString, histogram buckets cumulative
// ending in le="+Inf" and followed by _count then _sum. Pure: no I/O, no clock.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spoa::sim {

// prometheus_client's floatToGoString: Python's repr() of the double (shortest round-trip,
// always a '.0' on integral values, exponent form below 1e-4 and from 1e16), except that a
// positive value with 7 or more integer digits switches to Go's exponent form, written as
// "e+0" followed by (integer digits - 1): 412246016.0 -> "4.12246016e+08", 1e10 -> "1e+010".
// Specials: "+Inf", "-Inf", "NaN".
std::string format_go_float(double value);

// Escapes a label value: backslash, double quote and newline (the only escapes of 0.0.4).
std::string escape_label_value(std::string_view value);

using label = std::pair<std::string, std::string>;
using label_set = std::vector<label>;

// Cumulative-on-output histogram. counts_[i] is the number of observations in bucket i alone
// (bounds_[i-1], bounds_[i]]; the last slot is the +Inf overflow.
class histogram {
 public:
  explicit histogram(std::vector<double> bounds);

  void observe(double value) { observe_n(value, 1); }
  void observe_n(double value, std::uint64_t n);
  // Adds per-bucket counts directly (size must be bounds().size() + 1, else ignored) and their
  // total `sum`; used when a whole batch is drawn from a distribution at once.
  void add_counts(const std::vector<std::uint64_t>& per_bucket, double sum);

  const std::vector<double>& bounds() const { return bounds_; }
  const std::vector<std::uint64_t>& counts() const { return counts_; }
  std::uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  double sum_ = 0;
};

// The bucket bounds Synapse uses (see the reference, §3).
std::vector<double> reactor_tick_buckets();        // 0.001 .. 5
std::vector<double> response_time_buckets();       // .005 .. 10 (synapse/http/request_metrics.py)
std::vector<double> prometheus_default_buckets();  // .005 .. 10 (prometheus_client default)

// Appends families to one body. Call family() once per metric family, then its samples.
class exposition_writer {
 public:
  void family(std::string_view name, std::string_view help, std::string_view type);
  // Labels are sorted by name on output, so callers may pass them in any order.
  void sample(std::string_view name, label_set labels, double value);
  void histogram_samples(std::string_view name, const label_set& labels, const histogram& h);

  const std::string& body() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace spoa::sim
