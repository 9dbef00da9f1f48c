#pragma once
// One /metrics body reduced to the handful of numbers the load model uses
// (reference synapse-metrics.md §3-§4). Everything else in the body is skipped by name without
// being decoded or allocated.

#include <limits>
#include <string>
#include <string_view>

namespace spoa::load {

// Cumulative values as scraped; NaN = the family was absent. Deltas are taken by the model.
struct scrape {
  static constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  double cpu_seconds = nan;  // process_cpu_seconds_total (user + system)
  double start_time = nan;   // process_start_time_seconds: a change means a restart
  double tick_sum = nan;     // python_twisted_reactor_tick_time_sum
  double tick_count = nan;   // python_twisted_reactor_tick_time_count
  // Σ synapse_http_server_in_flight_requests_count over all series except the long-poll servlets
  // SyncRestServlet and EventStreamRestServlet, which sit idle for ~30 s by design. A LaterGauge
  // emits no series for a servlet with nothing in flight, so absent means 0, not unknown.
  double in_flight = 0;
  double sched_sum = nan;          // synapse_storage_schedule_time_sum (Σ over series)
  double sched_count = nan;        // synapse_storage_schedule_time_count (Σ over series)
  double reactor_last_seen = nan;  // python_twisted_reactor_last_seen, seconds
  // synapse_notifier_listeners (Σ over series): requests waiting in the notifier, i.e. open
  // /sync and /events long-polls. Informational: not part of the load estimate.
  double notifier_listeners = nan;
  // synapse_threadpool_{working,total}_threads{name="database-master"}: the worker's database
  // connection threads busy, and how many there are.
  double db_threads_working = nan;
  double db_threads_total = nan;
};

// Which samples fill which scrape field: the one table extract() reads (extract.cpp walks it; a
// new signal adds a row here and a field above). Families not listed are skipped by name, without
// being decoded.
struct scraped_family {
  enum class fold : unsigned char {
    last,        // the last sample's value
    sum,         // Σ over the family's series (NaN until one is seen)
    sum_active,  // Σ of positive finite values, long-poll servlets excluded (in_flight)
  };
  std::string_view family;
  double scrape::*field;
  fold how = fold::last;
  std::string_view label = {};  // non-empty: only series whose label `label` is `label_value`
  std::string_view label_value = {};
};

inline constexpr scraped_family scraped_families[] = {
    {"process_cpu_seconds_total", &scrape::cpu_seconds},
    {"process_start_time_seconds", &scrape::start_time},
    {"python_twisted_reactor_tick_time_sum", &scrape::tick_sum, scraped_family::fold::sum},
    {"python_twisted_reactor_tick_time_count", &scrape::tick_count, scraped_family::fold::sum},
    {"synapse_http_server_in_flight_requests_count", &scrape::in_flight,
     scraped_family::fold::sum_active},
    {"synapse_storage_schedule_time_sum", &scrape::sched_sum, scraped_family::fold::sum},
    {"synapse_storage_schedule_time_count", &scrape::sched_count, scraped_family::fold::sum},
    {"python_twisted_reactor_last_seen", &scrape::reactor_last_seen},
    {"synapse_notifier_listeners", &scrape::notifier_listeners, scraped_family::fold::sum},
    {"synapse_threadpool_working_threads", &scrape::db_threads_working, scraped_family::fold::sum,
     "name", "database-master"},
    {"synapse_threadpool_total_threads", &scrape::db_threads_total, scraped_family::fold::sum,
     "name", "database-master"},
};

struct extract_result {
  bool ok = false;
  scrape value;
  std::string error;  // the parser's "line N: ..." message, or why the body is not usable
};

// Parses `body` (Prometheus text 0.0.4, OpenMetrics tolerated) with promtext::parse. Fails when
// the body is malformed (a scrape is all-or-nothing) or carries neither process_cpu_seconds_total
// nor python_twisted_reactor_tick_time_count (then it is not a Synapse worker's metrics, or
// metrics are disabled) — the model counts either as a failed scrape.
extract_result extract(std::string_view body);

}  // namespace spoa::load
