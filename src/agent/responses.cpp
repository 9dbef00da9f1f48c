#include "agent/responses.hpp"

#include <cmath>
#include <cstdio>
#include <limits>

#include "agent/log.hpp"

namespace spoa::agent {
namespace {

std::string percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %%", share * 100);
  return buf;
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

}  // namespace

load::feedback response_feedback::build(const config::agent_config& cfg,
                                        const routing::route_table& t) {
  std::vector<int> pool_of;
  for (const auto& w : cfg.workers) {
    int p = -1;
    for (std::size_t i = 0; i < cfg.pools.size(); ++i)
      if (!w.pool.empty() && cfg.pools[i].name == w.pool) p = static_cast<int>(i);
    pool_of.push_back(p);
  }
  return load::feedback(cfg.responses, std::move(pool_of), t.rules().size());
}

response_feedback::response_feedback(const config::agent_config& cfg,
                                     const routing::route_table& table, agent_metrics& metrics,
                                     clock_ms now_ms)
    : metrics_(metrics), now_ms_(now_ms), feedback_(build(cfg, table)) {
  reconfigure(cfg, table);
}

void response_feedback::reconfigure(const config::agent_config& cfg,
                                    const routing::route_table& table) {
  feedback_ = build(cfg, table);
  servers_.clear();
  rules_.clear();
  rule_names_.clear();
  worker_names_.clear();
  worker_pools_.clear();
  for (std::size_t i = 0; i < cfg.workers.size(); ++i) {
    const auto& w = cfg.workers[i];
    worker_names_.push_back(w.name);
    worker_pools_.push_back(w.pool);
    if (!w.pool.empty()) servers_[w.server.empty() ? w.name : w.server].emplace_back(w.pool, i);
  }
  for (std::size_t r = 0; r < table.rules().size(); ++r) {
    rule_names_.push_back(table.rules()[r].name);
    rules_.emplace(table.rules()[r].name, r);
  }
}

void response_feedback::on_response(const decision::response_report& r) {
  const auto srv = servers_.find(r.server);
  std::size_t worker = worker_names_.size();
  if (srv != servers_.end()) {
    for (const auto& [pool, index] : srv->second)
      if (pool == r.pool) worker = index;
  }
  if (worker == worker_names_.size()) {
    return metrics_.on_response_dropped(agent_metrics::response_drop::unknown_worker);
  }
  const auto rule = rules_.find(r.rule);
  if (rule == rules_.end()) {
    return metrics_.on_response_dropped(agent_metrics::response_drop::unknown_rule);
  }
  const int cls = load::status_class(r.status);
  if (cls < 0) return metrics_.on_response_dropped(agent_metrics::response_drop::bad_status);
  load::response_sample s;
  s.worker = worker;
  s.rule = rule->second;
  s.status = r.status;
  s.long_poll = r.long_poll;
  // Every 5xx is sent; the rest stand for 100 / percent responses each.
  s.weight = cls == 4 ? 1.0 : 100.0 / r.percent;
  s.seconds = r.header_us >= 0 ? static_cast<double>(r.header_us) / 1e6
                               : std::numeric_limits<double>::quiet_NaN();
  feedback_.record(s, now_ms_());
  metrics_.on_response(worker, s.rule, cls, s.weight,
                       s.long_poll ? std::numeric_limits<double>::quiet_NaN() : s.seconds);
}

void response_feedback::check_misroutes(std::uint64_t now_ms) {
  bool scanned = false;
  const auto suspects = feedback_.scan(now_ms, &scanned);
  if (!scanned) return;
  metrics_.set_misroutes(suspects);
  for (const auto& m : suspects) {
    const std::string& rule = rule_names_[m.rule];
    const std::string& worker = worker_names_[m.worker];
    log_warn("responses: rule " + rule + " on " + worker + " (pool " + worker_pools_[m.worker] +
                 "): " + number(m.errors) + " of " + number(m.responses) + " responses 5xx (" +
                 percent(m.share) + ") in " + number(m.interval_s) +
                 " s, the rest of the traffic " + percent(m.rest_share) +
                 ": is the rule routed to the right pool?",
             {{"event", "misroute"},
              {"rule", rule},
              {"worker", worker},
              {"pool", worker_pools_[m.worker]},
              {"responses", m.responses},
              {"errors", m.errors},
              {"share", m.share},
              {"rest_share", m.rest_share},
              {"interval_s", m.interval_s}});
  }
}

}  // namespace spoa::agent
