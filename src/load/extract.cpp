#include "load/extract.hpp"

#include <cmath>
#include <span>

#include "promtext/parser.hpp"

namespace spoa::load {

namespace {

enum class field : unsigned char {
  none,
  cpu,
  start,
  tick_sum,
  tick_count,
  in_flight,
  sched_sum,
  sched_count,
  last_seen,
  listeners,
};

field field_of(std::string_view name) {
  if (name == "process_cpu_seconds_total") return field::cpu;
  if (name == "process_start_time_seconds") return field::start;
  if (name == "python_twisted_reactor_tick_time_sum") return field::tick_sum;
  if (name == "python_twisted_reactor_tick_time_count") return field::tick_count;
  if (name == "synapse_http_server_in_flight_requests_count") return field::in_flight;
  if (name == "synapse_storage_schedule_time_sum") return field::sched_sum;
  if (name == "synapse_storage_schedule_time_count") return field::sched_count;
  if (name == "python_twisted_reactor_last_seen") return field::last_seen;
  if (name == "synapse_notifier_listeners") return field::listeners;
  return field::none;
}

// Adds v to an accumulator that starts as NaN (absent).
void accumulate(double& acc, double v) {
  acc = std::isnan(acc) ? v : acc + v;
}

bool is_long_poll(std::span<const promtext::label> labels) {
  for (const auto& l : labels) {
    // Servlet names contain no escapable characters, so the raw value compares exactly.
    if (l.name == "servlet")
      return l.value == "SyncRestServlet" || l.value == "EventStreamRestServlet";
  }
  return false;
}

class scrape_sink final : public promtext::sink {
 public:
  scrape value;

  bool wants(std::string_view name) override { return field_of(name) != field::none; }

  void on_sample(const promtext::sample& s) override {
    switch (field_of(s.family)) {
      case field::cpu:
        value.cpu_seconds = s.value;
        break;
      case field::start:
        value.start_time = s.value;
        break;
      case field::tick_sum:
        accumulate(value.tick_sum, s.value);
        break;
      case field::tick_count:
        accumulate(value.tick_count, s.value);
        break;
      case field::in_flight:
        // A NaN or negative gauge is exporter noise; it must not poison the sum.
        if (!is_long_poll(s.labels) && std::isfinite(s.value) && s.value > 0) {
          value.in_flight += s.value;
        }
        break;
      case field::sched_sum:
        accumulate(value.sched_sum, s.value);
        break;
      case field::sched_count:
        accumulate(value.sched_count, s.value);
        break;
      case field::last_seen:
        value.reactor_last_seen = s.value;
        break;
      case field::listeners:
        accumulate(value.notifier_listeners, s.value);
        break;
      case field::none:
        break;
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
