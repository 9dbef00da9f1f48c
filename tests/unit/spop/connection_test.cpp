#include "spop/connection.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "spop/disconnect.hpp"
#include "spop/frame.hpp"
#include "spop/hello.hpp"
#include "wire.hpp"

// NoHeapAllocationPerNotify counts with the project's counting operator new.
#include "support/alloc_counter.hpp"

namespace spoa::spop {
namespace {

using test::bytes_of;
using test::to_hex;
using test::wire;

// Answers each "route" message with backend = its path argument, server = "s1"; counts calls.
class echo_handler final : public notify_handler {
 public:
  void on_message(const message_view& msg, ack_builder& ack) override {
    ++calls;
    if (msg.name() != "route") return;
    ack.set_var(scope::txn, "backend", msg.string_arg("path"));
    ack.set_var(scope::txn, "server", "s1");
  }
  int calls = 0;
};

struct decoded_frame {
  frame_type type;
  std::uint64_t sid;
  std::uint64_t fid;
  std::string payload;
};

std::vector<decoded_frame> frames_of(const std::string& out, std::uint32_t max = 16380) {
  std::vector<decoded_frame> v;
  std::size_t at = 0;
  while (at < out.size()) {
    const frame_result r = decode_frame(bytes_of(out).subspan(at), max);
    EXPECT_EQ(r.state, decode_state::frame) << "at " << at;
    if (r.state != decode_state::frame) break;
    v.push_back({r.frame.type, r.frame.stream_id, r.frame.frame_id,
                 std::string(reinterpret_cast<const char*>(r.frame.payload.data()),
                             r.frame.payload.size())});
    at += r.consumed;
  }
  return v;
}

// The status code of the AGENT-DISCONNECT that must end `out`.
std::uint64_t disconnect_status(const std::string& out) {
  const auto frames = frames_of(out);
  EXPECT_FALSE(frames.empty());
  if (frames.empty()) return 999;
  EXPECT_EQ(frames.back().type, frame_type::agent_disconnect);
  const disconnect_result d = parse_disconnect(bytes_of(frames.back().payload));
  EXPECT_EQ(d.st, status::normal);
  EXPECT_TRUE(d.info.has_status_code);
  return d.info.status_code;
}

std::string hello_frame(std::uint32_t max = 16380, bool healthcheck = false) {
  std::string out;
  encode_haproxy_hello(out, {"2.0", max, healthcheck ? "" : "pipelining,async",
                             healthcheck ? "" : "371d3c51-0000", healthcheck});
  return out;
}

std::string route_notify(std::uint64_t sid, std::uint64_t fid, std::string_view path) {
  const arg args[] = {{"method", typed_value::make_string("GET")},
                      {"path", typed_value::make_string(path)}};
  const notify_message msgs[] = {{"route", args}};
  std::string out;
  encode_notify(out, sid, fid, msgs);
  return out;
}

std::string ack_bytes(std::uint64_t sid, std::uint64_t fid, std::string_view backend) {
  std::string out;
  ack_builder ack(out, sid, fid, 16380);
  ack.set_var(scope::txn, "backend", backend);
  ack.set_var(scope::txn, "server", "s1");
  ack.finish();
  return out;
}

struct session {
  std::string in;
  std::string expected_out;
};

// HELLO + n pipelined NOTIFYs (sids 1, 3, 5, ... like HAProxy 3.1, plus a 2.6-style sid 0 and
// a large sid) + HAPROXY-DISCONNECT, and the exact bytes the agent must answer.
session whole_session(int n) {
  session s;
  s.in = hello_frame();
  encode_agent_hello(s.expected_out, 16380);
  for (int k = 0; k < n; ++k) {
    const std::uint64_t sid = k == 0 ? 0 : k == 1 ? 0x7FFFFFFF : std::uint64_t(2 * k + 1);
    const std::string path = "/_matrix/client/v3/rooms/!r" + std::to_string(k) + ":x/send";
    s.in += route_notify(sid, 1, path);
    s.expected_out += ack_bytes(sid, 1, path);
  }
  encode_haproxy_disconnect(s.in, 0, "normal");
  encode_agent_disconnect(s.expected_out, status::normal, status_message(status::normal), 16380);
  return s;
}

// Plays the Asio shell: keeps unconsumed bytes, appends new ones, presents everything again.
struct shell {
  explicit shell(connection_options o = {}) : conn(o, handler) {}
  void feed(std::string_view bytes) {
    pending.append(bytes);
    const std::size_t n = conn.on_bytes(bytes_of(pending), out);
    ASSERT_LE(n, pending.size());
    pending.erase(0, n);
  }
  echo_handler handler;
  connection conn;
  std::string pending;
  std::string out;
};

TEST(Connection, WholeSessionAtOnce) {
  const session s = whole_session(5);
  shell sh;
  sh.feed(s.in);
  EXPECT_EQ(to_hex(sh.out), to_hex(s.expected_out));
  EXPECT_TRUE(sh.pending.empty());
  EXPECT_TRUE(sh.conn.closing());
  EXPECT_EQ(sh.conn.last_status(), status::normal);
  EXPECT_TRUE(sh.conn.hello_done());
  EXPECT_EQ(sh.handler.calls, 5);
  const connection_counters& c = sh.conn.counters();
  EXPECT_EQ(c.hello_received, 1u);
  EXPECT_EQ(c.notify_received, 5u);
  EXPECT_EQ(c.messages_received, 5u);
  EXPECT_EQ(c.disconnect_received, 1u);
  EXPECT_EQ(c.hello_sent, 1u);
  EXPECT_EQ(c.ack_sent, 5u);
  EXPECT_EQ(c.disconnect_sent, 1u);
}

TEST(Connection, WholeSessionSplitAtEveryByte) {
  const session s = whole_session(4);
  const std::size_t hello_size = hello_frame().size();
  for (std::size_t i = 0; i <= s.in.size(); ++i) {
    shell sh;
    sh.feed(std::string_view(s.in).substr(0, i));
    if (i < hello_size) {
      ASSERT_EQ(sh.pending.size(), i) << i;  // need more: nothing consumed
      ASSERT_TRUE(sh.out.empty()) << i;
      ASSERT_FALSE(sh.conn.hello_done());
    }
    ASSERT_FALSE(i < s.in.size() && sh.conn.closing()) << i;
    sh.feed(std::string_view(s.in).substr(i));
    ASSERT_EQ(to_hex(sh.out), to_hex(s.expected_out)) << "split at " << i;
    ASSERT_TRUE(sh.pending.empty()) << i;
    ASSERT_TRUE(sh.conn.closing()) << i;
    ASSERT_EQ(sh.handler.calls, 4) << i;
  }
}

TEST(Connection, WholeSessionByteByByte) {
  const session s = whole_session(6);
  shell sh;
  for (char c : s.in)
    sh.feed(std::string_view(&c, 1));
  EXPECT_EQ(to_hex(sh.out), to_hex(s.expected_out));
  EXPECT_TRUE(sh.conn.closing());
}

TEST(Connection, PipelinedNotifiesAnsweredInOrderWithTheirIds) {
  shell sh;
  sh.feed(hello_frame());
  sh.out.clear();
  std::string batch;
  for (std::uint64_t sid : {9u, 7u, 300u})
    batch += route_notify(sid, sid + 1, "/p");
  sh.feed(batch);
  const auto frames = frames_of(sh.out);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].sid, 9u);
  EXPECT_EQ(frames[0].fid, 10u);
  EXPECT_EQ(frames[1].sid, 7u);
  EXPECT_EQ(frames[2].sid, 300u);
  EXPECT_EQ(frames[2].fid, 301u);
  for (const auto& f : frames)
    EXPECT_EQ(f.type, frame_type::ack);
  EXPECT_FALSE(sh.conn.closing());
}

TEST(Connection, NegotiatesMinOfHaproxyAndCeiling) {
  {
    shell sh(connection_options{4096});
    EXPECT_EQ(sh.conn.frame_size(), 4096u);
    sh.feed(hello_frame(16380));
    EXPECT_EQ(sh.conn.frame_size(), 4096u);
    std::string expect;
    encode_agent_hello(expect, 4096);
    EXPECT_EQ(to_hex(sh.out), to_hex(expect));
  }
  {
    shell sh;
    sh.feed(hello_frame(1024));
    EXPECT_EQ(sh.conn.frame_size(), 1024u);
  }
  {
    shell sh(connection_options{10});  // raised to the protocol minimum
    EXPECT_EQ(sh.conn.frame_size(), 256u);
  }
}

TEST(Connection, FrameBoundIsCeilingBeforeHelloAndNegotiatedAfter) {
  // Before HELLO: a 300-byte frame passes a 16380 ceiling only if it is a HELLO; with a 256
  // ceiling it is too big.
  {
    shell sh(connection_options{256});
    std::string big;
    encode_frame(big, frame_type::haproxy_hello, flag_fin, 0, 0, std::string(300, '\0'));
    sh.feed(big);
    EXPECT_TRUE(sh.conn.closing());
    EXPECT_EQ(sh.conn.last_status(), status::too_big);
    EXPECT_EQ(disconnect_status(sh.out), 3u);
  }
  // After HELLO at 1024: a NOTIFY of exactly 1024 is accepted, 1025 is too big.
  const auto notify_of_len = [](std::uint32_t len) {
    // header 7 + name "r" 2 + nb-args 1 + arg name "" 1 + BINARY type 1 + length 2 + pad
    const std::string pad(len - 14, 'x');
    const arg args[] = {{"", typed_value::make_binary(pad)}};
    const notify_message msgs[] = {{"r", args}};
    std::string out;
    encode_notify(out, 1, 1, msgs);
    return out;
  };
  {
    shell sh;
    sh.feed(hello_frame(1024));
    const std::string n = notify_of_len(1024);
    ASSERT_EQ(n.size(), 1028u);
    sh.feed(n);
    EXPECT_FALSE(sh.conn.closing());
    EXPECT_EQ(sh.conn.counters().ack_sent, 1u);
    sh.out.clear();
    sh.feed(notify_of_len(1025));
    EXPECT_TRUE(sh.conn.closing());
    EXPECT_EQ(disconnect_status(sh.out), 3u);
  }
}

struct error_case {
  const char* name;
  std::string after_hello;  // empty: the bytes are sent instead of a HELLO
  std::string bytes;
  status expected;
};

void expect_failure(const std::string& bytes, bool send_hello, status expected, const char* name) {
  shell sh;
  if (send_hello) {
    sh.feed(hello_frame());
    ASSERT_TRUE(sh.conn.hello_done()) << name;
  }
  sh.out.clear();
  sh.feed(bytes);
  EXPECT_TRUE(sh.conn.closing()) << name;
  EXPECT_EQ(sh.conn.last_status(), expected) << name;
  EXPECT_EQ(disconnect_status(sh.out), static_cast<std::uint64_t>(expected)) << name;
  // Nothing more is processed once closing.
  const std::string more = route_notify(1, 1, "/x");
  EXPECT_EQ(sh.conn.on_bytes(bytes_of(more), sh.out), 0u) << name;
}

std::string hello_payload(std::string_view spec) {
  std::string out;
  encode_frame(out, frame_type::haproxy_hello, flag_fin, 0, 0, wire(spec));
  return out;
}

TEST(Connection, ErrorsBeforeHello) {
  expect_failure(wire("00 00 00 00"), false, status::invalid, "len 0");
  expect_failure(wire("00 00 40 00"), false, status::too_big, "len 16384 > 16380");
  expect_failure(route_notify(1, 1, "/"), false, status::invalid, "NOTIFY before HELLO");
  expect_failure(hello_payload(R"(12 "supported-versions" 08 03 "1.0"
                                  0e "max-frame-size" 03 fc f0 06)"),
                 false, status::unsupported_version, "version 1.0");
  expect_failure(hello_payload(R"(0e "max-frame-size" 03 fc f0 06)"), false, status::no_version,
                 "missing version");
  expect_failure(hello_payload(R"(12 "supported-versions" 08 03 "2.0")"), false,
                 status::no_frame_size, "missing max-frame-size");
  expect_failure(hello_payload(R"(12 "supported-versions" 08 03 "2.0"
                                  0e "max-frame-size" 03 ff 00)"),
                 false, status::bad_frame_size, "max-frame-size 255");
  expect_failure(wire("00 00 00 07 01 00 00 00 00 00 00"), false,
                 status::fragmentation_not_supported, "HELLO without FIN");
  {
    std::string h;
    const std::string good = hello_frame();
    encode_frame(h, frame_type::haproxy_hello, flag_fin, 1, 0, good.substr(11));
    expect_failure(h, false, status::invalid, "HELLO with sid 1");
  }
  {
    std::string h;
    encode_frame(h, frame_type::haproxy_hello, flag_fin, 0, 3, hello_frame().substr(11));
    expect_failure(h, false, status::invalid, "HELLO with fid 3");
  }
  {
    std::string u;
    encode_frame(u, frame_type::unset, flag_fin, 1, 1, "x");
    expect_failure(u, false, status::fragmentation_not_supported, "UNSET before HELLO");
  }
}

TEST(Connection, ErrorsAfterHello) {
  expect_failure(wire("00 00 00 00"), true, status::invalid, "len 0");
  expect_failure(wire("00 00 3f fd"), true, status::too_big, "len max+1");
  expect_failure(hello_frame(), true, status::invalid, "second HELLO");
  expect_failure(wire("00 00 00 07 03 00 00 00 00 01 01"), true,
                 status::fragmentation_not_supported, "NOTIFY without FIN");
  {
    std::string u;
    encode_frame(u, frame_type::unset, flag_fin, 1, 1, "x");
    expect_failure(u, true, status::fragmentation_not_supported, "UNSET fragment");
  }
  // Length says 9 but the payload's string claims 5 bytes: truncated inside a known frame.
  expect_failure(wire(R"(00 00 00 0b 03 00 00 00 01 01 01 01 "r" 01 00 08 05 "ab")"), true,
                 status::invalid, "truncated payload");
  expect_failure(wire("00 00 00 11 03 00 00 00 01 f0 80 80 80 80 80 80 80 80 80 00 01"), true,
                 status::invalid, "11-byte varint");
  expect_failure(wire("00 00 00 07 03 00 00 00 01 01 f4 94 01"), true, status::invalid,
                 "varint past frame end");
  expect_failure(wire(R"(00 00 00 0c 03 00 00 00 01 01 01 01 "r" 01 00 0b)"), true, status::invalid,
                 "unknown typed-data type");
  {
    std::string a;
    encode_frame(a, frame_type::ack, flag_fin, 1, 1, "");
    expect_failure(a, true, status::invalid, "agent frame type from peer");
  }
  {
    std::string d;
    encode_frame(d, frame_type::haproxy_disconnect, flag_fin, 2, 0, "");
    expect_failure(d, true, status::invalid, "DISCONNECT with sid 2");
  }
  expect_failure(wire(R"(00 00 00 0b 02 00 00 00 01 00 00 07 "mes")"), true, status::invalid,
                 "malformed DISCONNECT");
}

TEST(Connection, InvalidNotifyNeverReachesTheHandler) {
  shell sh;
  sh.feed(hello_frame());
  // A valid first message followed by a truncated second one.
  std::string n;
  encode_frame(n, frame_type::notify, flag_fin, 1, 1,
               wire(R"(05 "route" 01 04 "path" 08 01 "/"  03 "bad" 01 00 08 09 "x")"));
  sh.feed(n);
  EXPECT_EQ(sh.handler.calls, 0);
  EXPECT_TRUE(sh.conn.closing());
  const auto frames = frames_of(sh.out);
  ASSERT_EQ(frames.size(), 2u);  // AGENT-HELLO, then directly the DISCONNECT: no partial ACK
  EXPECT_EQ(disconnect_status(sh.out), 4u);
}

TEST(Connection, HealthcheckIsAnsweredThenCloses) {
  shell sh;
  sh.feed(hello_frame(16380, true) + route_notify(1, 1, "/ignored"));
  std::string expect;
  encode_agent_hello(expect, 16380);
  EXPECT_EQ(to_hex(sh.out), to_hex(expect));
  EXPECT_TRUE(sh.conn.closing());
  EXPECT_TRUE(sh.conn.healthcheck());
  EXPECT_TRUE(sh.conn.hello_done());
  EXPECT_EQ(sh.conn.last_status(), status::normal);
  EXPECT_EQ(sh.handler.calls, 0);
}

TEST(Connection, EmptyNotifyGetsTheNoopAck) {
  shell sh;
  sh.feed(hello_frame());
  sh.out.clear();
  std::string n;
  encode_notify(n, 5, 1, {});
  sh.feed(n);
  EXPECT_EQ(to_hex(sh.out),
            to_hex(wire(R"(00 00 00 0f  67  00 00 00 01  05 01  02 02 02 04 "noop")")));
  EXPECT_EQ(sh.handler.calls, 0);
}

TEST(Connection, UnknownMessageGetsTheNoopAck) {
  shell sh;
  sh.feed(hello_frame());
  sh.out.clear();
  const notify_message msgs[] = {{"other", {}}};
  std::string n;
  encode_notify(n, 1, 1, msgs);
  sh.feed(n);
  EXPECT_EQ(to_hex(sh.out),
            to_hex(wire(R"(00 00 00 0f  67  00 00 00 01  01 01  02 02 02 04 "noop")")));
  EXPECT_EQ(sh.handler.calls, 1);
}

TEST(Connection, NotifyWithTwoMessagesCallsHandlerTwiceIntoOneAck) {
  shell sh;
  sh.feed(hello_frame());
  sh.out.clear();
  const arg a1[] = {{"path", typed_value::make_string("/one")}, {"user", typed_value{}}};
  const arg a2[] = {{"", typed_value::make_string("unnamed")},
                    {"path", typed_value::make_string("/two")}};
  const notify_message msgs[] = {{"route", a1}, {"route", a2}};
  std::string n;
  encode_notify(n, 11, 2, msgs);
  sh.feed(n);
  EXPECT_EQ(sh.handler.calls, 2);
  const auto frames = frames_of(sh.out);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].sid, 11u);
  EXPECT_EQ(frames[0].fid, 2u);
  ack_reader r(bytes_of(frames[0].payload));
  action a;
  std::vector<std::string> values;
  while (r.next(a))
    values.emplace_back(a.value.bytes);
  EXPECT_EQ(r.error(), status::normal);
  EXPECT_EQ(values, (std::vector<std::string>{"/one", "s1", "/two", "s1"}));
}

TEST(Connection, UnknownFrameTypesAreSkipped) {
  shell sh;
  sh.feed(hello_frame());
  sh.out.clear();
  std::string in;
  encode_frame(in, static_cast<frame_type>(42), flag_fin, 0, 0, "whatever");
  in += route_notify(1, 1, "/after");
  sh.feed(in);
  EXPECT_FALSE(sh.conn.closing());
  EXPECT_EQ(sh.conn.counters().unknown_received, 1u);
  EXPECT_EQ(to_hex(sh.out), to_hex(ack_bytes(1, 1, "/after")));
}

TEST(Connection, PeerDisconnectBeforeHelloIsAnsweredNormally) {
  shell sh;
  std::string d;
  encode_haproxy_disconnect(d, 2, "a timeout occurred");
  sh.feed(d);
  EXPECT_TRUE(sh.conn.closing());
  EXPECT_EQ(sh.conn.last_status(), status::normal);
  EXPECT_EQ(sh.conn.peer_status(), 2u);
  EXPECT_EQ(disconnect_status(sh.out), 0u);
}

TEST(Connection, PeerDisconnectAnsweredWithAgentDisconnect0) {
  shell sh;
  sh.feed(hello_frame());
  sh.out.clear();
  std::string d;
  encode_haproxy_disconnect(d, 0, "normal");
  sh.feed(d + route_notify(1, 1, "/late"));
  std::string expect;
  encode_agent_disconnect(expect, status::normal, "normal (no error occurred)", 16380);
  EXPECT_EQ(to_hex(sh.out), to_hex(expect));
  EXPECT_EQ(sh.handler.calls, 0);  // nothing after the DISCONNECT is processed
  EXPECT_EQ(sh.pending.size(), route_notify(1, 1, "/late").size());
}

TEST(Connection, AgentInitiatedDisconnect) {
  shell sh;
  sh.feed(hello_frame(512));
  sh.out.clear();
  sh.conn.disconnect(status::timeout, std::string(400, 'm'), sh.out);
  EXPECT_TRUE(sh.conn.closing());
  EXPECT_EQ(sh.conn.last_status(), status::timeout);
  EXPECT_EQ(disconnect_status(sh.out), 2u);
  const std::size_t size = sh.out.size();
  sh.conn.disconnect(status::normal, "again", sh.out);  // only one DISCONNECT is ever sent
  EXPECT_EQ(sh.out.size(), size);
  EXPECT_EQ(sh.conn.last_status(), status::timeout);
}

TEST(Connection, NoHeapAllocationPerNotify) {
  shell sh;
  sh.feed(hello_frame());
  const std::string n = route_notify(3, 1, "/_matrix/client/v3/rooms/!abc:example.org/send/m");
  std::string out;
  out.reserve(4096);
  const auto allocations_before = spoa::test::allocations();
  std::size_t consumed = 0;
  for (int k = 0; k < 100; ++k) {
    out.clear();
    consumed += sh.conn.on_bytes(bytes_of(n), out);
  }
  EXPECT_EQ(spoa::test::allocations() - allocations_before, 0u);
  EXPECT_EQ(consumed, 100 * n.size());
  EXPECT_EQ(to_hex(out),
            to_hex(ack_bytes(3, 1, "/_matrix/client/v3/rooms/!abc:example.org/send/m")));
}

}  // namespace
}  // namespace spoa::spop
