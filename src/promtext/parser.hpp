#pragma once
// Prometheus text exposition format 0.0.4 parser, sans-I/O: bytes in, samples out through a
// callback. OpenMetrics 1.0 input is tolerated (see below) because prometheus_client switches to it
// when asked, and a tolerant reader costs little.
//
// Format: https://prometheus.io/docs/instrumenting/exposition_formats/ (summarised with Synapse's
// specifics in /work/shared/reference/synapse-metrics.md §2, §6-§8).
//
// Decisions, each pinned by a test in tests/unit/promtext:
// - A scrape is all-or-nothing: the first malformed line stops parsing and parse() returns
//   ok = false with "line N: <what was expected>". Samples already handed to the sink before the
//   error must be discarded by the caller (load::extract does).
// - The sink is asked wants(name) once per run of lines with the same metric name, before the
//   line's labels and value are decoded. An unwanted line is checked only for its length and its
//   name, then skipped without decoding: that is what makes ignoring the hundreds of families the
//   load model does not need cheap. Validation of the rest of such lines is therefore not done.
// - Label views point into the body (no allocation); labels live in a fixed array of
//   max_labels_capacity entries, so limits::max_labels is clamped to it.
// - Lines end with '\n'; a final line without '\n' is accepted; a "\r\n" line end is tolerated
//   (the '\r' is dropped) because proxies and hand-written exporters produce it.
// - Tokens are separated by runs of spaces or tabs; leading and trailing blanks are ignored.
// - Values: Go ParseFloat syntax as Prometheus accepts it, minus hex floats: decimal with optional
//   sign and exponent (1.2e+010), NaN, [+-]Inf and [+-]Infinity, case-insensitive (prometheus-cpp
//   writes "Nan"). Out-of-range values (1e999) are errors. Parsed with std::from_chars, so the C
//   locale does not matter.
// - Timestamps: an integer is int64 milliseconds (0.0.4, may be negative); a fractional number is
//   OpenMetrics seconds and is converted to milliseconds. An integer OpenMetrics timestamp is
//   therefore read as milliseconds: nothing in synapse-spoa uses timestamps.
// - Metadata: "# HELP name doc" (doc may be empty, not unescaped), "# TYPE name type" with type in
//   counter, gauge, histogram, summary, untyped and the OpenMetrics unknown, gaugehistogram, info,
//   stateset; "# UNIT" is accepted and ignored; "# EOF" ends the body (only blank lines may
//   follow); any other '#' line is a comment. At most one HELP and one TYPE per family, TYPE before
//   the family's first sample: checked against the current family only (families are contiguous),
//   which needs no allocation. Duplicate series and non-contiguous families are not detected —
//   neither does Prometheus's own scrape parser (model/textparse/promparse.go).
// - Family membership: a sample belongs to the current family when its name is the family name or
//   the family name plus a suffix its type allows (counter _total/_created, histogram
//   _bucket/_count/_sum/_created, summary _count/_sum/_created, gaugehistogram
//   _bucket/_gcount/_gsum, info _info). Any other name starts a new untyped family.
// - Decoded histogram series (same labels apart from le) are checked: every _bucket has a numeric
//   le, le strictly increases, counts never decrease, a series with buckets has le="+Inf", and
//   that bucket equals _count. Decoded summary quantile samples need a numeric quantile label.
// - Quoted UTF-8 names ({"my.metric", "a.b"="c"}) are accepted; such a name is reported raw (as
//   written between the quotes, escapes included).
// - OpenMetrics exemplars ("value [ts] # {...} v") are skipped.
// - Label values are not checked to be UTF-8; escapes other than \\ \" \n are errors.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace spoa::promtext {

struct label {
  std::string_view name;
  std::string_view value;  // raw, still escaped: use unescape_label_value() when it matters
};

// Resolves \\, \" and \n. Other backslash sequences are copied unchanged (parse() rejects them).
std::string unescape_label_value(std::string_view raw);

// Parses one value token: decimal float (Go ParseFloat syntax without hex), NaN, [+-]Inf,
// [+-]Infinity, case-insensitive. False on anything else, including out-of-range numbers.
bool parse_value(std::string_view token, double& out);

struct sample {
  std::string_view family;  // the metric name as written on the line (e.g. x_bucket)
  std::span<const label> labels;
  double value = 0;
  bool has_timestamp = false;
  std::int64_t timestamp_ms = 0;
};

class sink {
 public:
  virtual ~sink() = default;
  // Asked once per metric name before its samples are decoded; false = skip the line cheaply.
  virtual bool wants(std::string_view metric_name) = 0;
  virtual void on_sample(const sample& s) = 0;
};

inline constexpr std::size_t max_labels_capacity = 64;

struct limits {
  std::size_t max_labels = 32;       // per sample; clamped to max_labels_capacity
  std::size_t max_line = 64 * 1024;  // bytes per line, line end excluded
};

struct parse_result {
  bool ok = true;
  std::size_t line = 0;     // 1-based line of the error; 0 when ok
  std::string message;      // "line N: ..." when !ok
  std::size_t samples = 0;  // samples handed to the sink
};

parse_result parse(std::string_view body, sink& out, limits lim = {});

}  // namespace spoa::promtext
