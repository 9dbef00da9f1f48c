#include "load/extract.hpp"

#include <cmath>
#include <span>

#include "promtext/parser.hpp"

namespace spoa::load {

namespace {

const scraped_family* family_of(std::string_view name) {
  for (const auto& f : scraped_families)
    if (f.family == name) return &f;
  return nullptr;
}

// Adds v to an accumulator that starts as NaN (absent).
void accumulate(double& acc, double v) {
  acc = std::isnan(acc) ? v : acc + v;
}

// Label values compared raw: the names and values filtered on contain no escapable characters.
std::string_view label_value(std::span<const promtext::label> labels, std::string_view name) {
  for (const auto& l : labels)
    if (l.name == name) return l.value;
  return {};
}

bool is_long_poll(std::span<const promtext::label> labels) {
  const std::string_view servlet = label_value(labels, "servlet");
  return servlet == "SyncRestServlet" || servlet == "EventStreamRestServlet";
}

class scrape_sink final : public promtext::sink {
 public:
  scrape value;

  bool wants(std::string_view name) override { return family_of(name) != nullptr; }

  void on_sample(const promtext::sample& s) override {
    // A family may fill several fields (one per label filter): every row of that name applies.
    for (const auto& f : scraped_families) {
      if (f.family != s.family) continue;
      if (!f.label.empty() && label_value(s.labels, f.label) != f.label_value) continue;
      double& field = value.*f.field;
      switch (f.how) {
        case scraped_family::fold::last:
          field = s.value;
          break;
        case scraped_family::fold::sum:
          accumulate(field, s.value);
          break;
        case scraped_family::fold::sum_active:
          // A NaN or negative gauge is exporter noise; it must not poison the sum.
          if (!is_long_poll(s.labels) && std::isfinite(s.value) && s.value > 0) field += s.value;
          break;
      }
    }
  }
};

}  // namespace

extract_result extract(std::string_view body) {
  scrape_sink sink;
  const promtext::parse_result r = promtext::parse(body, sink);
  extract_result out;
  if (!r.ok) {
    out.error = r.message;
    return out;
  }
  if (std::isnan(sink.value.cpu_seconds) && std::isnan(sink.value.tick_count)) {
    out.error =
        "no process_cpu_seconds_total or python_twisted_reactor_tick_time_count in the body";
    return out;
  }
  out.ok = true;
  out.value = sink.value;
  return out;
}

}  // namespace spoa::load
