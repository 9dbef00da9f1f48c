#include "agent/metrics.hpp"

#include "config/load.hpp"

#include <chrono>
#include <cmath>
#include <limits>
#include <string_view>
#include <unordered_map>

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

namespace spoa::agent {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

double read(const std::atomic<std::uint64_t>& c) {
  return static_cast<double>(c.load(std::memory_order_relaxed));
}
double read(const std::atomic<double>& g) {
  return g.load(std::memory_order_relaxed);
}

ClientMetric with_labels(std::vector<ClientMetric::Label> labels) {
  ClientMetric m;
  m.label = std::move(labels);
  return m;
}

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void add_counter(MetricFamily& f, std::vector<ClientMetric::Label> labels, double v) {
  auto m = with_labels(std::move(labels));
  m.counter.value = v;
  f.metric.push_back(std::move(m));
}

void add_gauge(MetricFamily& f, std::vector<ClientMetric::Label> labels, double v) {
  auto m = with_labels(std::move(labels));
  m.gauge.value = v;
  f.metric.push_back(std::move(m));
}

// One latency_histogram as Prometheus buckets (cumulative, then +Inf), count and sum.
template <std::size_t N>
ClientMetric histogram_metric(const std::array<double, N>& bounds, const latency_histogram<N>& h) {
  ClientMetric m;
  std::uint64_t cum = 0;
  for (std::size_t b = 0; b < N; ++b) {
    cum += h.buckets[b].load(std::memory_order_relaxed);
    m.histogram.bucket.push_back({cum, bounds[b]});
  }
  cum += h.buckets[N].load(std::memory_order_relaxed);
  m.histogram.bucket.push_back({cum, std::numeric_limits<double>::infinity()});
  m.histogram.sample_count = cum;
  m.histogram.sample_sum = read(h.sum_ns) / 1e9;
  return m;
}

// The shared affinity store (shared_store.hpp).
void collect_shared(const shared_counters& c, std::vector<MetricFamily>& out) {
  auto up = family("synapse_spoa_shared_connected",
                   "1 while the shared affinity store (Redis) is connected and subscribed.",
                   MetricType::Gauge);
  add_gauge(up, {}, c.connected.load(std::memory_order_relaxed) ? 1 : 0);
  out.push_back(std::move(up));
  auto conn = family("synapse_spoa_shared_connections_total",
                     "Shared store sessions, by event (connect, disconnect).", MetricType::Counter);
  add_counter(conn, {{"event", "connect"}}, read(c.connects));
  add_counter(conn, {{"event", "disconnect"}}, read(c.disconnects));
  out.push_back(std::move(conn));
  auto ops = family("synapse_spoa_shared_operations_total",
                    "Shared store operations sent to Redis, by kind.", MetricType::Counter);
  add_counter(ops, {{"op", "claim"}}, read(c.claims));
  add_counter(ops, {{"op", "reconcile"}}, read(c.reconciled));
  add_counter(ops, {{"op", "move"}}, read(c.moves_pushed));
  add_counter(ops, {{"op", "refresh"}}, read(c.refreshes));
  add_counter(ops, {{"op", "load_report"}}, read(c.load_reports));
  add_counter(ops, {{"op", "restore_scan"}}, read(c.scans));
  out.push_back(std::move(ops));
  auto res = family("synapse_spoa_shared_results_total",
                    "Shared store outcomes: claims won, conflicts adopted (a lost claim), CAS "
                    "conflicts adopted (another agent moved first), moves received and adopted "
                    "from other agents, keys Redis had lost and that were claimed again.",
                    MetricType::Counter);
  add_counter(res, {{"result", "claim_won"}}, read(c.claims_won));
  add_counter(res, {{"result", "conflict_adopted"}}, read(c.conflicts_adopted));
  add_counter(res, {{"result", "cas_conflict_adopted"}}, read(c.cas_conflicts));
  add_counter(res, {{"result", "move_received"}}, read(c.moves_received));
  add_counter(res, {{"result", "move_adopted"}}, read(c.moves_adopted));
  add_counter(res, {{"result", "reclaimed"}}, read(c.reclaims));
  add_counter(res, {{"result", "load_report_received"}}, read(c.load_reports_received));
  add_counter(res, {{"result", "restored"}}, read(c.restored));
  out.push_back(std::move(res));
  auto bad = family("synapse_spoa_shared_errors_total",
                    "Shared store problems: changes dropped while Redis was down or slow "
                    "(reconciled later), invalid replies or messages ignored, error replies.",
                    MetricType::Counter);
  add_counter(bad, {{"kind", "dropped"}}, read(c.dropped));
  add_counter(bad, {{"kind", "invalid"}}, read(c.invalid));
  add_counter(bad, {{"kind", "error_reply"}}, read(c.errors));
  out.push_back(std::move(bad));
  auto peers = family("synapse_spoa_shared_peers",
                      "Other agents whose load report is current (heard within 3 x "
                      "shared.load_interval); bounded load sums their rates with this agent's.",
                      MetricType::Gauge);
  add_gauge(peers, {}, c.peers.load(std::memory_order_relaxed));
  out.push_back(std::move(peers));
  auto peer_rate = family("synapse_spoa_shared_peer_request_rate",
                          "Requests per second that the other agents report sending to each "
                          "worker (summed), as bounded load last counted them.",
                          MetricType::Gauge);
  {
    std::lock_guard<std::mutex> lock(c.peer_mu);
    for (const auto& r : c.peer_rates)
      add_gauge(peer_rate, {{"pool", r.pool}, {"worker", r.worker}}, r.rps);
  }
  out.push_back(std::move(peer_rate));
  auto lat = family("synapse_spoa_shared_redis_latency_seconds",
                    "Round trip of one shared store command to Redis.", MetricType::Histogram);
  lat.metric.push_back(histogram_metric(shared_counters::latency_buckets, c.latency));
  out.push_back(std::move(lat));
}

}  // namespace

agent_metrics::agent_metrics(const config::agent_config& cfg, const routing::route_table& routes)
    : state_(build(cfg, routes)), version_(config::version()) {}

// Decision slots: worker i's slot is i (one index space with the router and placement; workers
// without a pool never get decisions), then one slot per pool for decisions with no worker.
std::shared_ptr<agent_metrics::state> agent_metrics::build(
    const config::agent_config& cfg, const routing::route_table& routes) const {
  auto st = std::make_shared<state>();
  st->haproxy_view = !cfg.load.haproxy_metrics.empty();
  for (const auto& w : cfg.workers) {
    st->worker_names.push_back(w.name);
    std::string backend;
    for (const auto& p : cfg.pools)
      if (!w.pool.empty() && p.name == w.pool) backend = p.backend;
    st->slot_pool.push_back(backend.empty() ? std::string() : w.pool);
    st->slot_backend.push_back(backend);
    st->slot_server.push_back(w.server.empty() ? w.name : w.server);
  }
  st->pool_base = st->slot_pool.size();
  for (const auto& p : cfg.pools) {  // decisions that found no worker
    st->slot_pool.push_back(p.name);
    st->slot_backend.push_back(p.backend);
    st->slot_server.push_back("");
  }
  st->decisions = std::make_unique<counter[]>(st->slot_pool.size() * k_reasons);
  st->workers = std::make_unique<state::worker_gauges[]>(cfg.workers.size());
  for (const auto& r : routes.rules())
    st->rule_names.push_back(r.name);
  const std::size_t cells = st->rule_names.size() * cfg.workers.size();
  st->responses = std::make_unique<std::atomic<double>[]>(cells * load::status_class_count);
  st->misroute = std::make_unique<std::atomic<std::uint8_t>[]>(cells);
  return st;
}

// Reload builds the new label set, then carries every count over by its labels (pool, backend,
// server; worker names for the worker gauges), so counters never go back for what still exists.
void agent_metrics::reconfigure(const config::agent_config& cfg,
                                const routing::route_table& routes) {
  auto next = build(cfg, routes);
  const state& old = *state_;
  for (std::size_t n = 0; n < next->slot_pool.size(); ++n) {
    for (std::size_t o = 0; o < old.slot_pool.size(); ++o) {
      if (old.slot_pool[o] != next->slot_pool[n] || old.slot_backend[o] != next->slot_backend[n] ||
          old.slot_server[o] != next->slot_server[n])
        continue;
      for (std::size_t r = 0; r < k_reasons; ++r)
        next->decisions[n * k_reasons + r].store(
            old.decisions[o * k_reasons + r].load(std::memory_order_relaxed),
            std::memory_order_relaxed);
      break;
    }
  }
  for (std::size_t n = 0; n < next->worker_names.size(); ++n) {
    for (std::size_t o = 0; o < old.worker_names.size(); ++o) {
      if (old.worker_names[o] != next->worker_names[n]) continue;
      next->workers[n].keys.store(old.workers[o].keys.load(std::memory_order_relaxed),
                                  std::memory_order_relaxed);
      break;
    }
  }
  // Response counts by rule and worker name.
  const auto index = [](const std::vector<std::string>& names) {
    std::unordered_map<std::string_view, std::size_t> m;
    for (std::size_t i = 0; i < names.size(); ++i)
      m.emplace(names[i], i);
    return m;
  };
  const auto old_rules = index(old.rule_names), old_workers = index(old.worker_names);
  const std::size_t ow = old.worker_names.size(), nw = next->worker_names.size();
  for (std::size_t r = 0; r < next->rule_names.size(); ++r) {
    const auto orule = old_rules.find(next->rule_names[r]);
    if (orule == old_rules.end()) continue;
    for (std::size_t w = 0; w < nw; ++w) {
      const auto oworker = old_workers.find(next->worker_names[w]);
      if (oworker == old_workers.end()) continue;
      for (std::size_t c = 0; c < load::status_class_count; ++c)
        next->responses[(r * nw + w) * load::status_class_count + c].store(
            read(old.responses[(orule->second * ow + oworker->second) * load::status_class_count +
                               c]),
            std::memory_order_relaxed);
    }
  }
  std::atomic_store(&state_, std::move(next));
}

void agent_metrics::on_decision(const decision::answer& a, double seconds) {
  state& st = *state_;
  std::size_t slot;
  if (a.worker_index >= 0 && static_cast<std::size_t>(a.worker_index) < st.pool_base) {
    slot = static_cast<std::size_t>(a.worker_index);
  } else {
    if (a.pool_index < 0) return;
    slot = st.pool_base + static_cast<std::size_t>(a.pool_index);
    if (slot >= st.slot_pool.size()) return;
  }
  const auto reason = static_cast<std::size_t>(a.why);
  if (reason < k_reasons) bump(st.decisions[slot * k_reasons + reason]);
  latency_.observe(latency_buckets, seconds, static_cast<std::uint64_t>(seconds * 1e9));
}

void agent_metrics::on_response(std::size_t worker, std::size_t rule, int cls, double weight,
                                double seconds) {
  state& st = *state_;
  const std::size_t workers = st.worker_names.size();
  if (worker >= workers || rule >= st.rule_names.size() || cls < 0 ||
      cls >= load::status_class_count)
    return;
  auto& c = st.responses[(rule * workers + worker) * load::status_class_count +
                         static_cast<std::size_t>(cls)];
  c.store(c.load(std::memory_order_relaxed) + weight, std::memory_order_relaxed);
  bump(responses_recorded_);
  if (std::isfinite(seconds) && seconds >= 0)
    st.workers[worker].response.observe(response_buckets, seconds,
                                        static_cast<std::uint64_t>(seconds * 1e9));
}

void agent_metrics::on_response_dropped(response_drop why) {
  bump(responses_dropped_[static_cast<std::size_t>(why)]);
}

void agent_metrics::set_misroutes(const std::vector<load::misroute>& suspects) {
  state& st = *state_;
  const std::size_t cells = st.rule_names.size() * st.worker_names.size();
  for (std::size_t i = 0; i < cells; ++i)
    st.misroute[i].store(0, std::memory_order_relaxed);
  for (const auto& m : suspects) {
    const std::size_t i = m.rule * st.worker_names.size() + m.worker;
    if (m.rule < st.rule_names.size() && m.worker < st.worker_names.size())
      st.misroute[i].store(1, std::memory_order_relaxed);
  }
}

std::uint64_t agent_metrics::decisions(std::size_t w, routing::reason r) const noexcept {
  const state& st = *state_;
  const auto reason = static_cast<std::size_t>(r);
  if (w >= st.pool_base || reason >= k_reasons) return 0;
  return st.decisions[w * k_reasons + reason].load(std::memory_order_relaxed);
}

void agent_metrics::on_accept(bool accepted) {
  if (accepted) {
    bump(accepted_);
    bump(open_);
  } else {
    bump(refused_);
  }
}

void agent_metrics::on_close(spop::status why) {
  open_.store(open_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  const auto code = static_cast<std::size_t>(why);
  if (code < k_statuses) bump(closes_[code]);
}

void agent_metrics::on_frames(const spop::connection_counters& d) {
  bump(hello_in_, d.hello_received);
  bump(notify_in_, d.notify_received);
  bump(disconnect_in_, d.disconnect_received);
  bump(unknown_in_, d.unknown_received);
  bump(messages_in_, d.messages_received);
  bump(hello_out_, d.hello_sent);
  bump(ack_out_, d.ack_sent);
  bump(disconnect_out_, d.disconnect_sent);
  bump(actions_dropped_, d.actions_dropped);
}

void agent_metrics::update_load(const load::model& model) {
  state& st = *state_;
  st.haproxy_ok.store(model.haproxy_status().ok, std::memory_order_relaxed);
  st.haproxy_failed.store(model.haproxy_status().failed, std::memory_order_relaxed);
  for (std::size_t i = 0; i < st.worker_names.size(); ++i) {
    const auto& s = model.status(i);
    auto& g = st.workers[i];
    for (std::size_t k = 0; k < std::size(load::signals); ++k)
      g.signal[k].store(s.*load::signals[k].value, std::memory_order_relaxed);
    g.capacity.store(s.capacity, std::memory_order_relaxed);
    g.scrape_seconds.store(s.last_scrape_seconds, std::memory_order_relaxed);
    g.scrapes_ok.store(s.scrapes_ok, std::memory_order_relaxed);
    g.scrapes_failed.store(s.scrapes_failed, std::memory_order_relaxed);
    g.state.store(static_cast<int>(s.state), std::memory_order_relaxed);
    g.haproxy.store(static_cast<int>(model.haproxy(i)), std::memory_order_relaxed);
    if (s.last_success_ms > 0) {
      // last_success_ms is on the steady clock; export it as a Unix time.
      const auto steady_now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::steady_clock::now().time_since_epoch())
                                  .count();
      const auto wall_now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
      const double age_ms =
          static_cast<double>(steady_now) - static_cast<double>(s.last_success_ms);
      g.last_success.store((static_cast<double>(wall_now) - age_ms) / 1000.0,
                           std::memory_order_relaxed);
    }
  }
}

void agent_metrics::update_placement(const decision::router& r) {
  const auto& p = r.placement();
  state& st = *state_;
  for (std::size_t i = 0; i < st.worker_names.size() && i < p.workers().size(); ++i)
    st.workers[i].keys.store(p.keys_on(static_cast<int>(i)), std::memory_order_relaxed);
  const auto& c = p.counters();
  aff_entries_.store(c.entries, std::memory_order_relaxed);
  for (int k = 0; k < routing::move_cause_count; ++k)
    moves_[static_cast<std::size_t>(k)].store(c.moves[k], std::memory_order_relaxed);
  evict_lru_.store(c.evictions_lru, std::memory_order_relaxed);
  evict_ttl_.store(c.evictions_ttl, std::memory_order_relaxed);
}

// The response feedback: counts by rule, worker and class for every cell that has seen a
// response (all five classes, so a 5xx share is a plain division), the misroute flags of those
// cells, the histograms of the workers in a pool, and what could not be matched.
void agent_metrics::collect_responses(const state& st, std::vector<MetricFamily>& out) const {
  auto resp = family("synapse_spoa_responses_total",
                     "Responses of each worker by the rule that routed them and status class, "
                     "from HAProxy's sampled response messages (a sampled response counts 100 / "
                     "percent; every 5xx is sent and counts 1).",
                     MetricType::Counter);
  auto mis = family("synapse_spoa_misroute_suspected",
                    "1 for a rule x worker whose 5xx share in the last responses.misroute_interval "
                    "was far above the rest of the traffic (a rule routed to the wrong pool); 0 "
                    "for the other cells that have seen responses.",
                    MetricType::Gauge);
  const std::size_t workers = st.worker_names.size();
  for (std::size_t r = 0; r < st.rule_names.size(); ++r) {
    for (std::size_t w = 0; w < workers; ++w) {
      const std::size_t cell = r * workers + w;
      std::array<double, load::status_class_count> v{};
      double any = 0;
      for (std::size_t c = 0; c < v.size(); ++c)
        any += v[c] = read(st.responses[cell * load::status_class_count + c]);
      if (any == 0) continue;
      for (std::size_t c = 0; c < v.size(); ++c)
        add_counter(resp,
                    {{"class", std::string(load::status_class_name(static_cast<int>(c)))},
                     {"rule", st.rule_names[r]},
                     {"worker", st.worker_names[w]}},
                    v[c]);
      add_gauge(mis, {{"rule", st.rule_names[r]}, {"worker", st.worker_names[w]}},
                st.misroute[cell].load(std::memory_order_relaxed));
    }
  }
  out.push_back(std::move(resp));
  out.push_back(std::move(mis));
  auto hist = family("synapse_spoa_worker_response_seconds",
                     "Time from the agent's answer to the worker's response headers (HAProxy's "
                     "queue, connect and the worker), from the sampled response messages; "
                     "long-polls excluded.",
                     MetricType::Histogram);
  for (std::size_t i = 0; i < workers; ++i) {
    if (st.slot_pool[i].empty()) continue;
    auto m = histogram_metric(response_buckets, st.workers[i].response);
    m.label = {{"pool", st.slot_pool[i]}, {"worker", st.worker_names[i]}};
    hist.metric.push_back(std::move(m));
  }
  out.push_back(std::move(hist));
  auto msgs = family("synapse_spoa_response_messages_total",
                     "Response messages from HAProxy, by result: recorded, or dropped because "
                     "the server, the rule or the status was not known.",
                     MetricType::Counter);
  add_counter(msgs, {{"result", "recorded"}}, read(responses_recorded_));
  add_counter(msgs, {{"result", "unknown_worker"}}, read(responses_dropped_[0]));
  add_counter(msgs, {{"result", "unknown_rule"}}, read(responses_dropped_[1]));
  add_counter(msgs, {{"result", "bad_status"}}, read(responses_dropped_[2]));
  out.push_back(std::move(msgs));
}

std::vector<MetricFamily> agent_metrics::Collect() const {
  const std::shared_ptr<state> st = std::atomic_load(&state_);
  std::vector<MetricFamily> out;

  auto info = family("synapse_spoa_build_info", "Build information; always 1.", MetricType::Gauge);
  add_gauge(info, {{"version", version_}}, 1);
  out.push_back(std::move(info));

  auto dec = family("synapse_spoa_decisions_total",
                    "Routing decisions by pool, backend, server and reason.", MetricType::Counter);
  for (std::size_t slot = 0; slot < st->slot_pool.size(); ++slot) {
    for (std::size_t r = 0; r < k_reasons; ++r) {
      const double v = read(st->decisions[slot * k_reasons + r]);
      if (v == 0) continue;
      add_counter(dec,
                  {{"pool", st->slot_pool[slot]},
                   {"backend", st->slot_backend[slot]},
                   {"server", st->slot_server[slot]},
                   {"reason", std::string(routing::to_string(static_cast<routing::reason>(r)))}},
                  v);
    }
  }
  out.push_back(std::move(dec));

  auto lat =
      family("synapse_spoa_decision_duration_seconds",
             "Time to classify and place one request (agent CPU, no I/O).", MetricType::Histogram);
  lat.metric.push_back(histogram_metric(latency_buckets, latency_));
  out.push_back(std::move(lat));

  auto open = family("synapse_spoa_spop_connections", "Open SPOP connections from HAProxy.",
                     MetricType::Gauge);
  add_gauge(open, {}, read(open_));
  out.push_back(std::move(open));
  auto acc = family("synapse_spoa_spop_connections_accepted_total", "SPOP connections accepted.",
                    MetricType::Counter);
  add_counter(acc, {}, read(accepted_));
  out.push_back(std::move(acc));
  auto ref =
      family("synapse_spoa_spop_connections_refused_total",
             "SPOP connections refused (connection cap or allow-list).", MetricType::Counter);
  add_counter(ref, {}, read(refused_));
  out.push_back(std::move(ref));

  auto closes = family("synapse_spoa_spop_closes_total",
                       "SPOP connections closed, by SPOP status code (0 normal, 1 I/O or peer "
                       "close, 2 timeout, 3+ protocol errors).",
                       MetricType::Counter);
  for (std::size_t code = 0; code < k_statuses; ++code) {
    const double v = read(closes_[code]);
    if (v != 0 || code == 0) add_counter(closes, {{"status", std::to_string(code)}}, v);
  }
  out.push_back(std::move(closes));

  auto fin = family("synapse_spoa_spop_frames_received_total", "SPOP frames received by type.",
                    MetricType::Counter);
  add_counter(fin, {{"type", "haproxy_hello"}}, read(hello_in_));
  add_counter(fin, {{"type", "notify"}}, read(notify_in_));
  add_counter(fin, {{"type", "haproxy_disconnect"}}, read(disconnect_in_));
  add_counter(fin, {{"type", "unknown"}}, read(unknown_in_));
  out.push_back(std::move(fin));
  auto fout = family("synapse_spoa_spop_frames_sent_total", "SPOP frames sent by type.",
                     MetricType::Counter);
  add_counter(fout, {{"type", "agent_hello"}}, read(hello_out_));
  add_counter(fout, {{"type", "ack"}}, read(ack_out_));
  add_counter(fout, {{"type", "agent_disconnect"}}, read(disconnect_out_));
  out.push_back(std::move(fout));
  auto msgs = family("synapse_spoa_spop_messages_total", "SPOE messages received in NOTIFY frames.",
                     MetricType::Counter);
  add_counter(msgs, {}, read(messages_in_));
  out.push_back(std::move(msgs));

  auto entries = family("synapse_spoa_affinity_entries", "Keys remembered in the affinity table.",
                        MetricType::Gauge);
  add_gauge(entries, {}, read(aff_entries_));
  out.push_back(std::move(entries));
  auto moves = family("synapse_spoa_affinity_moves_total",
                      "Remembered keys moved to another worker, by reason.", MetricType::Counter);
  for (int k = 0; k < routing::move_cause_count; ++k) {
    const auto cause = static_cast<routing::move_cause>(k);
    if (cause == routing::move_cause::none) continue;
    add_counter(moves, {{"reason", std::string(routing::to_string(cause))}},
                read(moves_[static_cast<std::size_t>(k)]));
  }
  out.push_back(std::move(moves));
  auto ev = family("synapse_spoa_affinity_evictions_total",
                   "Keys forgotten, by reason (lru: table full, ttl: idle).", MetricType::Counter);
  add_counter(ev, {{"reason", "lru"}}, read(evict_lru_));
  add_counter(ev, {{"reason", "ttl"}}, read(evict_ttl_));
  out.push_back(std::move(ev));

  auto keys = family("synapse_spoa_affinity_keys",
                     "Keys (rooms, users, origins) remembered on each worker.", MetricType::Gauge);
  for (std::size_t i = 0; i < st->worker_names.size(); ++i) {
    if (st->slot_pool[i].empty()) continue;  // a worker in no pool holds no keys
    add_gauge(keys, {{"pool", st->slot_pool[i]}, {"worker", st->worker_names[i]}},
              read(st->workers[i].keys));
  }
  out.push_back(std::move(keys));

  // One gauge family per exported load signal (load::signals), in the table's order.
  std::vector<MetricFamily> signal_families;
  for (const auto& sig : load::signals) {
    signal_families.push_back(family("synapse_spoa_worker_" + std::string(sig.metric),
                                     std::string(sig.help), MetricType::Gauge));
  }
  auto cap = family("synapse_spoa_worker_capacity",
                    "Live capacity factor placement applies to each worker (1 = nominal).",
                    MetricType::Gauge);
  auto state_f = family("synapse_spoa_worker_state",
                        "Load state of each worker (1 for the current state).", MetricType::Gauge);
  auto sdur = family("synapse_spoa_worker_scrape_duration_seconds",
                     "Duration of the last metrics scrape of each worker.", MetricType::Gauge);
  auto sok = family("synapse_spoa_worker_scrapes_total",
                    "Metrics scrapes of each worker, by result.", MetricType::Counter);
  auto slast = family("synapse_spoa_worker_last_scrape_success_timestamp_seconds",
                      "Unix time of the last successful scrape of each worker.", MetricType::Gauge);
  for (std::size_t i = 0; i < st->worker_names.size(); ++i) {
    const auto& w = st->worker_names[i];
    const auto& g = st->workers[i];
    for (std::size_t k = 0; k < signal_families.size(); ++k)
      add_gauge(signal_families[k], {{"worker", w}}, read(g.signal[k]));
    add_gauge(cap, {{"worker", w}}, read(g.capacity));
    const int s = g.state.load(std::memory_order_relaxed);
    for (int k = 0; k < routing::worker_state_count; ++k)
      add_gauge(state_f,
                {{"state", std::string(routing::to_string(static_cast<routing::worker_state>(k)))},
                 {"worker", w}},
                s == k ? 1 : 0);
    add_gauge(sdur, {{"worker", w}}, read(g.scrape_seconds));
    add_counter(sok, {{"result", "ok"}, {"worker", w}}, read(g.scrapes_ok));
    add_counter(sok, {{"result", "failed"}, {"worker", w}}, read(g.scrapes_failed));
    add_gauge(slast, {{"worker", w}}, read(g.last_success));
  }
  for (std::size_t k = 0; k < signal_families.size(); ++k)
    if (!load::signals[k].metric.empty()) out.push_back(std::move(signal_families[k]));
  for (auto* f : {&cap, &state_f, &sdur, &sok, &slast})
    out.push_back(std::move(*f));
  if (st->haproxy_view) {
    auto hap = family("synapse_spoa_worker_haproxy_state",
                      "HAProxy's view of each worker's server, from its exporter "
                      "(load.haproxy_metrics; 1 for the current state, unknown when stale): "
                      "DRAIN drains it in the agent, MAINT and DOWN make it down.",
                      MetricType::Gauge);
    auto hscr = family("synapse_spoa_haproxy_scrapes_total",
                       "Scrapes of HAProxy's exporter (load.haproxy_metrics), by result.",
                       MetricType::Counter);
    for (std::size_t i = 0; i < st->worker_names.size(); ++i) {
      if (st->slot_backend[i].empty()) continue;  // not served by HAProxy
      const int h = st->workers[i].haproxy.load(std::memory_order_relaxed);
      for (const auto s :
           {load::haproxy_state::unknown, load::haproxy_state::up, load::haproxy_state::down,
            load::haproxy_state::drain, load::haproxy_state::maint})
        add_gauge(hap,
                  {{"state", std::string(load::to_string(s))}, {"worker", st->worker_names[i]}},
                  h == static_cast<int>(s) ? 1 : 0);
    }
    add_counter(hscr, {{"result", "ok"}}, read(st->haproxy_ok));
    add_counter(hscr, {{"result", "failed"}}, read(st->haproxy_failed));
    out.push_back(std::move(hap));
    out.push_back(std::move(hscr));
  }
  {
    auto rd = family("synapse_spoa_runtime_drain",
                     "1 for each worker drained at run time (synapse-spoa ctl drain); kept "
                     "across reloads, not restarts.",
                     MetricType::Gauge);
    std::lock_guard<std::mutex> lock(drains_mu_);
    for (const auto& w : runtime_drains_)
      add_gauge(rd, {{"worker", w}}, 1);
    out.push_back(std::move(rd));
  }
  collect_responses(*st, out);
  if (const auto sh = std::atomic_load(&shared_)) collect_shared(*sh, out);
  return out;
}

}  // namespace spoa::agent
