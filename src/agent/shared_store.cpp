#include "agent/shared_store.hpp"

#include <hiredis/hiredis.h>

#include "agent/clock.hpp"
#include "agent/log.hpp"
#include "decision/router.hpp"
#include "routing/shared_wire.hpp"

namespace spoa::agent {
namespace {

namespace wire = routing::shared_wire;

constexpr auto tick_period = std::chrono::milliseconds(10);
constexpr std::size_t reconcile_per_tick = 2000;
constexpr std::size_t refresh_per_tick = 2000;
// Bulk work (reconcile, refresh) is paced by Redis itself: it is sent only while fewer than this
// many replies are owed, so a big table never queues seconds of commands in front of the claims
// and moves (which would trip command_timeout on every agent at once and reconnect them all into
// the same flood: the "reconnect storm" of tests/bench/shared_scale.py).
constexpr std::size_t bulk_window = 2000;
// Agent ids heard on the channel are untrusted: at most this many peers are kept (others'
// reports are counted invalid until one of them goes quiet).
constexpr std::size_t max_peers = 1024;
constexpr std::uint64_t default_ttl_ms = 24 * 3600 * 1000;
// Past this many replies owed, new changes are dropped (and reconciled later) rather than
// queued without bound behind a slow Redis.
constexpr std::size_t max_pending = 100'000;

// Compare-and-set of a move. KEYS[1] the key; ARGV: old worker ("" = any), new worker, TTL in
// ms, channel, message. Returns the worker the key is on afterwards.
constexpr std::string_view cas_script =
    "local v = redis.call('GET', KEYS[1]) "
    "if v == false or v == ARGV[1] or ARGV[1] == '' then "
    "redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) "
    "if v ~= ARGV[2] then redis.call('PUBLISH', ARGV[4], ARGV[5]) end "
    "return ARGV[2] end "
    "return v";

std::string_view str(const redisReply* r) {
  return {r->str, static_cast<std::size_t>(r->len)};
}

// A key's lifetime in Redis: the affinity TTL plus one refresh interval (see the header).
std::string redis_ttl(std::uint64_t ttl_ms, const config::shared& cfg) {
  return std::to_string(ttl_ms + static_cast<std::uint64_t>(cfg.refresh_interval.count()));
}

bool is_status_ok(const redisReply* r) {
  return r && r->type == REDIS_REPLY_STATUS && str(r) == "OK";
}

}  // namespace

shared_store::shared_store(asio::io_context& io, config::shared cfg, std::string password,
                           std::string agent_id, decision::router& router, std::uint64_t ttl_ms)
    : io_(io),
      cfg_(std::move(cfg)),
      password_(std::move(password)),
      agent_id_(std::move(agent_id)),
      channel_(wire::channel(cfg_.key_prefix)),
      router_(router),
      ttl_ms_(ttl_ms ? ttl_ms : default_ttl_ms),
      ttl_text_(redis_ttl(ttl_ms_, cfg_)),
      resolver_(io),
      reconnect_timer_(io),
      connect_timer_(io),
      tick_timer_(io) {
  url_ = config::parse_redis_url(cfg_.redis).value_or(config::redis_url{});
  counters_->enabled = true;
  load_scratch_.reserve(wire::max_load_entries);
  index_workers();
  rng_.seed(static_cast<std::uint32_t>(std::hash<std::string>{}(agent_id_)));
}

shared_store::~shared_store() {
  stopped_ = true;
  *alive_ = false;
  if (cmd_) cmd_->close();
  if (sub_) sub_->close();
}

void shared_store::start() {
  router_.placement().record_changes(true);
  connect();
  tick();
}

void shared_store::stop() {
  stopped_ = true;
  reconnect_timer_.cancel();
  connect_timer_.cancel();
  tick_timer_.cancel();
  resolver_.cancel();
  if (cmd_) cmd_->close();
  if (sub_) sub_->close();
}

void shared_store::reconfigured(std::uint64_t ttl_ms) {
  ttl_ms_ = ttl_ms ? ttl_ms : default_ttl_ms;
  ttl_text_ = redis_ttl(ttl_ms_, cfg_);
  // The peers' rates are by worker index, which a reload may have changed: carried over by name
  // and applied at once (clearing them would bound on this agent's own rates until the peers
  // report again).
  remap_peers();
  refresh_.clear();
  refresh_at_ = 0;
  if (phase_ == phase::up) {
    reconcile_.clear();
    reconcile_at_ = 0;
    router_.placement().table().for_each_slot([&](const routing::affinity_table::entry& e) {
      reconcile_.push_back({e.hash, e.worker});
    });
  }
}

// interval x [0.8, 1.2): agents started together (a rollout) spread their refreshes instead of
// all sending theirs in the same second.
std::uint64_t shared_store::jittered(std::chrono::milliseconds interval) {
  std::uniform_real_distribution<double> f(0.8, 1.2);
  return static_cast<std::uint64_t>(static_cast<double>(interval.count()) * f(rng_));
}

std::string shared_store::key_of(int pool, std::uint64_t table_hash) const {
  return wire::key(cfg_.key_prefix,
                   router_.placement().pools()[static_cast<std::size_t>(pool)].name, table_hash);
}

void shared_store::schedule_reconnect() {
  if (stopped_) return;
  reconnect_timer_.expires_after(cfg_.reconnect_interval);
  reconnect_timer_.async_wait(
      [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired() || stopped_) return;
        connect();
      });
}

void shared_store::connect() {
  phase_ = phase::connecting;
  cmd_ready_ = sub_ready_ = false;
  connect_timer_.expires_after(cfg_.connect_timeout);
  connect_timer_.async_wait(
      [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired() || phase_ != phase::connecting) return;
        teardown("no answer within connect_timeout (" +
                 std::to_string(cfg_.connect_timeout.count()) + " ms)");
      });
  resolver_.async_resolve(url_.address.host, std::to_string(url_.address.port),
                          [this, alive = std::weak_ptr<bool>(alive_)](
                              const boost::system::error_code& ec, tcp::resolver::results_type r) {
                            if (alive.expired() || phase_ != phase::connecting) return;
                            if (ec || r.empty())
                              return teardown("cannot resolve " + url_.address.host);
                            on_resolved(r);
                          });
}

void shared_store::on_resolved(const tcp::resolver::results_type& results) {
  const auto ep = results.begin()->endpoint();
  const std::string ip = ep.address().to_string();
  auto on_lost = [this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    const std::string why = (cmd_ && !cmd_->error().empty()) ? cmd_->error()
                            : sub_                           ? sub_->error()
                                                             : "connection lost";
    teardown(why);
  };
  cmd_ = redis_link::create(io_, on_lost);
  sub_ = redis_link::create(io_, on_lost);
  if (!cmd_->connect(ip, url_.address.port)) return teardown(cmd_->error());
  if (!sub_->connect(ip, url_.address.port)) return teardown(sub_->error());
  auto alive = std::weak_ptr<bool>(alive_);
  // AUTH first on both (a reply other than OK is an error the operator must see), SELECT the
  // database on the command connection (pub/sub is global), then PING / SUBSCRIBE.
  const auto auth = [&](redis_link& l) {
    if (password_.empty()) return;
    std::vector<std::string_view> argv{"AUTH"};
    if (!cfg_.user.empty()) argv.push_back(cfg_.user);
    argv.push_back(password_);
    l.command(argv, [this, alive](const redisReply* r) {
      if (alive.expired() || r == nullptr) return;
      if (!is_status_ok(r)) {
        // The reply text of a failed AUTH never contains the password.
        const std::string why = r->type == REDIS_REPLY_ERROR ? std::string(str(r)) : "bad reply";
        asio::post(io_, [this, alive, why] {
          if (!alive.expired()) teardown("AUTH refused: " + why);
        });
      }
    });
  };
  auth(*cmd_);
  auth(*sub_);
  if (url_.db != 0) {
    const std::string db = std::to_string(url_.db);
    cmd_->command({"SELECT", db}, [this, alive](const redisReply* r) {
      if (alive.expired() || r == nullptr || is_status_ok(r)) return;
      asio::post(io_, [this, alive] {
        if (!alive.expired()) teardown("SELECT refused");
      });
    });
  }
  cmd_->command({"PING"}, [this, alive](const redisReply* r) {
    if (alive.expired() || r == nullptr) return;
    if (r->type == REDIS_REPLY_STATUS) {
      cmd_ready_ = true;
      asio::post(io_, [this, alive] {
        if (!alive.expired()) maybe_up();
      });
    }
  });
  sub_->subscribe(channel_, [this, alive](const redisReply* r) {
    if (alive.expired() || r == nullptr) return;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[0]->type == REDIS_REPLY_STRING && str(r->element[0]) == "subscribe") {
      sub_ready_ = true;
      asio::post(io_, [this, alive] {
        if (!alive.expired()) maybe_up();
      });
      return;
    }
    on_message(r);
  });
}

void shared_store::maybe_up() {
  if (phase_ != phase::connecting || !cmd_ready_ || !sub_ready_) return;
  phase_ = phase::up;
  connect_timer_.cancel();
  counters_->connected = true;
  bump(counters_->connects);
  down_logged_ = false;
  log_info("shared store: connected to " + cfg_.redis + "; reconciling " +
               std::to_string(router_.placement().table().size()) + " local keys",
           {{"event", "shared_store"},
            {"state", "connected"},
            {"redis", cfg_.redis},
            {"keys", router_.placement().table().size()}});
  // The table as it is now; each key is claimed with its worker at the time it is sent.
  reconcile_.clear();
  reconcile_at_ = 0;
  reconcile_.reserve(router_.placement().table().size());
  router_.placement().table().for_each_slot([&](const routing::affinity_table::entry& e) {
    reconcile_.push_back({e.hash, e.worker});
  });
  // Changes recorded while connecting are part of the table: the reconcile sends them.
  router_.placement().clear_changes();
  last_refresh_ms_ = now_ms();
  refresh_due_ms_ = last_refresh_ms_ + jittered(cfg_.refresh_interval);
  load_due_ms_ = last_refresh_ms_;
}

void shared_store::teardown(const std::string& why) {
  if (stopped_) return;
  const bool was_up = phase_ == phase::up;
  if (phase_ == phase::down) return;
  phase_ = phase::down;
  counters_->connected = false;
  connect_timer_.cancel();
  resolver_.cancel();
  if (was_up) {
    bump(counters_->disconnects);
  }
  if (!down_logged_ || was_up) {
    log_warn("shared store: Redis " + cfg_.redis + " unavailable (" + why +
                 "); routing with the local table, retrying every " +
                 std::to_string(cfg_.reconnect_interval.count()) + " ms",
             {{"event", "shared_store"},
              {"state", "disconnected"},
              {"redis", cfg_.redis},
              {"was_connected", was_up},
              {"error", why},
              {"retry_ms", cfg_.reconnect_interval.count()}});
    down_logged_ = true;
  }
  // Closing runs the pending callbacks with nullptr; post the frees out of any hiredis callback.
  auto cmd = std::move(cmd_), sub = std::move(sub_);
  asio::post(io_, [cmd, sub] {
    if (cmd) cmd->close();
    if (sub) sub->close();
  });
  reconcile_.clear();
  reconcile_at_ = 0;
  refresh_.clear();
  refresh_at_ = 0;
  scanning_ = false;  // an unfinished restore starts over on the next connection
  scan_cursor_ = "0";
  forget_peers();  // no reports while down: the bound is this agent's own
  schedule_reconnect();
}

void shared_store::tick() {
  if (stopped_) return;
  const std::uint64_t now = now_ms();
  auto& pl = router_.placement();
  if (phase_ == phase::up) {
    // A reply owed for longer than command_timeout: Redis is stopped or drowning.
    const std::uint64_t oldest = cmd_ ? cmd_->oldest_ns() : 0;
    if (oldest != 0 &&
        now_ns() - oldest > static_cast<std::uint64_t>(cfg_.command_timeout.count()) * 1'000'000) {
      teardown("no reply within command_timeout (" + std::to_string(cfg_.command_timeout.count()) +
               " ms)");
    } else {
      flush_changes();
      reconcile_step();
      if (now >= refresh_due_ms_) refresh();
      refresh_step();
      if (!restored_ && !scanning_ && now >= restore_retry_ms_) restore_step();
      if (now >= load_due_ms_) {
        load_due_ms_ = now + static_cast<std::uint64_t>(cfg_.load_interval.count());
        publish_load(now);
        apply_peers(now);
      }
    }
  } else if (!pl.changes().empty()) {
    // Down: nothing to send them to; the reconcile on reconnect claims the whole table.
    bump(counters_->dropped, pl.changes().size());
    pl.clear_changes();
  }
  tick_timer_.expires_after(tick_period);
  tick_timer_.async_wait(
      [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired()) return;
        tick();
      });
}

bool shared_store::send(const std::vector<std::string_view>& argv, redis_link::reply_fn fn) {
  if (!cmd_ || phase_ != phase::up) return false;
  const std::uint64_t t0 = now_ns();
  auto c = counters_;
  return cmd_->command(argv, [c, t0, fn = std::move(fn)](const redisReply* r) {
    if (r != nullptr) {
      const std::uint64_t dt = now_ns() - t0;
      c->latency.observe(shared_counters::latency_buckets, static_cast<double>(dt) / 1e9, dt);
    }
    fn(r);
  });
}

void shared_store::flush_changes() {
  auto& pl = router_.placement();
  if (pl.changes().empty()) return;
  if (cmd_ && cmd_->pending() > max_pending) {
    bump(counters_->dropped, pl.changes().size());
    pl.clear_changes();
    return;
  }
  for (const auto& ch : pl.changes()) {
    if (ch.cause == routing::move_cause::none) {
      claim(ch.pool, ch.table_hash, ch.worker, false);
    } else {
      push_move(ch.pool, ch.table_hash,
                ch.old_worker == routing::affinity_table::no_worker ? -1 : ch.old_worker,
                ch.worker);
    }
  }
  pl.clear_changes();
}

void shared_store::adopt_reply(int pool, std::uint64_t table_hash, int mine,
                               std::string_view winner, shared_counters::counter& count) {
  auto& pl = router_.placement();
  const int w = pl.worker_index(winner);
  if (w < 0 || pl.pool_of(w) != pool) {
    bump(counters_->invalid);
    return;
  }
  if (w == mine) return;
  if (pl.adopt(pool, table_hash, w, now_ms())) bump(count);
}

void shared_store::claim(int pool, std::uint64_t table_hash, int worker, bool reconcile) {
  auto& pl = router_.placement();
  // Indices captured before a reload may name another worker now (or none): checked again.
  if (pool < 0 || static_cast<std::size_t>(pool) >= pl.pools().size() || pl.pool_of(worker) != pool)
    return;
  const std::string key = key_of(pool, table_hash);
  const std::string& name = pl.workers()[static_cast<std::size_t>(worker)].name;
  bump(reconcile ? counters_->reconciled : counters_->claims);
  auto alive = std::weak_ptr<bool>(alive_);
  send({"SET", key, name, "NX", "PX", ttl_text_, "GET"},
       [this, alive, pool, table_hash, worker](const redisReply* r) {
         if (alive.expired() || r == nullptr) return;
         if (r->type == REDIS_REPLY_NIL) {
           bump(counters_->claims_won);
         } else if (r->type == REDIS_REPLY_STRING) {
           adopt_reply(pool, table_hash, worker, str(r), counters_->conflicts_adopted);
         } else {
           bump(counters_->errors);
         }
       });
}

void shared_store::push_move(int pool, std::uint64_t table_hash, int old_worker, int worker) {
  auto& pl = router_.placement();
  if (pool < 0 || static_cast<std::size_t>(pool) >= pl.pools().size()) return;
  const std::string key = key_of(pool, table_hash);
  const std::string& pool_name = pl.pools()[static_cast<std::size_t>(pool)].name;
  const std::string& name = pl.workers()[static_cast<std::size_t>(worker)].name;
  const std::string old =
      old_worker >= 0 ? pl.workers()[static_cast<std::size_t>(old_worker)].name : std::string();
  const std::string msg = wire::format_move(agent_id_, pool_name, table_hash, name);
  bump(counters_->moves_pushed);
  auto alive = std::weak_ptr<bool>(alive_);
  send({"EVAL", cas_script, "1", key, old, name, ttl_text_, channel_, msg},
       [this, alive, pool, table_hash, worker](const redisReply* r) {
         if (alive.expired() || r == nullptr) return;
         if (r->type == REDIS_REPLY_STRING) {
           adopt_reply(pool, table_hash, worker, str(r), counters_->cas_conflicts);
         } else {
           bump(counters_->errors);
         }
       });
}

void shared_store::refresh() {
  auto& pl = router_.placement();
  const std::uint64_t now = now_ms();
  const std::uint64_t since = last_refresh_ms_;
  last_refresh_ms_ = now;
  refresh_due_ms_ = now + jittered(cfg_.refresh_interval);
  // A refresh still being sent (a huge table, a slow Redis) goes on; the new keys join it.
  pl.table().for_each_used_since(since, [&](const routing::affinity_table::entry& e) {
    refresh_.push_back({e.hash, e.worker});
  });
}

void shared_store::refresh_step() {
  if (refresh_.empty()) return;
  auto& pl = router_.placement();
  auto alive = std::weak_ptr<bool>(alive_);
  std::size_t sent = 0;
  while (refresh_at_ < refresh_.size() && sent < refresh_per_tick &&
         (!cmd_ || cmd_->pending() < bulk_window)) {
    const pending_key k = refresh_[refresh_at_++];
    const int pool = pl.pool_of(k.worker);
    if (pool < 0) continue;
    ++sent;
    bump(counters_->refreshes);
    const std::uint64_t h = k.table_hash;
    const int w = k.worker;
    send({"PEXPIRE", key_of(pool, h), ttl_text_}, [this, alive, pool, h, w](const redisReply* r) {
      if (alive.expired() || r == nullptr) return;
      // 0: Redis has no such key (expired, evicted or restarted empty): claim it again.
      if (r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
        bump(counters_->reclaims);
        claim(pool, h, w, true);
      }
    });
  }
  if (refresh_at_ >= refresh_.size()) {
    refresh_.clear();
    if (refresh_.capacity() > 4 * refresh_per_tick) refresh_.shrink_to_fit();
    refresh_at_ = 0;
  }
}

void shared_store::reconcile_step() {
  auto& pl = router_.placement();
  const std::uint64_t now = now_ms();
  std::size_t sent = 0;
  while (reconcile_at_ < reconcile_.size() && sent < reconcile_per_tick &&
         (!cmd_ || cmd_->pending() < bulk_window)) {
    const pending_key k = reconcile_[reconcile_at_++];
    // Its worker now, not when the list was taken; gone keys are skipped.
    const auto* e = pl.table().peek(k.table_hash, now);
    if (e == nullptr || e->worker == routing::affinity_table::no_worker) continue;
    const int pool = pl.pool_of(e->worker);
    if (pool < 0) continue;
    claim(pool, k.table_hash, e->worker, true);
    ++sent;
  }
  if (reconcile_at_ >= reconcile_.size() && !reconcile_.empty()) {
    log_info("shared store: reconciled " + std::to_string(reconcile_.size()) + " keys with Redis",
             {{"event", "shared_store"}, {"state", "reconciled"}, {"keys", reconcile_.size()}});
    reconcile_.clear();
    reconcile_.shrink_to_fit();
    reconcile_at_ = 0;
  }
}

void shared_store::on_message(const redisReply* r) {
  // ["message", channel, payload]
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
      r->element[0]->type != REDIS_REPLY_STRING || str(r->element[0]) != "message" ||
      r->element[2]->type != REDIS_REPLY_STRING) {
    bump(counters_->invalid);
    return;
  }
  const std::string_view payload = str(r->element[2]);
  if (payload.substr(0, 3) == "l1 ") return on_load(payload, now_ms());
  const auto m = wire::parse_move(payload);
  if (!m) {
    bump(counters_->invalid);
    return;
  }
  if (m->agent == agent_id_) return;
  bump(counters_->moves_received);
  auto& pl = router_.placement();
  const int pool = pl.pool_index(m->pool);
  if (pool < 0) {
    bump(counters_->invalid);
    return;
  }
  adopt_reply(pool, m->table_hash, -1, m->worker, counters_->moves_adopted);
}

// ---- load reports ---------------------------------------------------------------------------

void shared_store::publish_load(std::uint64_t now) {
  auto& pl = router_.placement();
  std::vector<std::pair<std::string_view, double>> rates;
  rates.reserve(pl.workers().size());
  for (std::size_t w = 0; w < pl.workers().size(); ++w)
    rates.emplace_back(pl.workers()[w].name, pl.own_rate(static_cast<int>(w), now));
  const std::string msg = wire::format_load(agent_id_, rates);
  bump(counters_->load_reports);
  send({"PUBLISH", channel_, msg}, [c = counters_](const redisReply* r) {
    if (r != nullptr && r->type != REDIS_REPLY_INTEGER) bump(c->errors);
  });
}

void shared_store::on_load(std::string_view payload, std::uint64_t now) {
  const auto agent = wire::parse_load(payload, load_scratch_);
  if (!agent) {
    bump(counters_->invalid);
    return;
  }
  if (*agent == agent_id_) return;
  auto& pl = router_.placement();
  auto it = peers_.find(std::string(*agent));
  if (it == peers_.end()) {
    if (peers_.size() >= max_peers) {
      bump(counters_->invalid);
      return;
    }
    it = peers_.emplace(std::string(*agent), peer{}).first;
  }
  bump(counters_->load_reports_received);
  peer& p = it->second;
  p.heard_ms = now;
  p.rps.assign(pl.workers().size(), 0.0);
  for (const auto& e : load_scratch_) {
    const auto w = worker_ix_.find(std::string(e.worker));
    if (w == worker_ix_.end()) continue;  // not a worker of this agent's config: not ours to sum
    p.rps[static_cast<std::size_t>(w->second)] = static_cast<double>(e.mrps) / 1000.0;
  }
}

void shared_store::apply_peers(std::uint64_t now) {
  auto& pl = router_.placement();
  const std::uint64_t stale = 3 * static_cast<std::uint64_t>(cfg_.load_interval.count());
  std::vector<double> sum(pl.workers().size(), 0.0);
  for (auto it = peers_.begin(); it != peers_.end();) {
    if (now > it->second.heard_ms + stale) {
      log_info("shared store: no load report from agent " + it->first + " for " +
                   std::to_string(now - it->second.heard_ms) + " ms; its rates no longer count",
               {{"event", "shared_peer_lost"},
                {"peer", it->first},
                {"silent_ms", now - it->second.heard_ms}});
      it = peers_.erase(it);
      continue;
    }
    for (std::size_t w = 0; w < sum.size() && w < it->second.rps.size(); ++w)
      sum[w] += it->second.rps[w];
    ++it;
  }
  pl.set_peer_rates(sum, now);
  counters_->peers = static_cast<int>(peers_.size());
  std::vector<shared_counters::peer_rate> exported;
  exported.reserve(sum.size());
  for (std::size_t w = 0; w < sum.size(); ++w) {
    const int pool = pl.pool_of(static_cast<int>(w));
    exported.push_back({pool >= 0 ? pl.pools()[static_cast<std::size_t>(pool)].name : "",
                        pl.workers()[w].name, sum[w]});
  }
  std::lock_guard<std::mutex> lock(counters_->peer_mu);
  counters_->peer_rates = std::move(exported);
}

void shared_store::remap_peers() {
  auto& pl = router_.placement();
  for (auto& [id, p] : peers_) {
    std::vector<double> rps(pl.workers().size(), 0.0);
    for (std::size_t i = 0; i < p.rps.size() && i < peer_workers_.size(); ++i) {
      const int w = pl.worker_index(peer_workers_[i]);
      if (w >= 0) rps[static_cast<std::size_t>(w)] = p.rps[i];
    }
    p.rps = std::move(rps);
  }
  index_workers();
  apply_peers(now_ms());
}

void shared_store::index_workers() {
  auto& pl = router_.placement();
  peer_workers_.clear();
  worker_ix_.clear();
  for (std::size_t i = 0; i < pl.workers().size(); ++i) {
    peer_workers_.push_back(pl.workers()[i].name);
    worker_ix_.emplace(pl.workers()[i].name, static_cast<int>(i));
  }
}

void shared_store::forget_peers() {
  peers_.clear();
  router_.placement().set_peer_rates({}, now_ms());
  counters_->peers = 0;
  std::lock_guard<std::mutex> lock(counters_->peer_mu);
  for (auto& r : counters_->peer_rates)
    r.rps = 0;
}

// ---- restore at start-up ----------------------------------------------------------------------

void shared_store::restore_step() {
  scanning_ = true;
  bump(counters_->scans);
  const std::string match = cfg_.key_prefix + "a:*";
  auto alive = std::weak_ptr<bool>(alive_);
  const bool sent = send({"SCAN", scan_cursor_, "MATCH", match, "COUNT", "1000"},
                         [this, alive](const redisReply* r) {
                           if (alive.expired() || r == nullptr) return;
                           on_scan(r);
                         });
  if (!sent) scanning_ = false;
}

void shared_store::retry_restore() {
  bump(counters_->errors);
  restore_retry_ms_ = now_ms() + 1000;
  scanning_ = false;
}

void shared_store::on_scan(const redisReply* r) {
  // [cursor, [key, ...]]
  if (r->type == REDIS_REPLY_ERROR) {
    // -LOADING (Redis still reading its RDB), -BUSY: the same cursor again in a second.
    return retry_restore();
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY ||
      r->element[0]->len > 20) {
    bump(counters_->invalid);
    restored_ = true;  // not a Redis this agent understands: the snapshot stands
    scanning_ = false;
    return;
  }
  const std::string cursor(str(r->element[0]));
  const redisReply* keys = r->element[1];
  auto& pl = router_.placement();
  struct item {
    int pool;
    std::uint64_t table_hash;
  };
  std::vector<item> items;
  std::vector<std::string> names;
  items.reserve(keys->elements);
  names.reserve(keys->elements);
  for (std::size_t i = 0; i < keys->elements && i < 10'000; ++i) {
    if (keys->element[i]->type != REDIS_REPLY_STRING) continue;
    const auto k = wire::parse_key(cfg_.key_prefix, str(keys->element[i]));
    const int pool = k ? pl.pool_index(k->pool) : -1;
    if (pool < 0) continue;  // another pool or not ours: left alone
    items.push_back({pool, k->table_hash});
    names.emplace_back(str(keys->element[i]));
  }
  const auto next = [this, cursor] {
    scan_cursor_ = cursor;
    scanning_ = false;
    if (cursor == "0") {
      restored_ = true;
      // The restored keys were inserted as used now; they are the other agents' to refresh (each
      // refreshes what it uses), so this agent's next refresh starts after them. Otherwise every
      // restart would keep every key in Redis alive for another TTL.
      last_refresh_ms_ = now_ms();
      const auto restored = counters_->restored.load(std::memory_order_relaxed);
      log_info("shared store: restored " + std::to_string(restored) + " keys from Redis",
               {{"event", "shared_store"}, {"state", "restored"}, {"keys", restored}});
    }
  };
  if (items.empty()) return next();
  std::vector<std::string_view> argv{"MGET"};
  for (const auto& n : names)
    argv.emplace_back(n);
  auto alive = std::weak_ptr<bool>(alive_);
  const bool sent = send(argv, [this, alive, items = std::move(items), next](const redisReply* m) {
    if (alive.expired() || m == nullptr) return;
    if (m->type == REDIS_REPLY_ERROR) return retry_restore();
    if (m->type != REDIS_REPLY_ARRAY || m->elements != items.size()) {
      bump(counters_->invalid);
    } else {
      for (std::size_t i = 0; i < items.size(); ++i)
        if (m->element[i]->type == REDIS_REPLY_STRING)  // nil: expired since the SCAN
          adopt_reply(items[i].pool, items[i].table_hash, -1, str(m->element[i]),
                      counters_->restored);
    }
    next();
  });
  if (!sent) scanning_ = false;
}

}  // namespace spoa::agent
