#include "decision/router.hpp"

#include <algorithm>
#include <stdexcept>
#include <variant>

namespace spoa::decision {
namespace {

std::vector<std::string> pool_names(const config::agent_config& cfg) {
  std::vector<std::string> names;
  names.reserve(cfg.pools.size());
  for (const auto& p : cfg.pools)
    names.push_back(p.name);
  return names;
}

struct placement_inputs {
  std::vector<routing::pool_spec> pools;
  std::vector<routing::worker_spec> workers;
};

// Every config worker becomes the placement worker of the same index; one without a pool (or,
// defensively, with a pool the loader should have rejected) is in no pool.
placement_inputs make_placement_inputs(const config::agent_config& cfg) {
  placement_inputs in;
  for (const auto& p : cfg.pools)
    in.pools.push_back({p.name, p.balance == config::balance_mode::affinity});
  for (const auto& w : cfg.workers) {
    int pool = -1;
    for (std::size_t p = 0; p < cfg.pools.size(); ++p)
      if (!w.pool.empty() && cfg.pools[p].name == w.pool) pool = static_cast<int>(p);
    in.workers.push_back({w.name, w.server.empty() ? w.name : w.server, pool, w.weight, w.drain});
  }
  return in;
}

routing::placement make_placement(const config::agent_config& cfg) {
  auto in = make_placement_inputs(cfg);
  return routing::placement(std::move(in.pools), std::move(in.workers), cfg.placement);
}

}  // namespace

routing::route_table compile_routes(const config::agent_config& cfg) {
  auto rules =
      routing::effective_rules(cfg.routes, cfg.route_retarget, cfg.routes_replace_defaults);
  if (auto* err = std::get_if<routing::compile_error>(&rules))
    throw std::runtime_error(cfg.source + ": routes: " + err->message);
  auto list = std::get<std::vector<routing::rule_spec>>(std::move(rules));
  const auto names = pool_names(cfg);
  const bool has_main = std::find(names.begin(), names.end(), "main") != names.end();
  for (auto& rule : list) {
    if (has_main && rule.source == "default" &&
        std::find(names.begin(), names.end(), rule.pool) == names.end()) {
      rule.pool = "main";
      rule.key = routing::key_kind::none;
    }
  }
  auto table = routing::route_table::compile(std::move(list), names);
  if (auto* err = std::get_if<routing::compile_error>(&table))
    throw std::runtime_error(cfg.source + ": routes: " + err->message);
  return std::get<routing::route_table>(std::move(table));
}

router::router(const config::agent_config& cfg)
    : cfg_(cfg), table_(compile_routes(cfg)), placement_(make_placement(cfg)) {}

void router::reconfigure(const config::agent_config& cfg) {
  auto table = compile_routes(cfg);
  auto in = make_placement_inputs(cfg);
  placement_.reconfigure(std::move(in.pools), std::move(in.workers), cfg.placement);
  table_ = std::move(table);
  cfg_ = cfg;
}

answer router::decide(const routing::request& req, routing::key_buffer& key_buf,
                      std::uint64_t now_ms) {
  answer a;
  const auto c = table_.classify(req, key_buf);
  a.rule = c.rule;
  a.kind = c.kind;
  a.key = c.key;
  a.pool_index = c.pool;
  if (c.pool < 0) return a;  // cannot happen: the default table ends with a catch-all
  const auto& pool = cfg_.pools[static_cast<std::size_t>(c.pool)];
  a.pool = pool.name;
  a.backend = pool.backend;
  const auto d = placement_.place(c.pool, c.key, now_ms);
  a.why = d.why;
  a.key_hash = d.key_hash;
  const auto& specs = placement_.workers();
  if (d.worker >= 0) {
    const auto& w = specs[static_cast<std::size_t>(d.worker)];
    a.worker_index = d.worker;
    a.worker = w.name;
    a.server = w.server;
  }
  if (d.second >= 0 && d.second != d.worker)
    a.server2 = specs[static_cast<std::size_t>(d.second)].server;
  return a;
}

void router::set_load(std::shared_ptr<const routing::load_view> view, std::uint64_t now_ms) {
  if (now_ms == 0)
    placement_.set_load(std::move(view));
  else
    placement_.set_load(std::move(view), now_ms);
}

}  // namespace spoa::decision
