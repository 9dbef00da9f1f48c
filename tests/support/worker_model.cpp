#include "support/worker_model.hpp"

#include <algorithm>
#include <cmath>

namespace spoa::sim {
namespace {

constexpr double max_tick_seconds = 5.0;
constexpr double max_ticks_per_second = 100.0;
// The database pool's cp_min / cp_max as compose/render.py configures them.
constexpr std::int64_t db_pool_min_threads = 5;
constexpr std::int64_t db_pool_max_threads = 10;
// How process CPU splits into user and system time (process_cpu_{user,system}_seconds_total);
// the real bodies show 88-92 % user time.
constexpr double user_cpu_share = 0.9;
constexpr double system_cpu_share = 0.1;

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

std::string_view path_of(std::string_view target) {
  auto q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

// A servlet's class name, as Synapse labels a request with it. `suffix` rules match the end of
// the path, the others any part of it.
struct servlet_rule {
  std::string_view needle;
  std::string_view servlet;
  bool suffix = false;
};

// First match wins; checked against the path only. Names are Synapse's class names
// (synapse/federation/transport/server/, synapse/rest/client/, synapse/rest/media/).
constexpr servlet_rule federation_rules[] = {
    {"/send_join/", "FederationV2SendJoinServlet"},
    {"/make_join/", "FederationMakeJoinServlet"},
    {"/send/", "FederationSendServlet"},
    {"/state_ids/", "FederationStateIdsServlet"},
    {"/get_missing_events/", "FederationGetMissingEventsServlet"},
};
constexpr servlet_rule media_rules[] = {
    {"/thumbnail/", "ThumbnailResource"},
    {"/download/", "DownloadResource"},
};
constexpr servlet_rule client_rules[] = {
    {"/sync", "SyncRestServlet", true},
    {"/events", "EventStreamRestServlet", true},
    {"/messages", "RoomMessageListRestServlet"},
    {"/sendToDevice/", "SendToDeviceRestServlet"},
    {"/send/", "RoomSendEventRestServlet"},
    {"/state/", "RoomStateEventRestServlet"},
    {"/state", "RoomStateRestServlet", true},
    {"/members", "RoomMemberListRestServlet"},
    {"/joined_rooms", "JoinedRoomsRestServlet"},
    {"/keys/query", "KeyQueryServlet"},
    {"/typing/", "RoomTypingRestServlet"},
    {"/receipt/", "ReceiptRestServlet"},
    {"/read_markers", "ReadMarkerRestServlet"},
    {"/pushrules", "PushRuleRestServlet"},
    {"/presence/", "PresenceStatusRestServlet"},
    {"/createRoom", "RoomCreateRestServlet", true},
    {"/login", "LoginRestServlet", true},
    {"/join", "RoomMembershipRestServlet", true},
    {"/leave", "RoomMembershipRestServlet", true},
    {"/invite", "RoomMembershipRestServlet", true},
    {"/join/", "JoinRoomAliasServlet"},
    {"/versions", "VersionsRestServlet"},
};

// A path that no servlet claims is labelled with the class name of the resource that got it
// (JsonResource._async_render_wrapper sets the name before matching), as real Synapse's 404s show.
template <std::size_t N>
std::string_view first_match(std::string_view path, const servlet_rule (&rules)[N],
                             std::string_view resource) {
  for (const auto& rule : rules) {
    if (rule.suffix ? path.ends_with(rule.needle) : contains(path, rule.needle)) {
      return rule.servlet;
    }
  }
  return resource;
}

bool is_long_poll(std::string_view servlet) {
  return servlet == "SyncRestServlet" || servlet == "EventStreamRestServlet";
}

}  // namespace

std::optional<worker_mode> parse_mode(std::string_view text) {
  if (text == "normal") return worker_mode::normal;
  if (text == "slow") return worker_mode::slow;
  if (text == "hung") return worker_mode::hung;
  if (text == "down") return worker_mode::down;
  if (text == "garbage") return worker_mode::garbage;
  if (text == "huge") return worker_mode::huge;
  return std::nullopt;
}

std::string_view mode_name(worker_mode mode) {
  switch (mode) {
    case worker_mode::normal:
      return "normal";
    case worker_mode::slow:
      return "slow";
    case worker_mode::hung:
      return "hung";
    case worker_mode::down:
      return "down";
    case worker_mode::garbage:
      return "garbage";
    case worker_mode::huge:
      return "huge";
  }
  return "normal";
}

std::string_view method_label(std::string_view method) {
  static constexpr std::string_view known[] = {"GET",  "POST",  "PUT",    "DELETE",
                                               "HEAD", "PATCH", "OPTIONS"};
  for (auto k : known) {
    if (method == k) return k;
  }
  return "OTHER";
}

std::string_view servlet_for_target(std::string_view target) {
  auto path = path_of(target);
  if (path.starts_with("/_matrix/federation/")) {
    return first_match(path, federation_rules, "TransportLayerServer");
  }
  if (path.starts_with("/_matrix/media/")) {
    return first_match(path, media_rules, "MediaRepositoryResource");
  }
  if (path.starts_with("/_matrix/client/v1/media/")) {
    return first_match(path, media_rules, "ClientRestResource");
  }
  if (path.starts_with("/_matrix/client/"))
    return first_match(path, client_rules, "ClientRestResource");
  return "JsonResource";
}

std::string_view tag_for(std::string_view servlet, std::string_view target) {
  if (servlet != "SyncRestServlet") return "";
  auto q = target.find('?');
  auto query = q == std::string_view::npos ? std::string_view() : target.substr(q);
  auto has = [&](std::string_view param) {
    return contains(query, "?" + std::string(param)) || contains(query, "&" + std::string(param));
  };
  if (!has("since=")) return "sync_v2:initial_sync";
  if (has("full_state=true")) return "sync_v2:full_state_sync";
  return "sync_v2:incremental_sync";
}

worker_model::worker_model(model_params params, double now, double wall_now)
    : params_(std::move(params)),
      start_(now),
      // prometheus_client derives it from /proc clock ticks: two decimals.
      start_wall_(std::round(wall_now * 100.0) / 100.0),
      busy_until_(params_.cores, now),
      last_tick_update_(now) {}

ticket worker_model::admit(std::string_view method, std::string_view target, double now) {
  ticket t;
  t.arrival = now;
  t.cost = params_.cpu_per_request * (mode_ == worker_mode::slow ? factor_ : 1.0);
  t.method = method_label(method);
  t.servlet = servlet_for_target(target);
  t.tag = tag_for(t.servlet, target);
  if (busy_until_.empty()) {
    t.start = now;
  } else {
    auto core = std::min_element(busy_until_.begin(), busy_until_.end());
    t.start = std::max(now, *core);
    *core = t.start + t.cost;
    scheduled_cost_ += t.cost;
  }
  t.finish = t.start + t.cost;
  ++requests_total_;
  ++in_flight_total_;
  ++received_[{t.method, t.servlet}];
  ++in_flight_[{t.method, t.servlet}];
  return t;
}

void worker_model::complete(const ticket& t, int code, double now) {
  abandon(t, now);
  if (busy_until_.empty()) credited_cost_ += t.cost - std::clamp(now - t.start, 0.0, t.cost);
  auto code_text = std::to_string(code);
  ++responses_[{code_text, t.method}];
  quad_key key{code_text, t.method, t.servlet, t.tag};
  auto it = response_time_.find(key);
  if (it == response_time_.end()) {
    it = response_time_.emplace(key, histogram(response_time_buckets())).first;
  }
  it->second.observe(std::max(0.0, now - t.arrival));
  schedule_time_.observe(0.0002 + 0.1 * std::max(0.0, t.start - t.arrival));
}

void worker_model::abandon(const ticket& t, double now) {
  --in_flight_total_;
  auto it = in_flight_.find({t.method, t.servlet});
  if (it != in_flight_.end() && --it->second <= 0) in_flight_.erase(it);
  // Unlimited cores: credit the CPU actually spent. (complete() tops this up to the full cost.)
  if (busy_until_.empty()) credited_cost_ += std::clamp(now - t.start, 0.0, t.cost);
}

void worker_model::drop_backlog(double now) {
  for (auto& until : busy_until_) {
    if (until > now) {
      scheduled_cost_ -= until - now;
      until = now;
    }
  }
}

void worker_model::set_mode(worker_mode mode, double factor) {
  mode_ = mode;
  factor_ = mode == worker_mode::slow ? factor : 1.0;
}

worker_stats worker_model::stats() const {
  return {requests_total_, in_flight_total_, mode_, factor_};
}

double worker_model::simulated_cpu(double now) const {
  if (busy_until_.empty()) return credited_cost_;
  double pending = 0;
  for (double until : busy_until_)
    pending += std::max(0.0, until - now);
  return scheduled_cost_ - pending;
}

double worker_model::tick_duration(double utilisation) {
  double idle = 1.0 - std::clamp(utilisation, 0.0, 1.0);
  return std::min(max_tick_seconds, 0.001 / std::max(0.0002, idle * idle));
}

void worker_model::advance_ticks(double now) {
  double dt = now - last_tick_update_;
  if (dt <= 0) return;
  double cpu = simulated_cpu(now);
  double per_core = static_cast<double>(std::max(1u, params_.cores));
  double u = (cpu - cpu_at_last_tick_update_) / (dt * per_core) + params_.idle_cpu_rate;
  double d = tick_duration(u);
  double rate = std::min(max_ticks_per_second, 1.0 / d);
  double ticks = dt * rate + tick_carry_;
  double whole = std::floor(ticks);
  tick_carry_ = ticks - whole;
  last_seen_ = tick_carry_ / rate;
  last_tick_update_ = now;
  cpu_at_last_tick_update_ = cpu;

  auto n = static_cast<std::uint64_t>(whole);
  if (n == 0) return;
  const auto& bounds = ticks_.bounds();
  std::vector<std::uint64_t> per_bucket(bounds.size() + 1, 0);
  std::uint64_t below = 0;
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    auto cumulative = static_cast<std::uint64_t>(
        std::floor(static_cast<double>(n) * (1.0 - std::exp(-bounds[i] / d))));
    cumulative = std::clamp(cumulative, below, n);
    per_bucket[i] = cumulative - below;
    below = cumulative;
  }
  per_bucket.back() = n - below;
  ticks_.add_counts(per_bucket, static_cast<double>(n) * d);
}

// Families in the order real Synapse 1.160 writes them (tests/unit/load/real/room1.txt), each
// with its real HELP text, type and label names; sim_model_test.cpp checks all of that against
// the real bodies. Families the simulator has no model for are left out rather than faked.
std::string worker_model::scrape(double now, int open_fds) {
  advance_ticks(now);
  const double uptime = std::max(0.0, now - start_);
  const double cpu = simulated_cpu(now) + params_.idle_cpu_rate * uptime;
  const label_set server{{"server_name", params_.server_name}};
  exposition_writer w;

  // prometheus_client's ProcessCollector.
  w.family("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge");
  w.sample("process_virtual_memory_bytes", {}, 1.156706304e+09);
  w.family("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge");
  w.sample("process_resident_memory_bytes", {},
           1.5e8 + 65536.0 * static_cast<double>(std::max<std::int64_t>(0, in_flight_total_)));
  w.family("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
           "gauge");
  w.sample("process_start_time_seconds", {}, start_wall_);
  w.family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
           "counter");
  w.sample("process_cpu_seconds_total", {}, cpu);
  w.family("process_open_fds", "Number of open file descriptors.", "gauge");
  w.sample("process_open_fds", {}, static_cast<double>(open_fds));
  w.family("process_max_fds", "Maximum number of open file descriptors.", "gauge");
  w.sample("process_max_fds", {}, 1048576.0);

  // synapse/metrics/_reactor_metrics.py: no labels, not even server_name.
  w.family("python_twisted_reactor_tick_time", "Tick time of the Twisted reactor (sec)",
           "histogram");
  w.histogram_samples("python_twisted_reactor_tick_time", {}, ticks_);
  w.family("python_twisted_reactor_last_seen", "Seconds since the Twisted reactor was last seen",
           "gauge");
  w.sample("python_twisted_reactor_last_seen", {}, last_seen_);

  // Synapse's CPUMetrics: gauges holding cumulative values, empty HELP.
  w.family("process_cpu_user_seconds_total", "", "gauge");
  w.sample("process_cpu_user_seconds_total", {}, cpu * user_cpu_share);
  w.family("process_cpu_system_seconds_total", "", "gauge");
  w.sample("process_cpu_system_seconds_total", {}, cpu * system_cpu_share);

  w.family("synapse_build_info", "Build information", "gauge");
  w.sample("synapse_build_info",
           {{"osversion", "Linux 6.1.0"},
            {"pythonversion", "CPython 3.14.10"},
            {"rustcversion", "rustc 1.95.0"},
            {"version", "1.160.0"}},
           1.0);
  w.family("synapse_server_name_info",
           "Maps Synapse `server_name`s to the `instance`s they're hosted on", "gauge");
  w.sample("synapse_server_name_info", server, 1.0);

  // The database pool: working threads follow the requests in flight; Twisted starts cp_min
  // threads and keeps those it grew to.
  const std::int64_t working = std::clamp<std::int64_t>(in_flight_total_, 0, db_pool_max_threads);
  db_pool_threads_ = std::max({db_pool_threads_, db_pool_min_threads, working});
  const label_set db_pool{{"name", "database-master"}, {"server_name", params_.server_name}};
  w.family("synapse_threadpool_total_threads",
           "Total number of threads currently in the threadpool", "gauge");
  w.sample("synapse_threadpool_total_threads", db_pool, static_cast<double>(db_pool_threads_));
  w.family("synapse_threadpool_working_threads",
           "Number of threads currently working in the threadpool", "gauge");
  w.sample("synapse_threadpool_working_threads", db_pool, static_cast<double>(working));
  w.family("synapse_threadpool_min_threads",
           "Minimum number of threads configured in the threadpool", "gauge");
  w.sample("synapse_threadpool_min_threads", db_pool, static_cast<double>(db_pool_min_threads));
  w.family("synapse_threadpool_max_threads",
           "Maximum number of threads configured in the threadpool", "gauge");
  w.sample("synapse_threadpool_max_threads", db_pool, static_cast<double>(db_pool_max_threads));

  // synapse/http/request_metrics.py.
  w.family("synapse_http_server_requests_received_total", "", "counter");
  for (const auto& [key, n] : received_) {
    w.sample("synapse_http_server_requests_received_total",
             {{"method", key[0]}, {"server_name", params_.server_name}, {"servlet", key[1]}},
             static_cast<double>(n));
  }
  w.family("synapse_http_server_responses_total", "", "counter");
  for (const auto& [key, n] : responses_) {
    w.sample("synapse_http_server_responses_total",
             {{"code", key[0]}, {"method", key[1]}, {"server_name", params_.server_name}},
             static_cast<double>(n));
  }
  w.family("synapse_http_server_response_time_seconds", "sec", "histogram");
  for (const auto& [key, h] : response_time_) {
    w.histogram_samples("synapse_http_server_response_time_seconds",
                        {{"code", key[0]},
                         {"method", key[1]},
                         {"server_name", params_.server_name},
                         {"servlet", key[2]},
                         {"tag", key[3]}},
                        h);
  }
  // A LaterGauge: only label sets with something in flight appear, so an idle worker writes
  // HELP and TYPE and no sample at all.
  std::int64_t long_polls = 0;
  w.family("synapse_http_server_in_flight_requests_count", "", "gauge");
  for (const auto& [key, n] : in_flight_) {
    w.sample("synapse_http_server_in_flight_requests_count",
             {{"method", key[0]}, {"server_name", params_.server_name}, {"servlet", key[1]}},
             static_cast<double>(n));
    if (is_long_poll(key[1])) long_polls += n;
  }

  w.family("synapse_storage_schedule_time", "sec", "histogram");
  w.histogram_samples("synapse_storage_schedule_time", server, schedule_time_);

  // Requests waiting in the notifier: the /sync and /events long-polls in flight.
  w.family("synapse_notifier_listeners", "", "gauge");
  w.sample("synapse_notifier_listeners", server, static_cast<double>(long_polls));
  return w.take();
}

}  // namespace spoa::sim
