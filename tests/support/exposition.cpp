#include "support/exposition.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <system_error>

namespace spoa::sim {
namespace {

// Python's repr() of a finite double: the shortest digits that round-trip, positional when the
// decimal exponent is in [-4, 16), scientific otherwise ("1e+16", "1.5e-05").
std::string python_repr(double value) {
  char buf[64];
  // Shortest round-trip in scientific form: "[-]d[.ddd]e[+-]XX".
  auto res = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(res.ptr - buf));
  std::string out;
  if (!sci.empty() && sci.front() == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  auto e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits.push_back(c);
  }
  int exponent = 0;
  auto exp_text = sci.substr(e_pos + 1);
  if (!exp_text.empty() && exp_text.front() == '+') exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exponent);

  if (exponent < -4 || exponent >= 16) {
    out.push_back(digits[0]);
    if (digits.size() > 1) {
      out.push_back('.');
      out.append(digits, 1);
    }
    out.push_back('e');
    out.push_back(exponent < 0 ? '-' : '+');
    int mag = exponent < 0 ? -exponent : exponent;
    if (mag < 10) out.push_back('0');
    out.append(std::to_string(mag));
    return out;
  }
  if (exponent < 0) {
    out.append("0.");
    out.append(static_cast<std::size_t>(-exponent - 1), '0');
    out.append(digits);
    return out;
  }
  auto int_digits = static_cast<std::size_t>(exponent) + 1;
  if (digits.size() <= int_digits) {
    out.append(digits);
    out.append(int_digits - digits.size(), '0');
    out.append(".0");
  } else {
    out.append(digits, 0, int_digits);
    out.push_back('.');
    out.append(digits, int_digits);
  }
  return out;
}

void append_labels(std::string& out, label_set labels) {
  if (labels.empty()) return;
  std::sort(labels.begin(), labels.end(),
            [](const label& a, const label& b) { return a.first < b.first; });
  out.push_back('{');
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out.push_back(',');
    first = false;
    out.append(name);
    out.append("=\"");
    out.append(escape_label_value(value));
    out.push_back('"');
  }
  out.push_back('}');
}

}  // namespace

std::string format_go_float(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  std::string s = python_repr(value);
  // prometheus_client: "Go switches to exponents sooner than Python."
  auto dot = s.find('.');
  if (value > 0 && dot != std::string::npos && dot > 6) {
    std::string mantissa;
    mantissa.push_back(s[0]);
    mantissa.push_back('.');
    mantissa.append(s, 1, dot - 1);
    mantissa.append(s, dot + 1);
    while (!mantissa.empty() && (mantissa.back() == '0' || mantissa.back() == '.')) {
      mantissa.pop_back();
    }
    return mantissa + "e+0" + std::to_string(dot - 1);
  }
  return s;
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out.append("\\\\");
        break;
      case '"':
        out.append("\\\"");
        break;
      case '\n':
        out.append("\\n");
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

histogram::histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void histogram::observe_n(double value, std::uint64_t n) {
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  counts_[static_cast<std::size_t>(it - bounds_.begin())] += n;
  count_ += n;
  sum_ += value * static_cast<double>(n);
}

void histogram::add_counts(const std::vector<std::uint64_t>& per_bucket, double sum) {
  if (per_bucket.size() != counts_.size()) return;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    counts_[i] += per_bucket[i];
    count_ += per_bucket[i];
  }
  sum_ += sum;
}

std::vector<double> reactor_tick_buckets() {
  return {0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5};
}

std::vector<double> response_time_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10};
}

std::vector<double> prometheus_default_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10};
}

void exposition_writer::family(std::string_view name, std::string_view help,
                               std::string_view type) {
  out_.append("# HELP ");
  out_.append(name);
  out_.push_back(' ');
  out_.append(help);  // empty HELP keeps the trailing space, as prometheus_client writes it
  out_.append("\n# TYPE ");
  out_.append(name);
  out_.push_back(' ');
  out_.append(type);
  out_.push_back('\n');
}

void exposition_writer::sample(std::string_view name, label_set labels, double value) {
  out_.append(name);
  append_labels(out_, std::move(labels));
  out_.push_back(' ');
  out_.append(format_go_float(value));
  out_.push_back('\n');
}

void exposition_writer::histogram_samples(std::string_view name, const label_set& labels,
                                          const histogram& h) {
  std::string bucket_name(name);
  bucket_name.append("_bucket");
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= h.bounds().size(); ++i) {
    cumulative += h.counts()[i];
    label_set with_le = labels;
    with_le.emplace_back("le", i < h.bounds().size() ? format_go_float(h.bounds()[i]) : "+Inf");
    sample(bucket_name, std::move(with_le), static_cast<double>(cumulative));
  }
  sample(std::string(name) + "_count", labels, static_cast<double>(h.count()));
  sample(std::string(name) + "_sum", labels, h.sum());
}

}  // namespace spoa::sim
