#pragma once
// The SPOP listener: accepts HAProxy's connections and runs one coroutine per connection that
// only reads, hands the bytes to the sans-I/O spop::connection, and writes what it produced —
// one write per batch of frames. Everything runs on the agent's single event-loop thread.
//
//   socket --read_some--> [ in_ buffer: | complete frames ... | partial frame | free ]
//                           ^ spop::connection::on_bytes consumes the complete frames,
//                             the partial tail moves to the front, the buffer never grows
//                             beyond the negotiated max-frame-size + 4.
//   out_ (all ACKs of this batch) --one async_write--> socket

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "agent/asio.hpp"
#include "spop/connection.hpp"

namespace spoa::agent {

struct spop_server_options {
  std::uint32_t max_frame_size = 16380;
  std::chrono::milliseconds idle_timeout{180'000};
  std::chrono::milliseconds hello_timeout{5'000};
  std::size_t max_connections = 1024;
  std::vector<asio::ip::address> allow_from;  // empty = any
};

// Observations for the agent's own metrics; called on the event-loop thread.
struct spop_observer {
  virtual ~spop_observer() = default;
  virtual void on_accept(bool accepted) = 0;  // false: refused (cap or allow-list)
  virtual void on_close(spop::status why) = 0;
  virtual void on_frames(const spop::connection_counters& delta) = 0;  // after each batch
};

class spop_server {
 public:
  spop_server(asio::io_context& io, const tcp::endpoint& listen, spop_server_options opts,
              spop::notify_handler& handler, spop_observer* observer = nullptr);
  ~spop_server();

  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
  void start();
  // Stop accepting; send AGENT-DISCONNECT (status 0) on every open connection and close it.
  // `done` runs once the last connection is gone (or immediately if none).
  void shutdown(std::function<void()> done);
  std::size_t open_connections() const noexcept { return sessions_.size(); }

  class session;

 private:
  awaitable<void> accept_loop();
  awaitable<void> refuse(tcp::socket sock, spop::status st, const char* why);
  void remove(session* s);
  bool allowed(const asio::ip::address& a) const;

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  spop_server_options opts_;
  spop::notify_handler& handler_;
  spop_observer* observer_;
  std::map<session*, std::shared_ptr<session>> sessions_;
  bool stopping_ = false;
  std::function<void()> on_drained_;
};

}  // namespace spoa::agent
