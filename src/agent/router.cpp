#include "agent/router.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <variant>

namespace spoa::agent {
namespace {

std::vector<std::string> pool_names(const config::agent_config& cfg) {
  std::vector<std::string> names;
  names.reserve(cfg.pools.size());
  for (const auto& p : cfg.pools)
    names.push_back(p.name);
  return names;
}

routing::route_table compile_or_throw(const config::agent_config& cfg) {
  auto rules =
      routing::effective_rules(cfg.routes, cfg.route_retarget, cfg.routes_replace_defaults);
  if (auto* err = std::get_if<routing::compile_error>(&rules)) {
    throw std::runtime_error(cfg.source + ": routes: " + err->message);
  }
  auto list = std::get<std::vector<routing::rule_spec>>(std::move(rules));
  // A deployment without some reference pool (no media worker, no sync worker...) still uses
  // the embedded table: its rules for the missing pool go to `main`, the one process that can
  // serve every endpoint. Rules the operator wrote are never retargeted silently.
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
  if (auto* err = std::get_if<routing::compile_error>(&table)) {
    throw std::runtime_error(cfg.source + ": routes: " + err->message);
  }
  return std::get<routing::route_table>(std::move(table));
}

struct placement_inputs {
  std::vector<routing::pool_spec> pools;
  std::vector<routing::worker_spec> workers;
  std::vector<int> to_placement;
  std::vector<int> from_placement;
  routing::placement_options options;
};

placement_inputs make_placement_inputs(const config::agent_config& cfg) {
  placement_inputs in;
  for (const auto& p : cfg.pools) {
    in.pools.push_back({p.name, p.balance == config::balance_mode::affinity});
  }
  in.to_placement.assign(cfg.workers.size(), -1);
  for (std::size_t i = 0; i < cfg.workers.size(); ++i) {
    const auto& w = cfg.workers[i];
    if (w.pool.empty()) continue;
    int pool = -1;
    for (std::size_t p = 0; p < cfg.pools.size(); ++p) {
      if (cfg.pools[p].name == w.pool) pool = static_cast<int>(p);
    }
    if (pool < 0) continue;  // the config loader rejects this; be safe anyway
    in.to_placement[i] = static_cast<int>(in.workers.size());
    in.from_placement.push_back(static_cast<int>(i));
    in.workers.push_back({w.name, w.server.empty() ? w.name : w.server, pool, w.weight, w.drain});
  }
  const auto& pc = cfg.placement;
  in.options.balance_factor = pc.balance_factor;
  in.options.overload_factor = pc.overload_factor;
  in.options.overload_after_ms = static_cast<std::uint64_t>(pc.overload_after.count());
  in.options.affinity_ttl_ms = static_cast<std::uint64_t>(pc.affinity_ttl.count());
  in.options.max_keys = pc.max_keys;
  in.options.max_moves_per_second = pc.max_moves_per_second;
  in.options.hash_key = pc.hash_key;
  in.options.load_half_life_ms = static_cast<std::uint64_t>(pc.load_half_life.count());
  in.options.return_after_ms = static_cast<std::uint64_t>(pc.return_after.count());
  in.options.return_per_second = pc.return_per_second;
  return in;
}

routing::placement make_placement(const config::agent_config& cfg) {
  auto in = make_placement_inputs(cfg);
  return routing::placement(std::move(in.pools), std::move(in.workers), in.options);
}

}  // namespace

std::string compile_routes(const config::agent_config& cfg, routing::route_table* out) {
  try {
    auto table = compile_or_throw(cfg);
    if (out) *out = std::move(table);
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

router::router(const config::agent_config& cfg)
    : cfg_(cfg), table_(compile_or_throw(cfg)), placement_(make_placement(cfg)) {
  auto in = make_placement_inputs(cfg);
  to_placement_ = std::move(in.to_placement);
  from_placement_ = std::move(in.from_placement);
}

void router::reconfigure(const config::agent_config& cfg) {
  auto table = compile_or_throw(cfg);
  auto in = make_placement_inputs(cfg);
  placement_.reconfigure(std::move(in.pools), std::move(in.workers), in.options);
  table_ = std::move(table);
  to_placement_ = std::move(in.to_placement);
  from_placement_ = std::move(in.from_placement);
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
  if (d.worker >= 0) {
    const int cw = from_placement_[static_cast<std::size_t>(d.worker)];
    const auto& w = cfg_.workers[static_cast<std::size_t>(cw)];
    a.worker_index = cw;
    a.worker = w.name;
    a.server = w.server.empty() ? std::string_view(w.name) : std::string_view(w.server);
  }
  if (d.second >= 0 && d.second != d.worker) {
    const int cw = from_placement_[static_cast<std::size_t>(d.second)];
    const auto& w = cfg_.workers[static_cast<std::size_t>(cw)];
    a.server2 = w.server.empty() ? std::string_view(w.name) : std::string_view(w.server);
  }
  return a;
}

void router::set_load(const routing::load_view& by_config_worker, std::uint64_t now_ms) {
  auto view = std::make_shared<routing::load_view>();
  view->workers.resize(from_placement_.size());
  for (std::size_t p = 0; p < from_placement_.size(); ++p) {
    const auto cw = static_cast<std::size_t>(from_placement_[p]);
    if (cw < by_config_worker.workers.size()) view->workers[p] = by_config_worker.workers[cw];
  }
  if (now_ms == 0)
    placement_.set_load(std::move(view));
  else
    placement_.set_load(std::move(view), now_ms);
}

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out;
}

std::string router::explain(const routing::request& req, std::uint64_t now_ms) {
  routing::key_buffer buf;
  const auto c = table_.classify(req, buf);
  std::string ranking = "null";
  answer a;
  if (c.pool >= 0) ranking = placement_.explain(c.pool, c.key, now_ms);
  routing::key_buffer buf2;
  a = decide(req, buf2, now_ms);
  const auto& rules = table_.rules();
  const routing::rule_spec* rule = (c.rule >= 0 && static_cast<std::size_t>(c.rule) < rules.size())
                                       ? &rules[static_cast<std::size_t>(c.rule)]
                                       : nullptr;
  char hash[24];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(a.key_hash));
  std::string out = "{";
  out += "\"method\":\"" + json_escape(req.method) + "\"";
  out += ",\"path\":\"" + json_escape(req.path) + "\"";
  out += ",\"pool\":\"" + json_escape(a.pool) + "\"";
  out += ",\"backend\":\"" + json_escape(a.backend) + "\"";
  out += ",\"server\":\"" + json_escape(a.server) + "\"";
  out += ",\"server2\":\"" + json_escape(a.server2) + "\"";
  out += ",\"key\":\"" + json_escape(c.key) + "\"";
  out += ",\"key_kind\":\"" + std::string(routing::to_string(c.kind)) + "\"";
  out += ",\"key_hash\":\"" + std::string(c.key.empty() ? "" : hash) + "\"";
  out += ",\"rule\":\"" + (rule ? json_escape(rule->name) : std::string()) + "\"";
  out += ",\"rule_source\":\"" + (rule ? json_escape(rule->source) : std::string()) + "\"";
  out += ",\"reason\":\"" + std::string(routing::to_string(a.why)) + "\"";
  out += ",\"placement\":" + ranking;
  out += "}";
  return out;
}

}  // namespace spoa::agent
