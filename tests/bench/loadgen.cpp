// spoa-loadgen — an SPOP load generator that plays HAProxy 2.6 against a running agent.
//
//   spoa-loadgen --agent 127.0.0.1:12345 [--agent-pid PID] [--connections 8] [--pipeline 20]
//                [--duration 5] [--warmup 1] [--pin-cpu N] [--seed 1] [--max-frame-size 16380]
//                [--rooms 10000] [--rate 0] [--room-dist skew|fill|churn] [--fill-first 0]
//                [--hot-rooms 1000] [--hot-share 0.9] [--new-share 0.01] [--new-base N]
//                [--messages 0] [--fill-users]
//
// Each connection says HAPROXY-HELLO (version 2.0, pipelining only), then keeps up to
// --pipeline NOTIFYs in flight (HAProxy 2.6's max-waiting-frames default is 20): every ACK that
// arrives is matched to its stream-id, timed, checked (it must parse and carry set-var actions)
// and replaced by the next NOTIFY of the seeded Matrix request mix. The refills of one read go
// out in one write, as HAProxy batches its applets' output. At the end every connection sends
// HAPROXY-DISCONNECT and expects AGENT-DISCONNECT status 0.
//
// Reports messages/s, ACK latency p50/p99/p99.9, and — with --agent-pid — the agent's CPU time
// (utime + stime of /proc/PID/stat, all threads) over the measured window, per message.
// --rate R caps each connection at R NOTIFYs per second (0 = as fast as the agent answers);
// --messages N ends the run once N NOTIFYs were sent and answered (0 = run for --duration).
// --room-dist picks the room of room-keyed requests (the default `skew` is the pre-encoded mix
// above; the other two encode every NOTIFY when it is sent, for the shared store's scale
// benchmark, tests/bench/shared_scale.py):
//   fill   every message is a room send to the next room, (fill-first + n) % rooms, n = 0, 1, ...
//          (with --fill-users, first one sync for each of the mix's 5000 users and one federation
//          send for each of its 200 origins: every affinity key the mix uses besides rooms)
//   churn  the request mix, its rooms drawn: new-share of them a room never requested before
//          (rooms + new-base + n), hot-share uniform over the hot-rooms first rooms, the rest
//          uniform over all `rooms` (the cold tail)
// Exit status: 0 if messages were ACKed and no protocol error was seen, 1 otherwise, 2 on bad
// arguments. It is a benchmark tool, not a conformance suite: "protocol error" means anything a
// correct agent would not do (bad frame, unmatched stream-id, DISCONNECT with a non-zero status,
// `async` or `fragmentation` announced, an early close).
//
// One thread, plain non-blocking sockets and epoll: the generator must cost less than the agent
// it measures, so that on a two-core machine it can sit on the other core (--pin-cpu).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "request_mix.hpp"
#include "spop/disconnect.hpp"
#include "spop/frame.hpp"
#include "spop/hello.hpp"
#include "spop/message.hpp"

namespace {

using namespace spoa::spop;

// The mix's users and origins (request_mix's defaults).
constexpr int mix_users = 5000, mix_origins = 200;

struct options {
  std::string host = "127.0.0.1";
  int port = 0;
  int agent_pid = 0;
  int connections = 8;
  int pipeline = 20;
  double duration = 5.0;
  double warmup = 1.0;
  int pin_cpu = -1;
  std::uint64_t seed = 1;
  std::uint32_t max_frame_size = 16380;
  int rooms = 10'000;
  double rate = 0;             // NOTIFYs per second per connection; 0 = unlimited
  std::uint64_t messages = 0;  // NOTIFYs to send in all; 0 = until --duration
  std::string room_dist = "skew";
  long long fill_first = 0;
  bool fill_users = false;
  int hot_rooms = 1000;
  double hot_share = 0.9;
  double new_share = 0.01;
  long long new_base = -1;  // -1 = seed * 10,000,000
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "spoa-loadgen: %s\n"
               "usage: spoa-loadgen --agent IP:PORT [--agent-pid PID] [--connections N]\n"
               "         [--pipeline N] [--duration S] [--warmup S] [--pin-cpu CPU] [--seed N]\n"
               "         [--max-frame-size N] [--rooms N] [--rate MSGS_PER_S_PER_CONN]\n"
               "         [--room-dist skew|fill|churn] [--fill-first N] [--hot-rooms N]\n"
               "         [--hot-share F] [--new-share F] [--new-base N] [--messages N]\n"
               "         [--fill-users]\n",
               why.c_str());
  std::exit(2);
}

options parse_args(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    auto number = [&](double lo, double hi) {
      const std::string v = value();
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || !(d >= lo && d <= hi)) {
        usage(a + ": bad value '" + v + "'");
      }
      return d;
    };
    if (a == "--agent") {
      const std::string v = value();
      const auto colon = v.rfind(':');
      if (colon == std::string::npos) usage("--agent wants IP:PORT, got '" + v + "'");
      o.host = v.substr(0, colon);
      o.port = std::atoi(v.c_str() + colon + 1);
      if (o.port <= 0 || o.port > 65535) usage("--agent: bad port in '" + v + "'");
    } else if (a == "--agent-pid") {
      o.agent_pid = static_cast<int>(number(1, 1 << 30));
    } else if (a == "--connections") {
      o.connections = static_cast<int>(number(1, 10000));
    } else if (a == "--pipeline") {
      o.pipeline = static_cast<int>(number(1, 4096));
    } else if (a == "--duration") {
      o.duration = number(0.1, 86400);
    } else if (a == "--warmup") {
      o.warmup = number(0, 3600);
    } else if (a == "--pin-cpu") {
      o.pin_cpu = static_cast<int>(number(0, 4095));
    } else if (a == "--seed") {
      o.seed = static_cast<std::uint64_t>(number(0, 1e18));
    } else if (a == "--max-frame-size") {
      o.max_frame_size = static_cast<std::uint32_t>(number(256, 1 << 24));
    } else if (a == "--rooms") {
      o.rooms = static_cast<int>(number(1, 1e8));
    } else if (a == "--rate") {
      o.rate = number(0, 1e9);
    } else if (a == "--messages") {
      o.messages = static_cast<std::uint64_t>(number(0, 1e15));
    } else if (a == "--room-dist") {
      o.room_dist = value();
      if (o.room_dist != "skew" && o.room_dist != "fill" && o.room_dist != "churn") {
        usage("--room-dist: skew, fill or churn, not '" + o.room_dist + "'");
      }
    } else if (a == "--fill-users") {
      o.fill_users = true;
    } else if (a == "--fill-first") {
      o.fill_first = static_cast<long long>(number(0, 1e12));
    } else if (a == "--hot-rooms") {
      o.hot_rooms = static_cast<int>(number(1, 1e8));
    } else if (a == "--hot-share") {
      o.hot_share = number(0, 1);
    } else if (a == "--new-share") {
      o.new_share = number(0, 1);
    } else if (a == "--new-base") {
      o.new_base = static_cast<long long>(number(0, 1e15));
    } else if (a == "-h" || a == "--help") {
      usage("help");
    } else {
      usage("unknown argument '" + a + "'");
    }
  }
  if (o.port == 0) usage("--agent is required");
  if (o.hot_share + o.new_share > 1) usage("--hot-share + --new-share must be at most 1");
  if (o.new_base < 0) o.new_base = static_cast<long long>(o.seed) * 10'000'000;
  return o;
}

std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// utime + stime of every thread of `pid`, in seconds; -1 if unreadable.
double process_cpu_seconds(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto close = s.rfind(')');  // the command name may contain spaces and parentheses
  if (close == std::string::npos) return -1;
  std::istringstream in(s.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  // fields after the name start at 3 (state); utime is 14, stime 15
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double self_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// One NOTIFY payload: a `route` message with the request's six arguments.
std::string encode_payload(const spoa::bench::mix_request& r) {
  static const char src[4] = {127, 0, 0, 1};
  auto str_or_null = [](const std::string& s) {
    return s.empty() ? typed_value::make_null() : typed_value::make_string(s);
  };
  const arg args[] = {
      {"method", typed_value::make_string(r.method)},
      {"path", typed_value::make_string(r.path)},
      {"query", str_or_null(r.query)},
      {"user", str_or_null(r.user)},
      {"origin", str_or_null(r.origin)},
      {"src", typed_value::make_ipv4(std::string_view(src, 4))},
  };
  const notify_message msg{"route", args};
  std::string frame;
  encode_notify(frame, 0, 0, std::span<const notify_message>(&msg, 1));
  // Keep the payload only: decode our own frame to find where it starts.
  const auto f = decode_frame(as_bytes(frame), 1u << 24);
  return {reinterpret_cast<const char*>(f.frame.payload.data()), f.frame.payload.size()};
}

// The NOTIFY payloads of --room-dist skew, encoded once up front so the generator spends its
// time on I/O, not on encoding.
std::vector<std::string> make_payloads(const options& o) {
  std::vector<std::string> payloads;
  if (o.room_dist != "skew") return payloads;
  spoa::bench::request_mix mix(o.seed, {o.rooms, mix_users, mix_origins});
  constexpr std::size_t n = 1 << 16;
  payloads.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    payloads.push_back(encode_payload(mix.next()));
  return payloads;
}

struct stats {
  std::uint64_t sent = 0;
  std::uint64_t acked = 0;
  std::uint64_t acked_window = 0;
  std::uint64_t routed = 0;  // ACKs carrying set-var(txn, backend)
  std::uint64_t protocol_errors = 0;
  std::uint64_t reads = 0;
  std::uint64_t writes = 0;
  std::vector<std::uint32_t> latency_ns;  // ACKs inside the measured window
  std::string agent_capabilities;
  std::string first_error;
};

struct conn {
  enum class st { hello, running, draining, disconnecting, closed } state = st::hello;
  int fd = -1;
  std::vector<std::uint8_t> in;
  std::size_t have = 0;
  std::string out;
  std::size_t out_off = 0;
  std::uint32_t frame_size = 0;
  std::uint64_t next_sid = 1;
  int in_flight = 0;
  std::uint64_t sent = 0;        // NOTIFYs sent, for --rate
  std::uint64_t running_ns = 0;  // when AGENT-HELLO arrived, for --rate
  // in-flight NOTIFYs: stream-id and send time, slot = sid % slots.size()
  std::vector<std::uint64_t> slot_sid;
  std::vector<std::uint64_t> slot_sent;
};

class generator {
 public:
  generator(options o)
      : o_(std::move(o)), payloads_(make_payloads(o_)), room_rng_(o_.seed ^ 0x5eedu) {
    if (o_.room_dist == "churn") {
      spoa::bench::mix_options mo{o_.rooms, mix_users, mix_origins};
      mo.pick_room = [this] { return churn_room(); };
      live_mix_ = std::make_unique<spoa::bench::request_mix>(o_.seed, mo);
    } else if (o_.room_dist == "fill") {
      live_mix_ = std::make_unique<spoa::bench::request_mix>(o_.seed);  // its users only
    }
  }

  int run();

 private:
  void error(conn& c, const std::string& what) {
    ++stats_.protocol_errors;
    if (stats_.first_error.empty()) stats_.first_error = what;
    close_conn(c);
  }
  void close_conn(conn& c) {
    if (c.fd >= 0) {
      epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
      ::close(c.fd);
      c.fd = -1;
    }
    c.state = conn::st::closed;
  }
  int churn_room() {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(room_rng_);
    if (u < o_.new_share) {
      return static_cast<int>((o_.rooms + o_.new_base + static_cast<long long>(new_rooms_++)) %
                              2'000'000'000);
    }
    const int n = u < o_.new_share + o_.hot_share ? std::min(o_.hot_rooms, o_.rooms) : o_.rooms;
    return static_cast<int>(room_rng_() % static_cast<std::uint64_t>(n));
  }
  // The next NOTIFY's payload: pre-encoded (skew) or encoded now (fill, churn).
  const std::string& next_payload() {
    if (!live_mix_) return payloads_[next_payload_++ & (payloads_.size() - 1)];
    if (o_.room_dist == "fill") {
      spoa::bench::mix_request r;
      if (o_.fill_users && fill_keys_ < mix_users + mix_origins) {
        const int i = fill_keys_++;
        if (i < mix_users) {
          r.method = "GET";
          r.path = "/_matrix/client/v3/sync";
          r.query = "timeout=30000";
          r.user = spoa::bench::request_mix::user_key(i);
        } else {
          r.method = "PUT";
          r.path = "/_matrix/federation/v1/send/" + std::to_string(1'700'000'000'000 + i);
          r.origin = spoa::bench::request_mix::origin_name(i - mix_users);
        }
        scratch_ = encode_payload(r);
        return scratch_;
      }
      const long long room = (o_.fill_first + static_cast<long long>(next_payload_++)) % o_.rooms;
      r.method = "PUT";
      r.path = "/_matrix/client/v3/rooms/" +
               spoa::bench::request_mix::room_id(static_cast<int>(room), 0) +
               "/send/m.room.message/m" + std::to_string(next_payload_);
      r.user = live_mix_->next().user;
      scratch_ = encode_payload(r);
    } else {
      scratch_ = encode_payload(live_mix_->next());
    }
    return scratch_;
  }
  bool rate_allows(const conn& c, std::uint64_t now) const {
    if (o_.rate <= 0) return true;
    const double budget = o_.rate * static_cast<double>(now - c.running_ns) / 1e9 + 1;
    return static_cast<double>(c.sent) < budget;
  }
  void queue_notify(conn& c) {
    const std::string& p = next_payload();
    const std::uint64_t sid = c.next_sid++;
    // HAProxy 2.6: stream-id = the stream's unique id, frame-id = 1 for its first NOTIFY
    const std::size_t start = begin_frame(c.out, frame_type::notify, sid, 1);
    c.out.append(p);
    end_frame(c.out, start);
    const std::size_t slot = sid % c.slot_sid.size();
    c.slot_sid[slot] = sid;
    c.slot_sent[slot] = now_ns();
    ++c.in_flight;
    ++c.sent;
    ++stats_.sent;
  }
  void refill(conn& c) {
    if (c.state != conn::st::running) return;
    const std::uint64_t now = o_.rate > 0 ? now_ns() : 0;
    while (c.in_flight < o_.pipeline && rate_allows(c, now) &&
           (o_.messages == 0 || stats_.sent < o_.messages))
      queue_notify(c);
  }
  bool flush(conn& c);
  void on_readable(conn& c);
  void on_frame(conn& c, const frame_view& f);

  options o_;
  std::vector<std::string> payloads_;
  std::size_t next_payload_ = 0;
  std::mt19937_64 room_rng_;
  std::unique_ptr<spoa::bench::request_mix> live_mix_;
  std::uint64_t new_rooms_ = 0;
  int fill_keys_ = 0;  // --fill-users: users, then origins, sent so far
  std::string scratch_;
  std::vector<conn> conns_;
  int ep_ = -1;
  stats stats_;
  bool measuring_ = false;
};

bool generator::flush(conn& c) {
  while (c.out_off < c.out.size()) {
    const ssize_t n =
        ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.ptr = &c;
        epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
        return true;
      }
      error(c, std::string("send: ") + std::strerror(errno));
      return false;
    }
    ++stats_.writes;
    c.out_off += static_cast<std::size_t>(n);
  }
  c.out.clear();
  c.out_off = 0;
  return true;
}

void generator::on_frame(conn& c, const frame_view& f) {
  switch (f.type) {
    case frame_type::agent_hello: {
      if (c.state != conn::st::hello) return error(c, "second AGENT-HELLO");
      const auto h = parse_agent_hello(f.payload);
      if (h.st != status::normal) return error(c, "AGENT-HELLO does not parse");
      if (h.hello.version != "2.0") return error(c, "AGENT-HELLO version is not 2.0");
      if (h.hello.max_frame_size < 256 || h.hello.max_frame_size > o_.max_frame_size) {
        return error(c, "AGENT-HELLO max-frame-size out of range");
      }
      stats_.agent_capabilities = std::string(h.hello.capabilities);
      if (h.hello.capabilities.find("async") != std::string_view::npos ||
          h.hello.capabilities.find("fragmentation") != std::string_view::npos) {
        return error(c, "agent announced async or fragmentation: '" +
                            std::string(h.hello.capabilities) + "'");
      }
      c.frame_size = static_cast<std::uint32_t>(h.hello.max_frame_size);
      c.state = conn::st::running;
      c.running_ns = now_ns();
      refill(c);
      return;
    }
    case frame_type::ack: {
      if (c.state == conn::st::hello) return error(c, "ACK before AGENT-HELLO");
      const std::size_t slot = f.stream_id % c.slot_sid.size();
      if (c.in_flight == 0 || c.slot_sid[slot] != f.stream_id || f.frame_id != 1) {
        return error(c, "ACK for an unknown stream-id/frame-id");
      }
      c.slot_sid[slot] = 0;
      --c.in_flight;
      ack_reader rd(f.payload);
      action a;
      int actions = 0;
      bool routed = false;
      while (rd.next(a)) {
        ++actions;
        if (a.type == action_type::set_var && a.name == "backend") routed = true;
      }
      if (rd.error() != status::normal || actions == 0) return error(c, "ACK payload invalid");
      ++stats_.acked;
      if (routed) ++stats_.routed;
      if (measuring_) {
        ++stats_.acked_window;
        const std::uint64_t d = now_ns() - c.slot_sent[slot];
        stats_.latency_ns.push_back(d > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<std::uint32_t>(d));
      }
      return;
    }
    case frame_type::agent_disconnect: {
      const auto d = parse_disconnect(f.payload);
      if (c.state != conn::st::disconnecting || d.st != status::normal || d.info.status_code != 0) {
        return error(c, "AGENT-DISCONNECT status " + std::to_string(d.info.status_code) + ": " +
                            std::string(d.info.message));
      }
      close_conn(c);
      return;
    }
    default:
      return error(c, "unexpected frame type " + std::to_string(static_cast<int>(f.type)));
  }
}

void generator::on_readable(conn& c) {
  for (;;) {
    if (c.have == c.in.size()) c.in.resize(c.in.size() * 2);
    const ssize_t n = ::recv(c.fd, c.in.data() + c.have, c.in.size() - c.have, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return error(c, std::string("recv: ") + std::strerror(errno));
    }
    if (n == 0) {
      if (c.state == conn::st::disconnecting) return close_conn(c);
      return error(c, "agent closed the connection");
    }
    ++stats_.reads;
    c.have += static_cast<std::size_t>(n);
    std::size_t off = 0;
    for (;;) {
      const std::uint32_t limit = c.frame_size ? c.frame_size : o_.max_frame_size;
      const auto r =
          decode_frame(std::span<const std::uint8_t>(c.in.data() + off, c.have - off), limit);
      if (r.state == decode_state::need_more) break;
      if (r.state == decode_state::error) return error(c, "undecodable frame from the agent");
      off += r.consumed;
      on_frame(c, r.frame);
      if (c.state == conn::st::closed) return;
    }
    std::memmove(c.in.data(), c.in.data() + off, c.have - off);
    c.have -= off;
    if (static_cast<std::size_t>(n) < c.in.size() / 2) break;  // drained the socket
  }
  refill(c);
  if (c.state == conn::st::draining && c.in_flight == 0) {
    encode_haproxy_disconnect(c.out, 0, "loadgen done");
    c.state = conn::st::disconnecting;
  }
  flush(c);
}

int generator::run() {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  conns_.resize(static_cast<std::size_t>(o_.connections));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(o_.port));
  if (inet_pton(AF_INET, o_.host.c_str(), &addr.sin_addr) != 1) usage("--agent: IPv4 only");
  for (auto& c : conns_) {
    c.in.resize(o_.max_frame_size + 4);
    const std::size_t slots = static_cast<std::size_t>(o_.pipeline) * 4;
    c.slot_sid.assign(slots, 0);
    c.slot_sent.assign(slots, 0);
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c.fd < 0 || ::connect(c.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      std::fprintf(stderr, "spoa-loadgen: connect %s:%d: %s\n", o_.host.c_str(), o_.port,
                   std::strerror(errno));
      return 1;
    }
    const int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &c;
    epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev);
    encode_haproxy_hello(c.out, {"2.0", o_.max_frame_size, "pipelining", "loadgen-engine", false});
    flush(c);
  }

  const std::uint64_t t_start = now_ns();
  const auto ns = [](double s) { return static_cast<std::uint64_t>(s * 1e9); };
  const std::uint64_t t_measure = t_start + ns(o_.warmup);
  const std::uint64_t t_stop = t_measure + ns(o_.duration);
  const std::uint64_t t_give_up = t_stop + ns(2.0);
  double agent_cpu0 = 0, agent_cpu1 = 0, self_cpu0 = 0, self_cpu1 = 0;
  std::uint64_t window_start = 0, window_end = 0, reads0 = 0, writes0 = 0, reads1 = 0, writes1 = 0;
  bool stopped = false;
  std::vector<epoll_event> events(256);
  for (;;) {
    const std::uint64_t now = now_ns();
    if (!measuring_ && !stopped && now >= t_measure) {
      measuring_ = true;
      window_start = now;
      if (o_.agent_pid) agent_cpu0 = process_cpu_seconds(o_.agent_pid);
      self_cpu0 = self_cpu_seconds();
      reads0 = stats_.reads;
      writes0 = stats_.writes;
    }
    const bool all_sent =
        o_.messages != 0 && stats_.sent >= o_.messages && stats_.acked >= o_.messages;
    if (!stopped && (now >= t_stop || (all_sent && measuring_))) {
      stopped = true;
      measuring_ = false;
      window_end = now;
      if (o_.agent_pid) agent_cpu1 = process_cpu_seconds(o_.agent_pid);
      self_cpu1 = self_cpu_seconds();
      reads1 = stats_.reads;
      writes1 = stats_.writes;
      for (auto& c : conns_) {
        if (c.state == conn::st::running || c.state == conn::st::hello) {
          c.state = conn::st::draining;
          if (c.in_flight == 0) {
            encode_haproxy_disconnect(c.out, 0, "loadgen done");
            c.state = conn::st::disconnecting;
            flush(c);
          }
        }
      }
    }
    bool open = false;
    for (const auto& c : conns_)
      open = open || c.state != conn::st::closed;
    if (!open) break;
    if (now >= t_give_up) {
      for (auto& c : conns_) {
        if (c.state != conn::st::closed) error(c, "no AGENT-DISCONNECT within 2 s of the end");
      }
      break;
    }
    if (o_.rate > 0 && !stopped) {  // paced: top up every connection's budget
      for (auto& c : conns_) {
        if (c.state != conn::st::running) continue;
        const std::size_t before = c.out.size();
        refill(c);
        if (c.out.size() != before) flush(c);
      }
    }
    const int n =
        epoll_wait(ep_, events.data(), static_cast<int>(events.size()), o_.rate > 0 ? 1 : 10);
    for (int i = 0; i < n; ++i) {
      auto& c = *static_cast<conn*>(events[static_cast<std::size_t>(i)].data.ptr);
      if (c.state == conn::st::closed) continue;
      if (events[static_cast<std::size_t>(i)].events & EPOLLOUT) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = &c;
        epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
        if (!flush(c)) continue;
      }
      if (events[static_cast<std::size_t>(i)].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        on_readable(c);
      }
    }
  }
  ::close(ep_);
  if (window_end == 0) {  // ended before the window closed (every connection failed)
    window_end = now_ns();
    reads1 = stats_.reads;
    writes1 = stats_.writes;
    self_cpu1 = self_cpu_seconds();
    if (o_.agent_pid) agent_cpu1 = process_cpu_seconds(o_.agent_pid);
  }

  // --- report ---
  const double secs = static_cast<double>(window_end - window_start) / 1e9;
  const double rate = secs > 0 ? static_cast<double>(stats_.acked_window) / secs : 0;
  auto& lat = stats_.latency_ns;
  auto pct = [&](double p) -> double {
    if (lat.empty()) return 0;
    auto k = static_cast<std::size_t>(p * static_cast<double>(lat.size() - 1));
    std::nth_element(lat.begin(), lat.begin() + static_cast<std::ptrdiff_t>(k), lat.end());
    return static_cast<double>(lat[k]) / 1e3;
  };
  const double p50 = pct(0.50), p99 = pct(0.99), p999 = pct(0.999);
  const double msgs = static_cast<double>(stats_.acked_window);
  std::printf(
      "spoa-loadgen: %d connections x %d pipelined, %.1f s measured (after %.1f s warm-up)\n",
      o_.connections, o_.pipeline, secs, o_.warmup);
  std::printf("agent capabilities: \"%s\"\n", stats_.agent_capabilities.c_str());
  std::printf("| metric | value |\n|---|---|\n");
  std::printf("| messages ACKed (window) | %llu |\n",
              static_cast<unsigned long long>(stats_.acked_window));
  std::printf("| messages/s | %.0f |\n", rate);
  if (o_.rate > 0) {
    std::printf("| offered (--rate x connections, msgs/s) | %.0f |\n", o_.rate * o_.connections);
  }
  if (o_.room_dist != "skew") {
    std::printf("| room distribution | %s (new rooms sent: %llu) |\n", o_.room_dist.c_str(),
                static_cast<unsigned long long>(new_rooms_));
  }
  std::printf("| latency p50 / p99 / p99.9 (us) | %.1f / %.1f / %.1f |\n", p50, p99, p999);
  if (o_.agent_pid && msgs > 0) {
    const double cpu = agent_cpu1 - agent_cpu0;
    std::printf("| agent CPU (s) / utilisation | %.2f / %.0f%% |\n", cpu, 100 * cpu / secs);
    std::printf("| agent CPU per message (us) | %.2f |\n", cpu * 1e6 / msgs);
  }
  if (msgs > 0) {
    std::printf("| loadgen CPU per message (us) | %.2f |\n", (self_cpu1 - self_cpu0) * 1e6 / msgs);
    std::printf("| loadgen reads / writes per message | %.3f / %.3f |\n",
                static_cast<double>(reads1 - reads0) / msgs,
                static_cast<double>(writes1 - writes0) / msgs);
  }
  std::printf("| total sent / ACKed / routed | %llu / %llu / %llu |\n",
              static_cast<unsigned long long>(stats_.sent),
              static_cast<unsigned long long>(stats_.acked),
              static_cast<unsigned long long>(stats_.routed));
  std::printf("| protocol errors | %llu%s%s |\n",
              static_cast<unsigned long long>(stats_.protocol_errors),
              stats_.first_error.empty() ? "" : " — first: ", stats_.first_error.c_str());
  return stats_.acked > 0 && stats_.protocol_errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  options o = parse_args(argc, argv);
  if (o.pin_cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(o.pin_cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
      std::fprintf(stderr, "spoa-loadgen: sched_setaffinity(%d): %s\n", o.pin_cpu,
                   std::strerror(errno));
      return 2;
    }
  }
  generator g(std::move(o));
  return g.run();
}
