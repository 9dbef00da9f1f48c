// The SPOP server over loopback, in process: a real spop_server on 127.0.0.1 port 0 and a client
// socket on the same io_context that speaks real SPOP bytes. The io_context is driven until a
// condition holds (never slept on); every test ends by running it to completion, so a coroutine
// that outlived what it references shows up under ASan.

#include "agent/spop_server.hpp"

#include <gtest/gtest.h>

#include "drive.hpp"

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "spop/disconnect.hpp"
#include "spop/frame.hpp"
#include "spop/hello.hpp"
#include "spop/message.hpp"

namespace spoa::agent {
namespace {

using test::drain;
using test::drive;

using namespace std::chrono_literals;

std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Answers each "route" message with backend = its path, server = "s1".
class echo_handler final : public spop::notify_handler {
 public:
  void on_message(const spop::message_view& msg, spop::ack_builder& ack) override {
    ++calls;
    if (msg.name() != "route") return;
    ack.set_var(spop::scope::txn, "backend", msg.string_arg("path"));
    ack.set_var(spop::scope::txn, "server", "s1");
  }
  int calls = 0;
};

struct recording_observer final : spop_observer {
  void on_accept(bool accepted) override { ++(accepted ? accepted_ : refused_); }
  void on_close(spop::status why) override { closed_.push_back(why); }
  void on_frames(const spop::connection_counters& d) override { acks_ += d.ack_sent; }
  int accepted_ = 0;
  int refused_ = 0;
  std::uint64_t acks_ = 0;
  std::vector<spop::status> closed_;
};

std::string hello_frame() {
  std::string out;
  spop::encode_haproxy_hello(out, {"2.0", 16380, "pipelining,async", "371d3c51-0000", false});
  return out;
}

std::string route_notify(std::uint64_t sid, std::uint64_t fid, std::string_view path) {
  const spop::arg args[] = {{"method", spop::typed_value::make_string("GET")},
                            {"path", spop::typed_value::make_string(path)}};
  const spop::notify_message msgs[] = {{"route", args}};
  std::string out;
  spop::encode_notify(out, sid, fid, msgs);
  return out;
}

std::string ack_bytes(std::uint64_t sid, std::uint64_t fid, std::string_view backend) {
  std::string out;
  spop::ack_builder ack(out, sid, fid, 16380);
  ack.set_var(spop::scope::txn, "backend", backend);
  ack.set_var(spop::scope::txn, "server", "s1");
  ack.finish();
  return out;
}

struct frame {
  spop::frame_type type;
  std::string whole;  // length prefix included
  std::string payload;
};

// The complete frames at the front of `in`.
std::vector<frame> frames_of(std::string_view in) {
  std::vector<frame> v;
  std::size_t at = 0;
  while (at < in.size()) {
    const auto r = spop::decode_frame(bytes_of(in).subspan(at), 16380);
    if (r.state != spop::decode_state::frame) break;
    v.push_back({r.frame.type, std::string(in.substr(at, r.consumed)),
                 std::string(reinterpret_cast<const char*>(r.frame.payload.data()),
                             r.frame.payload.size())});
    at += r.consumed;
  }
  return v;
}

std::uint64_t disconnect_status(const frame& f) {
  EXPECT_EQ(f.type, spop::frame_type::agent_disconnect);
  const auto d = spop::parse_disconnect(bytes_of(f.payload));
  EXPECT_TRUE(d.info.has_status_code);
  return d.info.status_code;
}

// A blocking-connected client whose reads run on the test's io_context.
struct client {
  explicit client(asio::io_context& io, const tcp::endpoint& to) : sock(io) {
    sock.connect(to);
    read();
  }
  void send(std::string_view bytes) { asio::write(sock, asio::buffer(bytes)); }
  void read() {
    sock.async_read_some(asio::buffer(chunk), [this](boost::system::error_code ec, std::size_t n) {
      got.append(chunk.data(), n);
      if (ec) {
        closed = true;
        return;
      }
      read();
    });
  }
  std::size_t frame_count() const { return frames_of(got).size(); }

  tcp::socket sock;
  std::array<char, 4096> chunk{};
  std::string got;
  bool closed = false;  // EOF or error seen
};

const tcp::endpoint loopback{asio::ip::make_address("127.0.0.1"), 0};

struct SpopServer : ::testing::Test {
  std::unique_ptr<spop_server> make(spop_server_options o = {}) {
    auto s = std::make_unique<spop_server>(io, loopback, std::move(o), handler, &observer);
    s->start();
    return s;
  }
  asio::io_context io{1};
  echo_handler handler;
  recording_observer observer;
};

TEST_F(SpopServer, HelloNotifyAckOverLoopback) {
  auto server = make();
  client c(io, server->local_endpoint());
  c.send(hello_frame() + route_notify(1, 1, "/a") + route_notify(3, 1, "/b"));
  ASSERT_TRUE(drive(io, [&] { return c.frame_count() >= 3; }));
  std::string hello;
  spop::encode_agent_hello(hello, 16380);
  const auto f = frames_of(c.got);
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0].whole, hello);
  EXPECT_EQ(f[1].whole, ack_bytes(1, 1, "/a"));
  EXPECT_EQ(f[2].whole, ack_bytes(3, 1, "/b"));
  EXPECT_EQ(handler.calls, 2);
  EXPECT_EQ(server->open_connections(), 1u);
  EXPECT_EQ(observer.accepted_, 1);

  // HAPROXY-DISCONNECT: the agent answers in kind and closes.
  std::string bye;
  spop::encode_haproxy_disconnect(bye, 0, "normal");
  c.send(bye);
  ASSERT_TRUE(drive(io, [&] { return c.closed && server->open_connections() == 0; }));
  const auto all = frames_of(c.got);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(disconnect_status(all.back()), 0u);
  EXPECT_EQ(observer.acks_, 2u);
  server.reset();
  EXPECT_TRUE(drain(io));
}

TEST_F(SpopServer, GarbageGetsTheStateMachinesDisconnect) {
  auto server = make();
  client c(io, server->local_endpoint());
  const std::string garbage = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  c.send(garbage);
  ASSERT_TRUE(drive(io, [&] { return c.closed; }));
  // The shell must say exactly what the sans-I/O connection says for these bytes.
  spop::connection reference(spop::connection_options{16380}, handler);
  std::string expected;
  reference.on_bytes(bytes_of(garbage), expected);
  ASSERT_TRUE(reference.closing());
  const auto f = frames_of(c.got);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].whole, expected);
  EXPECT_NE(disconnect_status(f[0]), 0u);
  EXPECT_TRUE(drive(io, [&] { return server->open_connections() == 0; }));
  ASSERT_EQ(observer.closed_.size(), 1u);
  EXPECT_EQ(observer.closed_[0], reference.last_status());
  server.reset();
  EXPECT_TRUE(drain(io));
}

TEST_F(SpopServer, OverTheCapIsRefusedWithStatus13) {
  spop_server_options o;
  o.max_connections = 1;
  auto server = make(o);
  client first(io, server->local_endpoint());
  first.send(hello_frame());
  ASSERT_TRUE(drive(io, [&] { return first.frame_count() >= 1; }));
  client second(io, server->local_endpoint());
  ASSERT_TRUE(drive(io, [&] { return second.closed; }));
  const auto f = frames_of(second.got);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(disconnect_status(f[0]), 13u);
  EXPECT_EQ(observer.accepted_, 1);
  EXPECT_EQ(observer.refused_, 1);
  EXPECT_FALSE(first.closed);
  EXPECT_EQ(server->open_connections(), 1u);
  server.reset();
  EXPECT_TRUE(drive(io, [&] { return first.closed; }));
  EXPECT_TRUE(drain(io));
}

TEST_F(SpopServer, ShutdownSaysGoodbyeOnEveryOpenConnection) {
  auto server = make();
  client a(io, server->local_endpoint());
  client b(io, server->local_endpoint());
  client silent(io, server->local_endpoint());  // no HELLO yet: mid-handshake
  a.send(hello_frame());
  b.send(hello_frame() + route_notify(1, 1, "/x"));
  ASSERT_TRUE(drive(io, [&] {
    return a.frame_count() >= 1 && b.frame_count() >= 2 && server->open_connections() == 3;
  }));
  const tcp::endpoint at = server->local_endpoint();
  bool done = false;
  server->shutdown([&] { done = true; });
  ASSERT_TRUE(drive(io, [&] { return done && a.closed && b.closed && silent.closed; }));
  EXPECT_EQ(server->open_connections(), 0u);
  EXPECT_EQ(disconnect_status(frames_of(a.got).back()), 0u);
  EXPECT_EQ(disconnect_status(frames_of(b.got).back()), 0u);
  // No longer accepting: a new connection is refused by the kernel or closed unanswered.
  tcp::socket late(io);
  boost::system::error_code ec;
  late.connect(at, ec);
  EXPECT_TRUE(ec) << "the listener is closed";
  server.reset();
  EXPECT_TRUE(drain(io));
}

// Destroying the server with live sessions (one mid-read, one before its coroutines first ran)
// detaches them: they close, and never touch the server, its handler or its observer again.
TEST_F(SpopServer, DestroyWithOpenConnections) {
  auto handler2 = std::make_unique<echo_handler>();
  auto observer2 = std::make_unique<recording_observer>();
  auto server = std::make_unique<spop_server>(io, loopback, spop_server_options{}, *handler2,
                                              observer2.get());
  server->start();
  client a(io, server->local_endpoint());
  a.send(hello_frame());
  ASSERT_TRUE(drive(io, [&] { return a.frame_count() >= 1; }));
  client b(io, server->local_endpoint());
  ASSERT_TRUE(drive(io, [&] { return observer2->accepted_ == 2; }));  // b's coroutines: posted
  // The peer's NOTIFY is already in the socket buffer when the server goes away.
  a.send(route_notify(1, 1, "/late"));
  server.reset();
  handler2.reset();
  observer2.reset();
  EXPECT_TRUE(drive(io, [&] { return a.closed && b.closed; }));
  EXPECT_TRUE(drain(io));
}

// A refusal's coroutine is spawned but has not run when the server is destroyed.
TEST_F(SpopServer, DestroyWhileARefusalIsPending) {
  spop_server_options o;
  o.max_connections = 0;  // every connection is refused
  auto observer2 = std::make_unique<recording_observer>();
  auto server = std::make_unique<spop_server>(io, loopback, std::move(o), handler, observer2.get());
  server->start();
  client c(io, server->local_endpoint());
  ASSERT_TRUE(drive(io, [&] { return observer2->refused_ == 1; }));
  server.reset();
  observer2.reset();
  EXPECT_TRUE(drive(io, [&] { return c.closed; }));
  EXPECT_TRUE(drain(io));
}

// shutdown() waits for refusals too: `done` runs only after every spawned coroutine let go.
TEST_F(SpopServer, ShutdownWithARefusalPending) {
  spop_server_options o;
  o.max_connections = 0;
  auto server = make(o);
  client c(io, server->local_endpoint());
  ASSERT_TRUE(drive(io, [&] { return observer.refused_ == 1; }));
  bool done = false;
  server->shutdown([&] { done = true; });
  ASSERT_TRUE(drive(io, [&] { return done && c.closed; }));
  const auto f = frames_of(c.got);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(disconnect_status(f[0]), 13u);
  server.reset();
  EXPECT_TRUE(drain(io));
}

// Destroying the server before the accept loop first ran, and right after shutdown().
TEST_F(SpopServer, DestroyBeforeTheAcceptLoopRan) {
  auto server = make();
  server.reset();
  EXPECT_TRUE(drain(io));
  auto again = make();
  again->shutdown([] {});
  again.reset();
  EXPECT_TRUE(drain(io));
}

}  // namespace
}  // namespace spoa::agent
