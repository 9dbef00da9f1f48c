#include "agent/spop_server.hpp"

#include <cstring>

namespace spoa::agent {

using steady = std::chrono::steady_clock;

class spop_server::session : public std::enable_shared_from_this<spop_server::session> {
 public:
  session(spop_server& owner, tcp::socket sock)
      : owner_(owner),
        sock_(std::move(sock)),
        timer_(sock_.get_executor()),
        conn_(spop::connection_options{owner.opts_.max_frame_size}, owner.handler_) {
    in_.resize(4096);
  }

  void start() {
    auto self = shared_from_this();
    asio::co_spawn(sock_.get_executor(), run(), asio::detached);
    asio::co_spawn(sock_.get_executor(), watchdog(), asio::detached);
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

 private:
  awaitable<void> run() {
    auto self = shared_from_this();
    boost::system::error_code ec;
    sock_.set_option(tcp::no_delay(true), ec);
    deadline_ = steady::now() + owner_.opts_.hello_timeout;
    spop::status why = spop::status::normal;
    for (;;) {
      if (stopping_) {
        conn_.disconnect(spop::status::normal, "agent shutting down", out_);
      } else if (timed_out_) {
        conn_.disconnect(spop::status::timeout, "idle timeout", out_);
      } else {
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
          if (ec) {
            if (ec == asio::error::operation_aborted && (stopping_ || timed_out_)) continue;
            why = spop::status::io_error;  // EOF / reset: a normal close for an agent
            break;
          }
          have_ += n;
          const std::size_t used =
              conn_.on_bytes(std::span<const std::uint8_t>(in_.data(), have_), out_);
          if (used > 0) {
            std::memmove(in_.data(), in_.data() + used, have_ - used);
            have_ -= used;
          }
          report_frames();
          deadline_ = steady::now() +
                      (conn_.hello_done() ? owner_.opts_.idle_timeout : owner_.opts_.hello_timeout);
        }
      }
      if (!out_.empty()) {
        writing_ = true;
        co_await asio::async_write(sock_, asio::buffer(out_),
                                   asio::redirect_error(use_awaitable, ec));
        writing_ = false;
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
  awaitable<void> watchdog() {
    auto self = shared_from_this();
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
      deadline_ = steady::now() + owner_.opts_.hello_timeout;  // grace for the goodbye write
    }
  }

  void report_frames() {
    if (!owner_.observer_) return;
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
    owner_.observer_->on_frames(d);
  }

  void finish(spop::status why) {
    if (finished_) return;
    report_frames();
    finished_ = true;
    boost::system::error_code ec;
    sock_.shutdown(tcp::socket::shutdown_both, ec);
    sock_.close(ec);
    timer_.cancel();
    if (owner_.observer_) owner_.observer_->on_close(why);
    owner_.remove(this);
  }

  spop_server& owner_;
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
  bool stopping_ = false;
  bool timed_out_ = false;
  bool finished_ = false;
};

spop_server::spop_server(asio::io_context& io, const tcp::endpoint& listen,
                         spop_server_options opts, spop::notify_handler& handler,
                         spop_observer* observer)
    : io_(io), acceptor_(io), opts_(std::move(opts)), handler_(handler), observer_(observer) {
  acceptor_.open(listen.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(listen);
  acceptor_.listen(asio::socket_base::max_listen_connections);
}

spop_server::~spop_server() = default;

void spop_server::start() {
  asio::co_spawn(io_, accept_loop(), asio::detached);
}

bool spop_server::allowed(const asio::ip::address& a) const {
  if (opts_.allow_from.empty()) return true;
  for (const auto& ok : opts_.allow_from) {
    if (ok == a) return true;
    // ::ffff:a.b.c.d written as a.b.c.d in the config
    if (a.is_v6() && ok.is_v4() && a.to_v6().is_v4_mapped() &&
        asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()) == ok.to_v4()) {
      return true;
    }
  }
  return false;
}

awaitable<void> spop_server::accept_loop() {
  boost::system::error_code ec;
  asio::steady_timer backoff(io_);
  while (!stopping_) {
    tcp::socket sock = co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping_) break;
      // Out of descriptors (EMFILE/ENFILE) or a transient error: back off instead of spinning.
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    boost::system::error_code rec;
    const auto peer = sock.remote_endpoint(rec);
    if (rec || !allowed(peer.address())) {
      if (observer_) observer_->on_accept(false);
      sock.close(rec);
      continue;
    }
    if (sessions_.size() >= opts_.max_connections) {
      if (observer_) observer_->on_accept(false);
      asio::co_spawn(
          io_, refuse(std::move(sock), spop::status::resource_allocation, "too many connections"),
          asio::detached);
      continue;
    }
    if (observer_) observer_->on_accept(true);
    auto s = std::make_shared<session>(*this, std::move(sock));
    sessions_.emplace(s.get(), s);
    s->start();
  }
}

// Over the connection cap: answer the HELLO slot with AGENT-DISCONNECT and close, so HAProxy
// logs a reason instead of a reset.
awaitable<void> spop_server::refuse(tcp::socket sock, spop::status st, const char* why) {
  spop::connection c(spop::connection_options{opts_.max_frame_size}, handler_);
  std::string out;
  c.disconnect(st, why, out);
  boost::system::error_code ec;
  co_await asio::async_write(sock, asio::buffer(out), asio::redirect_error(use_awaitable, ec));
  sock.shutdown(tcp::socket::shutdown_both, ec);
  sock.close(ec);
}

void spop_server::remove(session* s) {
  // The session stays alive until its coroutines unwind: they hold their own reference.
  sessions_.erase(s);
  if (stopping_ && sessions_.empty() && on_drained_) {
    auto done = std::move(on_drained_);
    on_drained_ = nullptr;
    asio::post(io_, std::move(done));
  }
}

void spop_server::shutdown(std::function<void()> done) {
  stopping_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  if (sessions_.empty()) {
    asio::post(io_, std::move(done));
    return;
  }
  on_drained_ = std::move(done);
  auto copy = sessions_;
  for (const auto& [ptr, s] : copy)
    s->stop();
}

}  // namespace spoa::agent
