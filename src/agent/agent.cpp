#include "agent/agent.hpp"
#include "agent/clock.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <variant>
#include <vector>

#include <prometheus/exposer.h>

#include "agent/asio.hpp"
#include "agent/control.hpp"
#include "agent/log.hpp"
#include "agent/metrics.hpp"
#include "agent/persistence.hpp"
#include "agent/responses.hpp"
#include "agent/scraper.hpp"
#include "agent/shared_store.hpp"
#include "agent/spop_server.hpp"
#include "config/load.hpp"
#include "decision/handler.hpp"
#include "decision/router.hpp"

namespace spoa::agent {
namespace {

tcp::endpoint endpoint_of(const std::string& what, const std::string& s) {
  auto ep = config::parse_endpoint(s);
  if (!ep) throw std::runtime_error(what + ": not an ADDRESS:PORT: '" + s + "'");
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(ep->host, ec);
  if (ec) throw std::runtime_error(what + ": not an IP address: '" + ep->host + "'");
  return {addr, ep->port};
}

void write_ready_file(const std::string& path, unsigned short spop_port,
                      unsigned short metrics_port) {
  if (path.empty()) return;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << "spop " << spop_port << "\nmetrics " << metrics_port << "\n";
    if (!f) throw std::runtime_error("cannot write ready file " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw std::runtime_error("cannot rename ready file to " + path);
  }
}

// HAProxy reconnects in bursts on reloads; run out of descriptors as late as possible.
void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
      log_warn("cannot raise the open-file limit",
               {{"event", "fd_limit"}, {"limit", lim.rlim_cur}});
    }
  }
}

// shared.password_file / password_env. Never logged: errors name the file or variable only.
std::string read_password(const config::shared& s) {
  if (!s.password_env.empty()) {
    const char* v = std::getenv(s.password_env.c_str());
    if (v == nullptr) {
      throw std::runtime_error("shared.password_env: environment variable " + s.password_env +
                               " is not set");
    }
    return v;
  }
  if (s.password_file.empty()) return {};
  std::ifstream f(s.password_file);
  std::string line;
  if (!f || !std::getline(f, line)) {
    throw std::runtime_error("shared.password_file: cannot read " + s.password_file);
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// Names this agent on the shared store's channel (its own messages are skipped).
std::string agent_id() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "agent");
  std::string id;
  for (const char* p = host; *p && id.size() < 64; ++p)
    if (static_cast<unsigned char>(*p) > ' ' && static_cast<unsigned char>(*p) < 0x7f) id += *p;
  id += ":" + std::to_string(getpid()) + ":" + std::to_string(now_ns() & 0xffffff);
  return id;
}

spop_server_options server_options(const config::agent_config& cfg) {
  spop_server_options o;
  static_cast<spop::listener_options&>(o) = cfg.spop;
  for (const auto& a : o.allow_from) {
    auto range = parse_address_range(a);
    if (!range) throw std::runtime_error("spop.allow_from: not an IP address or CIDR: '" + a + "'");
    o.allowed.push_back(*range);
  }
  return o;
}

void apply_log_options(const config::agent_config& cfg) {
  log_level lvl;
  if (parse_log_level(cfg.log_level, &lvl)) set_log_level(lvl);
  log_format fmt;
  if (parse_log_format(cfg.log_format, &fmt)) set_log_format(fmt);
}

// A worker's published state change as a log event: the text line as it always was, and the
// figures behind it as fields.
void log_state_change(const load::state_change& c) {
  if (!log_enabled(log_level::info)) return;
  // Field names of the signals: their table names with '_' for ' ' ("in flight" -> "in_flight").
  static const std::vector<std::string> signal_fields = [] {
    std::vector<std::string> v;
    for (const auto& sig : load::signals) {
      std::string n(sig.name);
      for (char& ch : n)
        if (ch == ' ') ch = '_';
      v.push_back(std::move(n));
    }
    return v;
  }();
  if (c.haproxy_change) {
    log_info("load: " + c.message, {{"event", "haproxy_state"},
                                    {"worker", c.name},
                                    {"from", load::to_string(c.haproxy_from)},
                                    {"to", load::to_string(c.haproxy_to)},
                                    {"state", routing::to_string(c.to)}});
    return;
  }
  std::vector<log_field> f{
      {"event", "worker_state"},        {"worker", c.name},   {"from", routing::to_string(c.from)},
      {"to", routing::to_string(c.to)}, {"reason", c.reason},
  };
  for (std::size_t i = 0; i < std::size(load::signals); ++i)
    f.emplace_back(signal_fields[i], c.status.*load::signals[i].value);
  f.emplace_back("capacity", c.status.capacity);
  f.emplace_back("failures", c.status.consecutive_failures);
  if (std::isfinite(c.silent_seconds)) f.emplace_back("silent_s", c.silent_seconds);
  if (!c.status.last_error.empty()) f.emplace_back("error", c.status.last_error);
  if (c.reason == "haproxy") f.emplace_back("haproxy", load::to_string(c.haproxy_to));
  log(log_level::info, "load: " + c.message, f);
}

// A JSON object {"name":count,...} or array ["name",...] for a log field.
void json_count(std::string& out, std::string_view name, std::uint64_t n) {
  out += out.empty() ? "{" : ",";
  append_json_string(out, name);
  out += ':' + std::to_string(n);
}
void json_name(std::string& out, std::string_view name) {
  out += out.empty() ? "[" : ",";
  append_json_string(out, name);
}
std::string json_close(std::string s, char close, const char* empty) {
  if (s.empty()) return empty;
  s += close;
  return s;
}

class agent_process {
 public:
  explicit agent_process(run_options opts)
      : opts_(std::move(opts)),
        router_(std::make_unique<decision::router>(opts_.config)),
        metrics_(std::make_shared<agent_metrics>(opts_.config, router_->table())),
        handler_(router_.get(), &now_ns, metrics_.get()),
        responses_(opts_.config, router_->table(), *metrics_, &now_ms),
        signals_(io_, SIGINT, SIGTERM),
        hup_(io_, SIGHUP),
        snapshot_timer_(io_),
        stats_timer_(io_),
        load_timer_(io_) {
    apply_log_options(opts_.config);
    handler_.set_noop(opts_.noop);
    handler_.set_response_observer(&responses_);
    raise_fd_limit();
    const auto& cfg = opts_.config;
    const tcp::endpoint spop_ep = endpoint_of("listen", opts_.listen.value_or(cfg.listen));
    server_ =
        std::make_unique<spop_server>(io_, spop_ep, server_options(cfg), handler_, metrics_.get());
    const tcp::endpoint metrics_ep =
        endpoint_of("metrics_listen", opts_.metrics_listen.value_or(cfg.metrics_listen));
    // civetweb wants "ADDR:PORT", with brackets for IPv6.
    const std::string bind =
        metrics_ep.address().is_v6()
            ? "[" + metrics_ep.address().to_string() + "]:" + std::to_string(metrics_ep.port())
            : metrics_ep.address().to_string() + ":" + std::to_string(metrics_ep.port());
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(bind, 2);
    } catch (const std::exception& e) {
      throw std::runtime_error("metrics_listen " + bind + ": cannot listen: " + e.what());
    }
    exposer_->RegisterCollectable(metrics_);
    start_load(cfg, scrape_targets(cfg));
    if (cfg.placement.hash_key.empty()) {
      log_warn(
          "placement.hash_key is not set: room placement is predictable from room IDs; set a "
          "secret shared by all agents",
          {{"event", "config_warning"}, {"key", "placement.hash_key"}});
    }
    restore_snapshot();
    for (std::size_t i = 0; i < cfg.workers.size(); ++i) {
      if (cfg.workers[i].drain) log_drain(cfg.workers[i].name, i, true, "config");
    }
    rebase_moves();
    if (!cfg.shared.redis.empty()) {
      shared_ =
          std::make_unique<shared_store>(io_, cfg.shared, read_password(cfg.shared), agent_id(),
                                         *router_, routing::ms(cfg.placement.affinity_ttl));
      metrics_->set_shared(shared_->counters());
    }
    commands_ = std::make_unique<control_commands>(
        *router_, [this] { return static_cast<const load::model*>(model_.get()); },
        [this] {
          return shared_ ? std::shared_ptr<const shared_counters>(shared_->counters()) : nullptr;
        });
    commands_->on_drains_changed = [this] {
      metrics_->set_runtime_drains(
          {commands_->runtime_drains().begin(), commands_->runtime_drains().end()});
    };
    if (!cfg.control.socket.empty()) {
      control_ = std::make_unique<control_server>(
          io_, cfg.control.socket, cfg.control.mode,
          [this](std::string_view line) { return commands_->run(line, now_ms()); });
    }
  }

  int run() {
    // First: a socket another agent still answers on is a reason not to start at all.
    if (control_) {
      control_->start();
      log_info("runtime control on " + opts_.config.control.socket,
               {{"event", "control_listen"}, {"socket", opts_.config.control.socket}});
    }
    server_->start();
    const auto spop_ep = server_->local_endpoint();
    log_info("synapse-spoa listening for SPOP on " + spop_ep.address().to_string() + ":" +
                 std::to_string(spop_ep.port()) + " (config: " + opts_.config.source + ")",
             {{"event", "start"},
              {"listen", spop_ep.address().to_string() + ":" + std::to_string(spop_ep.port())},
              {"config", opts_.config.source},
              {"workers", opts_.config.workers.size()}});
    const auto mports = exposer_->GetListeningPorts();
    const unsigned short mport = mports.empty() ? 0 : static_cast<unsigned short>(mports.front());
    log_info("agent metrics on http://" +
                 opts_.metrics_listen.value_or(opts_.config.metrics_listen) + "/metrics (port " +
                 std::to_string(mport) + ")",
             {{"event", "metrics_listen"}, {"port", mport}});
    write_ready_file(opts_.ready_file, spop_ep.port(), mport);
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
      if (!ec) stop(sig);
    });
    wait_hup();
    schedule_snapshot();
    schedule_stats();
    schedule_load_tick();
    if (scraper_) scraper_->start();
    if (shared_) shared_->start();
    io_.run();
    return 0;
  }

 private:
  void stop(int sig) {
    const char* name = sig == SIGINT ? "SIGINT" : "SIGTERM";
    log_info(std::string("received ") + name + ": disconnecting HAProxy connections",
             {{"event", "stop"}, {"signal", name}, {"connections", server_->open_connections()}});
    hup_.cancel();
    snapshot_timer_.cancel();
    stats_timer_.cancel();
    load_timer_.cancel();
    if (scraper_) scraper_->stop();
    if (shared_) shared_->stop();
    if (control_) control_->stop();
    server_->shutdown([this] {
      log_moves();
      server_->log_errors();
      save_snapshot();
      log_info("stopped", {{"event", "stopped"}});
      io_.stop();
    });
  }

  void wait_hup() {
    hup_.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec) return;
      reload();
      wait_hup();
    });
  }

  // SIGHUP: re-read the config file; a bad file keeps the running config and says why.
  void reload() {
    if (opts_.config_path.empty()) {
      log_warn("SIGHUP: running on the embedded default config; nothing to reload",
               {{"event", "reload_refused"}, {"error", "no config file"}});
      return;
    }
    auto loaded = config::load_file(opts_.config_path);
    if (auto* err = std::get_if<config::load_error>(&loaded)) {
      log_error(
          "reload refused, keeping the running config: " + err->message,
          {{"event", "reload_refused"}, {"config", opts_.config_path}, {"error", err->message}});
      return;
    }
    auto cfg = std::get<config::agent_config>(std::move(loaded));
    // Moves so far are summed under the old worker list; the counts restart with the new one.
    log_moves();
    // Keys per worker before the swap, for the drains and removals the new config brings.
    const std::vector<std::string> old_names = worker_names(opts_.config);
    std::vector<std::size_t> old_keys;
    for (std::size_t i = 0; i < old_names.size(); ++i)
      old_keys.push_back(router_->placement().keys_on(static_cast<int>(i)));
    // Everything that can fail is built first; only then is anything swapped.
    std::vector<scrape_target> targets;
    try {
      targets = scrape_targets(cfg);
      // Keeps the affinity table: keys stay with workers of the same name.
      router_->reconfigure(cfg);
    } catch (const std::exception& e) {
      log_error(std::string("reload refused, keeping the running config: ") + e.what(),
                {{"event", "reload_refused"}, {"config", opts_.config_path}, {"error", e.what()}});
      return;
    }
    const auto pending = [](const char* key, const char* text) {
      log_warn(text, {{"event", "reload_pending_restart"}, {"key", key}});
    };
    if (cfg.listen != opts_.config.listen && !opts_.listen) {
      pending("listen", "reload: `listen` changed; it takes effect at the next restart");
    }
    if (cfg.metrics_listen != opts_.config.metrics_listen && !opts_.metrics_listen) {
      pending("metrics_listen",
              "reload: `metrics_listen` changed; it takes effect at the next restart");
    }
    if (cfg.spop != opts_.config.spop) {
      pending("spop", "reload: `spop` changed; it takes effect at the next restart");
    }
    if (cfg.placement.snapshot != opts_.config.placement.snapshot) {
      log_warn("reload: `placement.snapshot` changed; the new path is used from the next save",
               {{"event", "reload_snapshot_path"}, {"path", cfg.placement.snapshot}});
    }
    if (cfg.log_level != opts_.config.log_level || cfg.log_format != opts_.config.log_format) {
      apply_log_options(cfg);
    }
    if (cfg.shared != opts_.config.shared) {
      pending("shared", "reload: `shared` changed; it takes effect at the next restart");
    }
    if (cfg.control != opts_.config.control) {
      pending("control", "reload: `control` changed; it takes effect at the next restart");
    }
    const auto changes = log_worker_changes(opts_.config, cfg, old_keys);
    commands_->reapply();  // the runtime drains outlive the config's
    metrics_->reconfigure(cfg, router_->table());
    responses_.reconfigure(cfg, router_->table());
    if (shared_) shared_->reconfigured(routing::ms(cfg.placement.affinity_ttl));
    start_load(cfg, std::move(targets));
    scraper_->start();
    opts_.config = std::move(cfg);
    rebase_moves();
    log_info("reloaded " + opts_.config_path, {{"event", "reload"},
                                               {"config", opts_.config_path},
                                               {"workers", opts_.config.workers.size()},
                                               {"added", changes.added},
                                               {"removed", changes.removed},
                                               {"drained", changes.drained},
                                               {"undrained", changes.undrained}});
  }

  static std::vector<std::string> worker_names(const config::agent_config& cfg) {
    std::vector<std::string> names;
    for (const auto& w : cfg.workers)
      names.push_back(w.name);
    return names;
  }

  // A drain turned on or off (by the config at start or by a reload): the worker gets no new
  // keys, and its remembered keys move away at max_moves_per_second as they are requested.
  void log_drain(const std::string& worker, std::size_t index, bool drain, const char* source) {
    const std::size_t keys = router_->placement().keys_on(static_cast<int>(index));
    if (drain) {
      log_info("drain " + worker + " (" + source + "): no new keys; its " + std::to_string(keys) +
                   " remembered keys move at up to " +
                   fixed1(opts_.config.placement.max_moves_per_second) + " per second",
               {{"event", "drain"},
                {"worker", worker},
                {"drain", true},
                {"source", source},
                {"keys", keys}});
    } else {
      log_info("undrain " + worker + " (" + source + "): takes new keys again", {{"event", "drain"},
                                                                                 {"worker", worker},
                                                                                 {"drain", false},
                                                                                 {"source", source},
                                                                                 {"keys", keys}});
    }
  }

  static std::string fixed1(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
  }

  struct worker_changes {
    std::size_t added = 0, removed = 0, drained = 0, undrained = 0;
  };

  // What a reload does to the workers, by name: added, removed (or moved to another pool: its
  // keys move as on down), drained, undrained. Called after router_->reconfigure(), so a drain's
  // key count is the new placement's; `old_keys` are the counts before it, by old index.
  worker_changes log_worker_changes(const config::agent_config& before,
                                    const config::agent_config& after,
                                    const std::vector<std::size_t>& old_keys) {
    worker_changes n;
    const auto find = [](const config::agent_config& c, const std::string& name) -> int {
      for (std::size_t i = 0; i < c.workers.size(); ++i)
        if (c.workers[i].name == name) return static_cast<int>(i);
      return -1;
    };
    for (std::size_t i = 0; i < before.workers.size(); ++i) {
      const auto& w = before.workers[i];
      const int j = find(after, w.name);
      const std::size_t keys = i < old_keys.size() ? old_keys[i] : 0;
      if (j < 0) {
        ++n.removed;
        log_info(
            "reload: worker " + w.name + " removed; its " + std::to_string(keys) +
                " remembered keys move as they are requested",
            {{"event", "worker_removed"}, {"worker", w.name}, {"pool", w.pool}, {"keys", keys}});
      } else if (after.workers[static_cast<std::size_t>(j)].pool != w.pool) {
        ++n.removed;
        ++n.added;
        const auto& to = after.workers[static_cast<std::size_t>(j)].pool;
        log_info("reload: worker " + w.name + " moved from pool " + w.pool + " to " + to +
                     "; its " + std::to_string(keys) +
                     " remembered keys move as they are requested",
                 {{"event", "worker_pool_changed"},
                  {"worker", w.name},
                  {"from", w.pool},
                  {"to", to},
                  {"keys", keys}});
      }
    }
    for (std::size_t j = 0; j < after.workers.size(); ++j) {
      const auto& w = after.workers[j];
      const int i = find(before, w.name);
      if (i < 0) {
        ++n.added;
        log_info("reload: worker " + w.name + " added" +
                     (w.pool.empty() ? std::string() : " to pool " + w.pool),
                 {{"event", "worker_added"}, {"worker", w.name}, {"pool", w.pool}});
        if (w.drain) {
          ++n.drained;
          log_drain(w.name, j, true, "reload");
        }
      } else if (before.workers[static_cast<std::size_t>(i)].drain != w.drain) {
        ++(w.drain ? n.drained : n.undrained);
        log_drain(w.name, j, w.drain, "reload");
      }
    }
    return n;
  }

  // Move counters as they are now: the next summary counts from here.
  void rebase_moves() {
    const auto& st = router_->placement().counters();
    for (int c = 0; c < routing::move_cause_count; ++c)
      moves_seen_[static_cast<std::size_t>(c)] = st.moves[c];
    moved_to_seen_.assign(opts_.config.workers.size(), 0);
    for (std::size_t w = 0; w < moved_to_seen_.size(); ++w)
      moved_to_seen_[w] = metrics_->decisions(w, routing::reason::moved);
    moves_since_ms_ = now_ms();
  }

  // Once a second (and before a reload or exit), if keys moved: how many, by cause and by the
  // worker they moved to, with the workers down or draining (by the config, ctl or HAProxy) at
  // the time. Placement counts moves by cause and the metrics by destination, not by pair; with
  // one worker down or draining, its name is the source. Never a line per request, never a key
  // (see log.hpp).
  void log_moves() {
    const auto& st = router_->placement().counters();
    std::uint64_t total = 0;
    std::string by_cause, to, down, draining;
    std::string text;
    for (int c = 1; c < routing::move_cause_count; ++c) {
      auto& seen = moves_seen_[static_cast<std::size_t>(c)];
      const std::uint64_t d = st.moves[c] >= seen ? st.moves[c] - seen : st.moves[c];
      seen = st.moves[c];
      if (d == 0) continue;
      total += d;
      const auto name = routing::to_string(static_cast<routing::move_cause>(c));
      json_count(by_cause, name, d);
      text += (text.empty() ? "" : ", ") + std::string(name) + " " + std::to_string(d);
    }
    std::string to_text;
    const auto& workers = opts_.config.workers;
    moved_to_seen_.resize(workers.size(), 0);
    for (std::size_t w = 0; w < workers.size(); ++w) {
      const std::uint64_t now = metrics_->decisions(w, routing::reason::moved);
      const std::uint64_t d = now >= moved_to_seen_[w] ? now - moved_to_seen_[w] : now;
      moved_to_seen_[w] = now;
      if (d == 0) continue;
      json_count(to, workers[w].name, d);
      to_text += (to_text.empty() ? "" : ", ") + workers[w].name + " " + std::to_string(d);
    }
    const std::uint64_t now = now_ms();
    const double seconds = static_cast<double>(now - std::min(now, moves_since_ms_)) / 1000.0;
    moves_since_ms_ = now;
    if (total == 0 || !log_enabled(log_level::info)) return;
    std::string down_text, draining_text;
    for (std::size_t w = 0; w < workers.size(); ++w) {
      if (router_->placement().figures(static_cast<int>(w)).state == routing::worker_state::down) {
        json_name(down, workers[w].name);
        down_text += (down_text.empty() ? "" : ", ") + workers[w].name;
      }
      if (workers[w].drain || commands_->runtime_drains().count(workers[w].name) > 0 ||
          (model_ && model_->haproxy(w) == load::haproxy_state::drain)) {
        json_name(draining, workers[w].name);
        draining_text += (draining_text.empty() ? "" : ", ") + workers[w].name;
      }
    }
    std::string msg =
        "moves: " + std::to_string(total) + " keys in " + fixed1(seconds) + " s (" + text + ")";
    if (!to_text.empty()) msg += " to " + to_text;
    if (!down_text.empty()) msg += "; down: " + down_text;
    if (!draining_text.empty()) msg += "; draining: " + draining_text;
    log_info(msg, {{"event", "moves"},
                   {"keys", total},
                   {"interval_s", seconds},
                   log_field::raw("by_cause", json_close(by_cause, '}', "{}")),
                   log_field::raw("to", json_close(to, '}', "{}")),
                   log_field::raw("down", json_close(down, ']', "[]")),
                   log_field::raw("draining", json_close(draining, ']', "[]"))});
  }

  // A fresh load model and scraper for the configured workers. Until the first scrapes arrive
  // every worker is `unknown`, which placement treats as healthy at nominal capacity.
  void start_load(const config::agent_config& cfg, std::vector<scrape_target> targets) {
    // The replaced scraper is stopped and dropped at once: its coroutines own what they touch
    // (including the old model) and unwind on their own (scraper.hpp).
    scraper_.reset();
    std::vector<std::string> names;
    for (const auto& w : cfg.workers)
      names.push_back(w.name);
    // Reload builds a new model that keeps each worker's state by name (load/model.hpp).
    model_ = model_ ? std::make_shared<load::model>(*model_, cfg.load, std::move(names))
                    : std::make_shared<load::model>(cfg.load, std::move(names));
    model_->set_haproxy_servers(haproxy_refs(cfg));
    scraper_ = std::make_unique<scraper>(io_, std::move(targets), cfg.load, model_,
                                         [this] { publish_load(); });
  }

  void publish_load() {
    std::vector<load::state_change> changes;
    const std::uint64_t now = now_ms();
    for (std::size_t w = 0; w < model_->size(); ++w)
      model_->set_latency(w, responses_.latency_ratio(w, now));
    const auto view = model_->publish(now, &changes);
    router_->set_load(view, now_ms());
    metrics_->update_load(*model_);
    for (const auto& c : changes)
      log_state_change(c);
  }

  // Every 250 ms, besides after every scrape: time alone changes the published state (a stalled
  // worker becomes down stall_down_after after its last sign of life, data goes stale), and a
  // frozen worker produces no scrape results between its timeouts.
  void schedule_load_tick() {
    load_timer_.expires_after(std::chrono::milliseconds(250));
    load_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      publish_load();
      schedule_load_tick();
    });
  }

  // Once a second: forget idle keys and copy placement counters for /metrics.
  void schedule_stats() {
    stats_timer_.expires_after(std::chrono::seconds(1));
    stats_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      router_->placement().expire(now_ms());  // idle keys, a bounded batch per second
      metrics_->update_placement(*router_);
      responses_.check_misroutes(now_ms());
      log_moves();
      server_->log_errors();
      schedule_stats();
    });
  }

  void restore_snapshot() {
    const auto& path = opts_.config.placement.snapshot;
    if (path.empty()) return;
    const std::string status = load_snapshot(router_->placement(), path, now_ms(), unix_now_ms());
    log_info("affinity snapshot " + path + ": " + status,
             {{"event", "snapshot_restore"}, {"path", path}, {"status", status}});
  }

  // Shutdown: the last periodic write finishes first (both write path.tmp), then this one.
  void save_snapshot() {
    const auto& path = opts_.config.placement.snapshot;
    if (path.empty()) return;
    snapshot_writer_.join();
    std::string err;
    if (!agent::save_snapshot(router_->placement(), path, now_ms(), unix_now_ms(), &err)) {
      log_error("affinity snapshot " + path + " not saved: " + err,
                {{"event", "snapshot_error"}, {"path", path}, {"error", err}});
    }
  }

  void schedule_snapshot() {
    if (opts_.config.placement.snapshot.empty()) return;
    snapshot_timer_.expires_after(opts_.config.placement.snapshot_interval);
    snapshot_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      save_snapshot_in_background();
      schedule_snapshot();
    });
  }

  // Periodic save: only the copy of the table runs on the event loop (~18 ms per million keys);
  // sorting, msgpack encoding and fsync run on the writer thread. One write at a time.
  void save_snapshot_in_background() {
    if (snapshot_busy_) return;
    snapshot_busy_ = true;
    std::string path = opts_.config.placement.snapshot;
    auto doc = router_->placement().snapshot_document(now_ms(), unix_now_ms());
    asio::post(snapshot_writer_, [this, path = std::move(path), doc = std::move(doc)]() mutable {
      std::string err;
      const bool ok = write_snapshot(path, std::move(doc), &err);
      asio::post(io_, [this, ok, path, err] {
        snapshot_busy_ = false;
        if (!ok) {
          log_error("affinity snapshot " + path + " not saved: " + err,
                    {{"event", "snapshot_error"}, {"path", path}, {"error", err}});
        }
      });
    });
  }

  run_options opts_;
  asio::io_context io_{1};
  std::unique_ptr<decision::router> router_;
  std::shared_ptr<agent_metrics> metrics_;
  decision::handler handler_;
  response_feedback responses_;  // HAProxy's sampled responses (feedback.hpp)
  std::unique_ptr<prometheus::Exposer> exposer_;
  // Shared with the scraper's coroutines, which may outlive a reload's swap; the scraper is
  // stopped before it is replaced or destroyed, and never calls back after that (scraper.hpp).
  std::shared_ptr<load::model> model_;
  std::unique_ptr<scraper> scraper_;
  asio::signal_set signals_;
  asio::signal_set hup_;
  asio::steady_timer snapshot_timer_;
  asio::steady_timer stats_timer_;
  asio::steady_timer load_timer_;
  asio::thread_pool snapshot_writer_{1};  // after io_: it posts completions there
  bool snapshot_busy_ = false;            // event-loop thread only
  // The move summary's baselines (log_moves): placement's counters by cause, the metrics'
  // moved decisions by worker, and when the summary last ran.
  std::array<std::uint64_t, routing::move_cause_count> moves_seen_{};
  std::vector<std::uint64_t> moved_to_seen_;
  std::uint64_t moves_since_ms_ = 0;
  std::unique_ptr<spop_server> server_;
  std::unique_ptr<shared_store> shared_;  // null unless shared.redis is set
  std::unique_ptr<control_commands> commands_;
  std::unique_ptr<control_server> control_;  // null unless control.socket is set
};

}  // namespace

int run(run_options opts) {
  agent_process p(std::move(opts));
  return p.run();
}

}  // namespace spoa::agent
