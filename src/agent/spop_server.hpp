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
//
// Limits, so that one hostile or broken peer costs a bounded amount and never disturbs another:
// - max_connections: over the cap a connection gets AGENT-DISCONNECT 13 and is closed;
// - allow_from: connections from other source addresses are closed without a word;
// - max_frame_size: the read buffer never exceeds it (+4), larger frames are refused (status 3);
// - max_pipelined: at most this many frames are decoded before their answers are written; the
//   rest waits in the buffer, and nothing more is read, until that write completed — a peer
//   that does not read its ACKs stops being read (TCP backpressure), never buffered without end;
// - hello_timeout: from accept to a complete HAPROXY-HELLO, however the bytes trickle in;
// - idle_timeout: no complete frame for this long (a slow drip of one partial frame is idle), or
//   a write to a peer that does not read for this long, closes the connection (status 2 when a
//   DISCONNECT can still be written).

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "agent/asio.hpp"
#include "spop/connection.hpp"
#include "spop/options.hpp"

namespace spoa::agent {

// One entry of the allow-list: an address with a prefix length (a CIDR block). Implicit from an
// address, which is the block of that one address. IPv4 entries also match IPv4-mapped IPv6
// peers (::ffff:a.b.c.d), as a dual-stack listener reports them.
struct address_range {
  asio::ip::address network;
  unsigned prefix = 0;  // <= 32 for IPv4, <= 128 for IPv6

  address_range() = default;
  address_range(const asio::ip::address& a)  // NOLINT(google-explicit-constructor)
      : network(a), prefix(a.is_v4() ? 32u : 128u) {}
  address_range(const asio::ip::address& a, unsigned bits) : network(a), prefix(bits) {}
  bool contains(const asio::ip::address& a) const noexcept;
};

// "10.0.0.0/8", "::1", "fd00::/8", "127.0.0.1"; nullopt for anything else (a host name, a prefix
// out of range). Host bits under the mask are ignored: "10.1.2.3/8" is 10.0.0.0/8.
std::optional<address_range> parse_address_range(std::string_view text);

// The listener's options (spop/options.hpp, the config's `spop:` section as it is) plus the
// allow-list parsed into address ranges (allow_from's text is kept for messages only).
struct spop_server_options : spop::listener_options {
  std::vector<address_range> allowed;  // empty = any
};

// Observations for the agent's own metrics; called on the event-loop thread.
struct spop_observer {
  virtual ~spop_observer() = default;
  virtual void on_accept(bool accepted) = 0;  // false: refused (cap or allow-list)
  virtual void on_close(spop::status why) = 0;
  virtual void on_frames(const spop::connection_counters& delta) = 0;  // after each batch
};

// Lifetimes. Every coroutine the server spawns has its state in its own shared object, which the
// coroutine frame owns and the server tracks:
//
//   spop_server --tracks--> listener  (acceptor, back-off timer)  <--owns-- accept loop
//               --tracks--> session   (socket, timer, connection) <--owns-- read loop, watchdog
//               --tracks--> refusal   (socket, DISCONNECT bytes)   <--owns-- its write
//
// Each object holds a back pointer to the server, cleared when the server lets it go: shutdown()
// stops the listener, and a session or refusal that finishes removes itself. ~spop_server()
// detaches everything still tracked: clears the back pointer and closes the object's socket and
// timers. A coroutine checks the back pointer after every co_await and, once detached, touches
// only its own object and returns. So the server may be destroyed at any time on the loop
// thread (not from inside its own observer or handler callbacks): no coroutine references it,
// its handler or its observer afterwards. Those two must outlive the server, not its coroutines.
// The io_context must outlive the server; coroutines still pending when it is destroyed are
// dropped with it and free their own objects.
class spop_server {
 public:
  spop_server(asio::io_context& io, const tcp::endpoint& listen, spop_server_options opts,
              spop::notify_handler& handler, spop_observer* observer = nullptr);
  ~spop_server();
  spop_server(const spop_server&) = delete;
  spop_server& operator=(const spop_server&) = delete;

  tcp::endpoint local_endpoint() const;
  void start();
  // Stop accepting; send AGENT-DISCONNECT (status 0) on every open connection and close it.
  // `done` runs once the last connection is gone, refused ones included (or at once if none).
  void shutdown(std::function<void()> done);
  std::size_t open_connections() const noexcept { return sessions_.size(); }
  // Logs what went wrong since the last call, one line per kind (the agent calls it once a
  // second): connections closed with an error status, by the side that sent it (AGENT-DISCONNECT
  // for a protocol error or timeout the agent found, HAPROXY-DISCONNECT with a non-zero status),
  // connections refused (max_connections, allow_from) and failed accepts, each with its count
  // and the last peer. A peer that fails every connection costs a few lines a second, not one
  // per connection; nothing is formatted until then.
  void log_errors();

  class session;

 private:
  class refusal;
  struct listener;
  static awaitable<void> accept_loop(std::shared_ptr<listener> l);
  void on_accepted(tcp::socket sock);
  void remove(session* s);
  void remove(refusal* r);
  void check_drained();
  bool allowed(const asio::ip::address& a) const;

  asio::io_context& io_;
  std::shared_ptr<listener> listener_;
  spop_server_options opts_;
  spop::notify_handler& handler_;
  spop_observer* observer_;
  std::map<session*, std::shared_ptr<session>> sessions_;
  std::map<refusal*, std::shared_ptr<refusal>> refusals_;
  bool stopping_ = false;
  std::function<void()> on_drained_;

  // log_errors()' tallies since its last call; status codes above 99 are counted as 99.
  struct tally {
    std::uint64_t count = 0;
    tcp::endpoint last_peer;
  };
  static constexpr std::size_t k_statuses = 100;
  void note_close(spop::status agent_status, std::uint64_t peer_status, const tcp::endpoint& peer);
  std::array<tally, k_statuses> agent_closes_{};
  std::array<tally, k_statuses> peer_closes_{};
  tally refused_cap_, refused_addr_;
  std::uint64_t accept_errors_ = 0;
  boost::system::error_code last_accept_error_;
  std::chrono::steady_clock::time_point errors_since_ = std::chrono::steady_clock::now();
};

}  // namespace spoa::agent
