#pragma once
// One Redis connection on the agent's event loop: hiredis 0.14's async context (which does the
// RESP encoding and parsing, sans-I/O in all but connect) driven by an Asio adapter. hiredis asks
// for read and write interest through its ev hooks; each is one async_wait on a
// posix::stream_descriptor over hiredis's socket (released, never closed, by the adapter: the
// socket is hiredis's). Nothing here blocks: connect is non-blocking (redisAsyncConnect) and
// takes an IP literal only (names are resolved by the caller with Asio's resolver, since
// hiredis would call a blocking getaddrinfo()); time limits are the caller's (pending() and
// oldest_ns() give it what it needs).
//
// Lifetime: a link is shared_ptr-owned; every wait holds a reference, so a handler that runs
// after close() finds no context and returns. A reply callback runs exactly once: with the reply,
// or with nullptr when the connection is lost or closed first. The subscription callback runs
// for every message and once more with nullptr at the end. on_lost runs at most once, posted
// (never inside a hiredis callback), and never after close().

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/asio.hpp"

struct redisAsyncContext;
struct redisReply;

namespace spoa::agent {

class redis_link : public std::enable_shared_from_this<redis_link> {
 public:
  using reply_fn = std::function<void(const redisReply*)>;

  static std::shared_ptr<redis_link> create(asio::io_context& io, std::function<void()> on_lost);
  ~redis_link();
  redis_link(const redis_link&) = delete;
  redis_link& operator=(const redis_link&) = delete;

  // Starts a non-blocking connect to an IP literal; false (and error()) when hiredis refuses at
  // once. The connection counts as established when the first reply arrives.
  bool connect(const std::string& ip, std::uint16_t port);
  // Queues one command (written on the next write readiness: commands sent in one turn of the
  // loop go out as one pipeline). false when not connected: fn is not called.
  bool command(const std::vector<std::string_view>& argv, reply_fn fn);
  // SUBSCRIBE channel: fn sees the confirmation and every message.
  bool subscribe(std::string_view channel, reply_fn fn);
  // Frees the context: pending callbacks get nullptr now; on_lost is not called.
  void close();

  bool open() const noexcept { return ctx_ != nullptr; }
  std::size_t pending() const noexcept { return sent_ns_.size(); }
  std::uint64_t oldest_ns() const noexcept { return sent_ns_.empty() ? 0 : sent_ns_.front(); }
  const std::string& error() const noexcept { return error_; }

 private:
  redis_link(asio::io_context& io, std::function<void()> on_lost);
  struct call;
  static void on_reply(redisAsyncContext* c, void* reply, void* priv);
  static void on_connect(const redisAsyncContext* c, int status);
  static void on_disconnect(const redisAsyncContext* c, int status);
  static void add_read(void* p);
  static void del_read(void* p);
  static void add_write(void* p);
  static void del_write(void* p);
  static void cleanup(void* p);
  void arm(bool read);
  void lost(std::string why);

  asio::io_context& io_;
  std::function<void()> on_lost_;
  redisAsyncContext* ctx_ = nullptr;
  std::unique_ptr<asio::posix::stream_descriptor> sd_;
  bool want_read_ = false, want_write_ = false;
  bool read_armed_ = false, write_armed_ = false;
  std::uint64_t generation_ = 0;  // bumped when the context goes: stale waits return
  bool lost_reported_ = false;
  std::deque<std::uint64_t> sent_ns_;  // send time of every reply still owed, oldest first
  std::string error_;
};

}  // namespace spoa::agent
