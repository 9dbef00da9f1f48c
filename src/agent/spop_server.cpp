#include "agent/spop_server.hpp"

#include "agent/log.hpp"
#include "config/endpoint.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>

namespace spoa::agent {

using steady = std::chrono::steady_clock;

class spop_server::session : public std::enable_shared_from_this<spop_server::session> {
 public:
  session(spop_server& owner, tcp::socket sock, const tcp::endpoint& peer)
      : owner_(&owner),
        peer_(peer),
        hello_timeout_(owner.opts_.hello_timeout),
        idle_timeout_(owner.opts_.idle_timeout),
        max_pipelined_(std::max<std::size_t>(owner.opts_.max_pipelined, 1)),
        sock_(std::move(sock)),
        timer_(sock_.get_executor()),
        conn_(spop::connection_options{owner.opts_.max_frame_size}, owner.handler_),
        deadline_(steady::now() + hello_timeout_) {
    in_.resize(4096);
  }

  void start() {
    asio::co_spawn(sock_.get_executor(), run(shared_from_this()), asio::detached);
    asio::co_spawn(sock_.get_executor(), watchdog(shared_from_this()), asio::detached);
  }

  // Graceful stop: if the loop waits for bytes, wake it so it says goodbye; if it is writing,
  // it notices the flag once the write completes.
  void stop() {
    stopping_ = true;
    if (reading_) {
      boost::system::error_code ignored;
      sock_.cancel(ignored);
    }
  }

  // The server is going away: close at once, and never touch it (nor its handler, whose
  // reference conn_ holds, nor its observer) again. The coroutines wake, see it, and return.
  void detach() {
    owner_ = nullptr;
    finished_ = true;
    boost::system::error_code ec;
    sock_.close(ec);
    timer_.cancel();
  }

 private:
  // The end of the prefix of in_[0, have_) that holds at most max_pipelined complete frames;
  // sets more_ when complete frames remain after it. Only the 4-byte lengths are read: the
  // state machine validates everything (a bad length is refused there, whatever we skip here).
  std::size_t pipeline_limit() {
    const std::size_t max = max_pipelined_;
    std::size_t off = 0, frames = 0;
    more_ = false;
    while (off + 4 <= have_) {
      const std::size_t len = (std::size_t{in_[off]} << 24) | (std::size_t{in_[off + 1]} << 16) |
                              (std::size_t{in_[off + 2]} << 8) | std::size_t{in_[off + 3]};
      if (len > have_ - off - 4) break;  // incomplete (or over-long: the machine refuses it)
      if (frames == max) {
        more_ = true;
        return off;
      }
      off += 4 + len;
      ++frames;
    }
    return have_;
  }

  // `self` keeps the session alive for the whole frame; `this` is that session. After every
  // co_await a detached session returns before touching anything but itself.
  awaitable<void> run([[maybe_unused]] std::shared_ptr<session> self) {
    boost::system::error_code ec;
    sock_.set_option(tcp::no_delay(true), ec);
    spop::status why = spop::status::normal;
    for (;;) {
      if (!owner_) co_return;
      if (stopping_) {
        conn_.disconnect(spop::status::normal, "agent shutting down", out_);
      } else if (timed_out_) {
        conn_.disconnect(spop::status::timeout,
                         conn_.hello_done() ? "idle timeout" : "no HELLO in time", out_);
      } else {
        if (!more_) {  // complete frames already buffered are answered before reading more
          const std::size_t limit = std::size_t{conn_.frame_size()} + 4;
          if (have_ == in_.size()) {
            if (in_.size() >= limit) {  // cannot happen: a frame over the limit is refused earlier
              conn_.disconnect(spop::status::too_big, "frame too big", out_);
            } else {
              in_.resize(std::min(limit, in_.size() * 2));
            }
          }
          if (!conn_.closing()) {
            reading_ = true;
            const std::size_t n =
                co_await sock_.async_read_some(asio::buffer(in_.data() + have_, in_.size() - have_),
                                               asio::redirect_error(use_awaitable, ec));
            reading_ = false;
            if (!owner_) co_return;
            if (ec) {
              if (ec == asio::error::operation_aborted && (stopping_ || timed_out_)) continue;
              why = spop::status::io_error;  // EOF / reset: a normal close for an agent
              break;
            }
            have_ += n;
          }
        }
        if (!conn_.closing()) {
          const bool had_hello = conn_.hello_done();
          const std::size_t used =
              conn_.on_bytes(std::span<const std::uint8_t>(in_.data(), pipeline_limit()), out_);
          if (used > 0) {
            std::memmove(in_.data(), in_.data() + used, have_ - used);
            have_ -= used;
          }
          report_frames();
          // The HELLO deadline runs from accept, however slowly the bytes come; after it, only a
          // complete frame counts as activity, so a slow drip of one frame is idle.
          if (conn_.hello_done() && (used > 0 || !had_hello)) {
            deadline_ = steady::now() + idle_timeout_;
          }
        }
      }
      if (!out_.empty()) {
        writing_ = true;
        co_await asio::async_write(sock_, asio::buffer(out_),
                                   asio::redirect_error(use_awaitable, ec));
        writing_ = false;
        if (!owner_) co_return;
        out_.clear();
        if (ec) {
          why = spop::status::io_error;
          break;
        }
      }
      if (conn_.closing()) {
        why = conn_.last_status();
        break;
      }
    }
    finish(why);
  }

  // Closes the connection when nothing arrived before the deadline (hello or idle timeout).
  // A session stuck writing to a peer that does not read is closed outright.
  awaitable<void> watchdog([[maybe_unused]] std::shared_ptr<session> self) {
    boost::system::error_code ec;
    while (!finished_) {
      timer_.expires_at(deadline_);
      co_await timer_.async_wait(asio::redirect_error(use_awaitable, ec));
      if (finished_) break;
      if (steady::now() < deadline_) continue;
      if (reading_) {
        timed_out_ = true;
        sock_.cancel(ec);
      } else if (writing_) {
        sock_.close(ec);
      }
      deadline_ = steady::now() + hello_timeout_;  // grace for the goodbye write
    }
  }

  void report_frames() {
    if (!owner_ || !owner_->observer_) return;
    const auto& now = conn_.counters();
    spop::connection_counters d;
    d.hello_received = now.hello_received - reported_.hello_received;
    d.notify_received = now.notify_received - reported_.notify_received;
    d.disconnect_received = now.disconnect_received - reported_.disconnect_received;
    d.unknown_received = now.unknown_received - reported_.unknown_received;
    d.messages_received = now.messages_received - reported_.messages_received;
    d.hello_sent = now.hello_sent - reported_.hello_sent;
    d.ack_sent = now.ack_sent - reported_.ack_sent;
    d.disconnect_sent = now.disconnect_sent - reported_.disconnect_sent;
    d.actions_dropped = now.actions_dropped - reported_.actions_dropped;
    d.actions_rejected = now.actions_rejected - reported_.actions_rejected;
    reported_ = now;
    owner_->observer_->on_frames(d);
  }

  void finish(spop::status why) {
    if (finished_) return;
    report_frames();
    finished_ = true;
    boost::system::error_code ec;
    sock_.shutdown(tcp::socket::shutdown_both, ec);
    sock_.close(ec);
    timer_.cancel();
    if (!owner_) return;
    spop_server& owner = *owner_;
    owner_ = nullptr;  // removed from the server: never touch it again
    if (owner.observer_) owner.observer_->on_close(why);
    owner.note_close(why, conn_.peer_status(), peer_);
    owner.remove(this);
  }

  spop_server* owner_;        // null once removed or detached
  const tcp::endpoint peer_;  // for the error log only
  const std::chrono::milliseconds hello_timeout_;
  const std::chrono::milliseconds idle_timeout_;
  const std::size_t max_pipelined_;
  tcp::socket sock_;
  asio::steady_timer timer_;
  spop::connection conn_;
  std::vector<std::uint8_t> in_;
  std::size_t have_ = 0;
  std::string out_;
  spop::connection_counters reported_;
  steady::time_point deadline_;
  bool reading_ = false;
  bool writing_ = false;
  bool more_ = false;  // complete frames wait in in_ beyond the last pipeline_limit()
  bool stopping_ = false;
  bool timed_out_ = false;
  bool finished_ = false;
};

// Over the connection cap: answers the HELLO slot with AGENT-DISCONNECT and closes, so HAProxy
// logs a reason instead of a reset. The bytes are made before it is spawned: its coroutine
// needs nothing from the server but the removal at the end.
class spop_server::refusal : public std::enable_shared_from_this<spop_server::refusal> {
 public:
  refusal(spop_server& owner, tcp::socket sock, std::string out)
      : owner_(&owner), sock_(std::move(sock)), out_(std::move(out)) {}

  void start() { asio::co_spawn(sock_.get_executor(), run(shared_from_this()), asio::detached); }

  void detach() {
    owner_ = nullptr;
    boost::system::error_code ec;
    sock_.close(ec);
  }

 private:
  awaitable<void> run([[maybe_unused]] std::shared_ptr<refusal> self) {
    boost::system::error_code ec;
    co_await asio::async_write(sock_, asio::buffer(out_), asio::redirect_error(use_awaitable, ec));
    sock_.shutdown(tcp::socket::shutdown_both, ec);
    sock_.close(ec);
    if (owner_) owner_->remove(this);
  }

  spop_server* owner_;  // null once detached
  tcp::socket sock_;
  std::string out_;
};

// The acceptor and its back-off timer, shared with the accept loop. stop() closes both and
// clears the back pointer; the loop wakes with an error, sees it, and returns.
struct spop_server::listener {
  spop_server* owner;
  tcp::acceptor acceptor;
  asio::steady_timer backoff;

  listener(spop_server& s, asio::io_context& io) : owner(&s), acceptor(io), backoff(io) {}
  void stop() {
    owner = nullptr;
    boost::system::error_code ec;
    acceptor.close(ec);
    backoff.cancel();
  }
};

spop_server::spop_server(asio::io_context& io, const tcp::endpoint& listen,
                         spop_server_options opts, spop::notify_handler& handler,
                         spop_observer* observer)
    : io_(io),
      listener_(std::make_shared<listener>(*this, io)),
      opts_(std::move(opts)),
      handler_(handler),
      observer_(observer) {
  tcp::acceptor& acceptor = listener_->acceptor;
  acceptor.open(listen.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  acceptor.bind(listen);
  acceptor.listen(asio::socket_base::max_listen_connections);
}

// Detach, do not remove: the maps still own the objects while we walk them, and every
// coroutine keeps its own object alive until it has unwound.
spop_server::~spop_server() {
  listener_->stop();
  for (const auto& [ptr, s] : sessions_)
    s->detach();
  for (const auto& [ptr, r] : refusals_)
    r->detach();
}

tcp::endpoint spop_server::local_endpoint() const {
  return listener_->acceptor.local_endpoint();
}

void spop_server::start() {
  asio::co_spawn(io_, accept_loop(listener_), asio::detached);
}

bool address_range::contains(const asio::ip::address& a) const noexcept {
  // Compare the first `prefix` bits of two byte strings of the same family.
  auto match = [this](const auto& net, const auto& peer) {
    const unsigned full = prefix / 8, rest = prefix % 8;
    for (unsigned i = 0; i < full; ++i)
      if (net[i] != peer[i]) return false;
    if (rest == 0) return true;
    const unsigned mask = (0xffu << (8 - rest)) & 0xffu;
    return (net[full] & mask) == (peer[full] & mask);
  };
  if (network.is_v4()) {
    if (a.is_v4()) return match(network.to_v4().to_bytes(), a.to_v4().to_bytes());
    if (a.to_v6().is_v4_mapped()) {
      return match(network.to_v4().to_bytes(),
                   asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_bytes());
    }
    return false;
  }
  return a.is_v6() && match(network.to_v6().to_bytes(), a.to_v6().to_bytes());
}

std::optional<address_range> parse_address_range(std::string_view text) {
  const auto c = config::parse_cidr(text);
  if (!c) return std::nullopt;
  if (!c->v6) {
    asio::ip::address_v4::bytes_type b;
    std::copy_n(c->bytes.begin(), b.size(), b.begin());
    return address_range(asio::ip::address_v4(b), c->prefix);
  }
  asio::ip::address_v6::bytes_type b;
  std::copy_n(c->bytes.begin(), b.size(), b.begin());
  return address_range(asio::ip::address_v6(b), c->prefix);
}

bool spop_server::allowed(const asio::ip::address& a) const {
  if (opts_.allowed.empty()) return true;
  return std::any_of(opts_.allowed.begin(), opts_.allowed.end(),
                     [&](const address_range& r) { return r.contains(a); });
}

awaitable<void> spop_server::accept_loop(std::shared_ptr<listener> l) {
  boost::system::error_code ec;
  while (l->owner) {
    tcp::socket sock = co_await l->acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
    if (!l->owner || ec == asio::error::operation_aborted) break;
    if (ec) {
      ++l->owner->accept_errors_;
      l->owner->last_accept_error_ = ec;
      // Out of descriptors (EMFILE/ENFILE) or a transient error: back off instead of spinning.
      l->backoff.expires_after(std::chrono::milliseconds(50));
      co_await l->backoff.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    l->owner->on_accepted(std::move(sock));
  }
}

void spop_server::on_accepted(tcp::socket sock) {
  boost::system::error_code rec;
  const auto peer = sock.remote_endpoint(rec);
  if (rec || !allowed(peer.address())) {
    if (observer_) observer_->on_accept(false);
    if (!rec) {
      ++refused_addr_.count;
      refused_addr_.last_peer = peer;
    }
    sock.close(rec);
    return;
  }
  if (sessions_.size() >= opts_.max_connections) {
    if (observer_) observer_->on_accept(false);
    ++refused_cap_.count;
    refused_cap_.last_peer = peer;
    spop::connection c(spop::connection_options{opts_.max_frame_size}, handler_);
    std::string out;
    c.disconnect(spop::status::resource_allocation, "too many connections", out);
    auto r = std::make_shared<refusal>(*this, std::move(sock), std::move(out));
    refusals_.emplace(r.get(), r);
    r->start();
    return;
  }
  if (observer_) observer_->on_accept(true);
  auto s = std::make_shared<session>(*this, std::move(sock), peer);
  sessions_.emplace(s.get(), s);
  s->start();
}

// A session or refusal stays alive until its coroutines unwind: they hold their own reference.
void spop_server::remove(session* s) {
  sessions_.erase(s);
  check_drained();
}

void spop_server::remove(refusal* r) {
  refusals_.erase(r);
  check_drained();
}

void spop_server::check_drained() {
  if (stopping_ && sessions_.empty() && refusals_.empty() && on_drained_) {
    auto done = std::move(on_drained_);
    on_drained_ = nullptr;
    asio::post(io_, std::move(done));
  }
}

void spop_server::note_close(spop::status agent_status, std::uint64_t peer_status,
                             const tcp::endpoint& peer) {
  // normal: a DISCONNECT without error, a healthcheck, shutdown; io_error: EOF or a reset, which
  // is how HAProxy ends connections it no longer needs.
  if (agent_status != spop::status::normal && agent_status != spop::status::io_error) {
    tally& t = agent_closes_[std::min<std::size_t>(static_cast<std::size_t>(agent_status), 99)];
    ++t.count;
    t.last_peer = peer;
  }
  if (peer_status != 0) {
    tally& t = peer_closes_[std::min<std::uint64_t>(peer_status, 99)];
    ++t.count;
    t.last_peer = peer;
  }
}

void spop_server::log_errors() {
  const auto now = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(now - errors_since_).count();
  errors_since_ = now;
  const auto peer_text = [](const tcp::endpoint& e) {
    return e.address().to_string() + ":" + std::to_string(e.port());
  };
  char interval[32];
  std::snprintf(interval, sizeof interval, "%.1f", seconds);
  const auto closes = [&](std::array<tally, k_statuses>& tallies, const char* side) {
    for (std::size_t code = 0; code < tallies.size(); ++code) {
      tally& t = tallies[code];
      if (t.count == 0) continue;
      const auto st = static_cast<spop::status>(code);
      const std::string_view what = spop::status_message(st);
      // A timeout is routine (an idle connection, a HELLO that never came); the rest is a
      // protocol error one side found in the other.
      const log_level level = st == spop::status::timeout ? log_level::info : log_level::warn;
      if (log_enabled(level)) {
        const std::string peer = peer_text(t.last_peer);
        log(level,
            "spop: " + std::to_string(t.count) + " connection" + (t.count == 1 ? "" : "s") +
                " closed with " + side + "-DISCONNECT status " + std::to_string(code) + " (" +
                std::string(what) + ") in " + interval + " s, last from " + peer,
            {{"event", "spop_error"},
             {"side", side[0] == 'A' ? "agent" : "haproxy"},
             {"status", code},
             {"status_text", what},
             {"connections", t.count},
             {"interval_s", seconds},
             {"last_peer", peer}});
      }
      t = tally{};
    }
  };
  closes(agent_closes_, "AGENT");
  closes(peer_closes_, "HAPROXY");
  const auto refused = [&](tally& t, const char* reason, const std::string& limit) {
    if (t.count == 0) return;
    if (log_enabled(log_level::warn)) {
      const std::string peer = peer_text(t.last_peer);
      log_warn("spop: " + std::to_string(t.count) + " connection" + (t.count == 1 ? "" : "s") +
                   " refused (" + limit + ") in " + interval + " s, last from " + peer,
               {{"event", "spop_refused"},
                {"reason", reason},
                {"connections", t.count},
                {"interval_s", seconds},
                {"last_peer", peer}});
    }
    t = tally{};
  };
  refused(refused_cap_, "max_connections",
          "spop.max_connections " + std::to_string(opts_.max_connections) + " reached");
  refused(refused_addr_, "allow_from", "not in spop.allow_from");
  if (accept_errors_ > 0) {
    log_warn("spop: " + std::to_string(accept_errors_) + " failed accepts in " + interval +
                 " s: " + last_accept_error_.message(),
             {{"event", "spop_accept_error"},
              {"count", accept_errors_},
              {"interval_s", seconds},
              {"error", last_accept_error_.message()}});
    accept_errors_ = 0;
  }
}

void spop_server::shutdown(std::function<void()> done) {
  stopping_ = true;
  listener_->stop();
  on_drained_ = std::move(done);
  if (sessions_.empty() && refusals_.empty()) {
    check_drained();
    return;
  }
  auto copy = sessions_;  // a stop may finish a session, which removes it from sessions_
  for (const auto& [ptr, s] : copy)
    s->stop();
}

}  // namespace spoa::agent
