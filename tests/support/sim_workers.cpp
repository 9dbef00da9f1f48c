// spoa-sim-workers: one process serving N simulated Synapse workers on loopback, each with an
// HTTP listener (answers everything after a simulated service time) and a metrics listener
// (Synapse-shaped exposition, see worker_model.hpp), plus a control listener that switches a
// worker into slow / hung / down / garbage / huge modes, or freezes it (`frozen`: both listeners
// accept and nothing is answered until it thaws, as with a SIGSTOPped process). Used by the
// integration tests, the demo and the benchmarks. One io_context, one thread: the model needs no
// locks.

// g++ 12 + Boost 1.74: <utility> must precede Asio's coroutine headers.
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "support/worker_model.hpp"

namespace spoa::sim {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
template <typename T = void>
using awaitable = asio::awaitable<T>;

constexpr std::size_t header_limit = 16 * 1024;
constexpr std::size_t http_body_limit = 1024 * 1024;
constexpr std::size_t small_body_limit = 64 * 1024;  // metrics and control requests
constexpr std::size_t max_connections = 4096;        // over this, new connections are closed
constexpr std::uint64_t huge_body_bytes = 50ull * 1024 * 1024;
constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

auto ec_token(error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

// ---------------------------------------------------------------------------------------------
// Command line

struct worker_spec {
  std::string name;
  tcp::endpoint http;
  tcp::endpoint metrics;
};

struct options {
  std::string server_name = "example.org";
  double cpu_per_request = 0.002;
  unsigned cores = 1;
  std::string ready_file;
  tcp::endpoint control{asio::ip::make_address_v4("127.0.0.1"), 0};
  std::vector<worker_spec> workers;
};

constexpr std::string_view usage =
    "usage: spoa-sim-workers [--server-name NAME] [--cpu-per-request SECONDS] [--cores N]\n"
    "                        [--ready-file PATH] [--control 127.0.0.1:PORT]\n"
    "                        --worker NAME=HTTP_ADDR[,metrics=METRICS_ADDR] ...\n"
    "Addresses are loopback only (127.0.0.0/8 or [::1]); port 0 picks a free port.\n"
    "--cores 0 serves every request in parallel (no queueing); the default 1 queues them FIFO.\n";

// "127.0.0.1:0" or "[::1]:8080"; loopback only.
std::optional<tcp::endpoint> parse_loopback(std::string_view text, std::string& error) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    error = "address '" + std::string(text) + "' has no port (expected HOST:PORT)";
    return std::nullopt;
  }
  auto host = text.substr(0, colon);
  auto port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  auto [ptr, perr] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (perr != std::errc() || ptr != port_text.data() + port_text.size() || port > 65535 ||
      port_text.empty()) {
    error = "address '" + std::string(text) + "' has a bad port";
    return std::nullopt;
  }
  error_code ec;
  auto addr = asio::ip::make_address(std::string(host), ec);
  if (ec) {
    error = "address '" + std::string(text) + "' is not an IP address";
    return std::nullopt;
  }
  if (!addr.is_loopback()) {
    error = "address '" + std::string(text) +
            "' is not loopback: the simulator only listens on 127.0.0.0/8 or [::1]";
    return std::nullopt;
  }
  return tcp::endpoint(addr, static_cast<unsigned short>(port));
}

bool valid_worker_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name == "control") return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::optional<double> parse_double(std::string_view text) {
  double v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(v)) {
    return std::nullopt;
  }
  return v;
}

std::optional<options> parse_args(int argc, char** argv, std::string& error) {
  options opt;
  std::set<std::string> names;
  auto loopback = asio::ip::make_address_v4("127.0.0.1");
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> std::optional<std::string_view> {
      if (i + 1 >= argc) {
        error = std::string(arg) + " needs a value";
        return std::nullopt;
      }
      return std::string_view(argv[++i]);
    };
    if (arg == "--help" || arg == "-h") {
      error = "";
      return std::nullopt;
    } else if (arg == "--server-name") {
      auto v = value();
      if (!v) return std::nullopt;
      opt.server_name = *v;
    } else if (arg == "--cpu-per-request") {
      auto v = value();
      if (!v) return std::nullopt;
      auto d = parse_double(*v);
      if (!d || *d < 0 || *d > 60) {
        error = "--cpu-per-request must be a number of seconds in [0, 60], got '" +
                std::string(*v) + "'";
        return std::nullopt;
      }
      opt.cpu_per_request = *d;
    } else if (arg == "--cores") {
      auto v = value();
      if (!v) return std::nullopt;
      unsigned n = 0;
      auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
      if (ec != std::errc() || ptr != v->data() + v->size() || n > 256) {
        error = "--cores must be an integer in [0, 256], got '" + std::string(*v) + "'";
        return std::nullopt;
      }
      opt.cores = n;
    } else if (arg == "--ready-file") {
      auto v = value();
      if (!v) return std::nullopt;
      opt.ready_file = *v;
    } else if (arg == "--control") {
      auto v = value();
      if (!v) return std::nullopt;
      auto ep = parse_loopback(*v, error);
      if (!ep) return std::nullopt;
      opt.control = *ep;
    } else if (arg == "--worker") {
      auto v = value();
      if (!v) return std::nullopt;
      auto eq = v->find('=');
      if (eq == std::string_view::npos) {
        error =
            "--worker expects NAME=HTTP_ADDR[,metrics=METRICS_ADDR], got '" + std::string(*v) + "'";
        return std::nullopt;
      }
      worker_spec w;
      w.name = v->substr(0, eq);
      if (!valid_worker_name(w.name)) {
        error = "worker name '" + w.name + "' must be 1-64 of [A-Za-z0-9_.-] and not 'control'";
        return std::nullopt;
      }
      if (!names.insert(w.name).second) {
        error = "worker name '" + w.name + "' given twice";
        return std::nullopt;
      }
      auto rest = v->substr(eq + 1);
      auto comma = rest.find(',');
      auto http_ep = parse_loopback(rest.substr(0, comma), error);
      if (!http_ep) return std::nullopt;
      w.http = *http_ep;
      w.metrics = tcp::endpoint(loopback, 0);
      if (comma != std::string_view::npos) {
        auto extra = rest.substr(comma + 1);
        if (!extra.starts_with("metrics=")) {
          error = "--worker " + w.name + ": unknown option '" + std::string(extra) +
                  "' (expected metrics=ADDR)";
          return std::nullopt;
        }
        auto m = parse_loopback(extra.substr(8), error);
        if (!m) return std::nullopt;
        w.metrics = *m;
      }
      opt.workers.push_back(std::move(w));
    } else {
      error = "unknown argument '" + std::string(arg) + "'";
      return std::nullopt;
    }
  }
  if (opt.workers.empty()) {
    error = "at least one --worker is required";
    return std::nullopt;
  }
  return opt;
}

// ---------------------------------------------------------------------------------------------
// Helpers

// JSON string escaping. Bytes >= 0x80 are written as \u00XX so that the output is valid JSON
// whatever bytes the raw request target held.
std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c < 0x20 || c >= 0x80) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
  return out;
}

std::string json_number(double v) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

std::string_view sv(beast::string_view s) {
  return {s.data(), s.size()};
}

// The filler of a `huge` body: comment lines, 64 bytes each, 64 KiB in all. 50 MiB is 800 of
// these, written one after the other so the body is never held whole.
const std::string& huge_chunk() {
  static const std::string chunk = [] {
    std::string line = "# spoa-sim-workers huge mode filler line ";
    line.append(63 - line.size(), 'x');
    line.push_back('\n');
    std::string c;
    c.reserve(64 * 1024);
    while (c.size() < 64 * 1024)
      c += line;
    return c;
  }();
  return chunk;
}

// A body that is not the Prometheus text format: binary bytes and broken lines.
std::string garbage_body() {
  std::string body = "\x89PNG\r\n\x1a\n";
  body.push_back('\0');
  body += "garbage {{{{ not prometheus\n# TYPE process_cpu_seconds_total bogus\n";
  body += "process_cpu_seconds_total{le=\"unterminated 12\n";
  body += "synapse_http_server_in_flight_requests_count{method=GET} NaNaN 1 2 3\n";
  for (int i = 0; i < 256; ++i)
    body.push_back(static_cast<char>((i * 37) & 0xff));
  return body;
}

// ---------------------------------------------------------------------------------------------
// Runtime

struct connection {
  explicit connection(tcp::socket s) : socket(std::move(s)), timer(socket.get_executor()) {}
  tcp::socket socket;
  asio::steady_timer timer;
  bool dropped = false;  // closed on purpose (down, shutdown): do not touch the socket again
  bool held = false;     // a metrics request parked by `hung`
};

struct worker_runtime {
  worker_runtime(model_params p, double now, double wall) : model(std::move(p), now, wall) {}
  worker_model model;
  tcp::endpoint http_ep;
  tcp::endpoint metrics_ep;
  std::shared_ptr<tcp::acceptor> http_acc;
  std::shared_ptr<tcp::acceptor> metrics_acc;
  std::set<std::shared_ptr<connection>> conns;
  // `frozen`: orthogonal to the model's mode (a stopped process keeps whatever state it had).
  // Every request read while frozen, and every response due while frozen, waits on `thaw`,
  // which never expires by itself: thawing (or shutdown, or `down`) cancels it to wake them.
  bool frozen = false;
  std::shared_ptr<asio::steady_timer> thaw;
};

enum class listener_kind { http, metrics, control };

class simulator {
 public:
  simulator(asio::io_context& io, options opt)
      : io_(io), opt_(std::move(opt)), origin_(std::chrono::steady_clock::now()) {}

  // Binds every listener; on failure prints why and returns false.
  bool start() {
    double wall =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    for (const auto& spec : opt_.workers) {
      model_params p;
      p.name = spec.name;
      p.server_name = opt_.server_name;
      p.cpu_per_request = opt_.cpu_per_request;
      p.cores = opt_.cores;
      auto w = std::make_unique<worker_runtime>(std::move(p), now(), wall);
      error_code ec;
      w->http_acc = bind(spec.http, ec);
      if (ec) return bind_failed(spec.name + " http", spec.http, ec);
      w->http_ep = w->http_acc->local_endpoint();
      w->metrics_acc = bind(spec.metrics, ec);
      if (ec) return bind_failed(spec.name + " metrics", spec.metrics, ec);
      w->metrics_ep = w->metrics_acc->local_endpoint();
      workers_.push_back(std::move(w));
    }
    error_code ec;
    control_acc_ = bind(opt_.control, ec);
    if (ec) return bind_failed("control", opt_.control, ec);
    for (auto& w : workers_)
      spawn_accept_loops(*w);
    asio::co_spawn(io_, accept_loop(nullptr, control_acc_, listener_kind::control), asio::detached);
    return true;
  }

  std::string ready_text() const {
    std::string text;
    for (const auto& w : workers_) {
      text += w->model.params().name + " " + std::to_string(w->http_ep.port()) + " " +
              std::to_string(w->metrics_ep.port()) + "\n";
    }
    text += "control " + std::to_string(control_acc_->local_endpoint().port()) + "\n";
    return text;
  }

  // Closes every listener and connection; io_context::run() then returns once all coroutines
  // have seen their operations aborted.
  void shutdown() {
    stopping_ = true;
    error_code ec;
    if (control_acc_) control_acc_->close(ec);
    for (auto& w : workers_) {
      close_listeners(*w);
      drop_connections(w->conns);
      wake_parked(*w);
    }
    drop_connections(control_conns_);
  }

 private:
  double now() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - origin_).count();
  }
  std::chrono::steady_clock::time_point at(double t) const {
    return origin_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                         std::chrono::duration<double>(t));
  }

  bool bind_failed(const std::string& what, const tcp::endpoint& ep, const error_code& ec) {
    std::cerr << "spoa-sim-workers: cannot listen for " << what << " on " << ep << ": "
              << ec.message() << "\n";
    return false;
  }

  std::shared_ptr<tcp::acceptor> bind(const tcp::endpoint& ep, error_code& ec) {
    auto acc = std::make_shared<tcp::acceptor>(io_);
    acc->open(ep.protocol(), ec);
    if (!ec) acc->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acc->bind(ep, ec);
    if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      error_code ignored;
      acc->close(ignored);
      return nullptr;
    }
    return acc;
  }

  void spawn_accept_loops(worker_runtime& w) {
    asio::co_spawn(io_, accept_loop(&w, w.http_acc, listener_kind::http), asio::detached);
    asio::co_spawn(io_, accept_loop(&w, w.metrics_acc, listener_kind::metrics), asio::detached);
  }

  void close_listeners(worker_runtime& w) {
    error_code ec;
    if (w.http_acc) w.http_acc->close(ec);
    if (w.metrics_acc) w.metrics_acc->close(ec);
    w.http_acc.reset();
    w.metrics_acc.reset();
  }

  // Completion handlers never run inline from close()/cancel(), so the set is not modified while
  // it is walked; a copy keeps that true even so.
  static void drop_connections(const std::set<std::shared_ptr<connection>>& conns) {
    auto copy = conns;
    for (const auto& c : copy) {
      c->dropped = true;
      error_code ec;
      c->socket.close(ec);
      c->timer.cancel();
    }
  }

  // Wakes every coroutine parked on the worker's thaw timer; they re-check `frozen` (and their
  // connection) and, still frozen, park on the fresh timer.
  void wake_parked(worker_runtime& w) {
    if (!w.thaw) return;
    w.thaw->cancel();
    w.thaw.reset();
    if (w.frozen && !stopping_) {
      w.thaw = std::make_shared<asio::steady_timer>(io_);
      w.thaw->expires_at(std::chrono::steady_clock::time_point::max());
    }
  }

  void set_frozen(worker_runtime& w, bool frozen) {
    if (frozen == w.frozen) return;
    w.frozen = frozen;
    if (frozen) {
      w.thaw = std::make_shared<asio::steady_timer>(io_);
      w.thaw->expires_at(std::chrono::steady_clock::time_point::max());
    } else {
      wake_parked(w);
    }
  }

  // While the worker is frozen, waits (without reading or writing) until it thaws; false when
  // the connection was dropped or the simulator is stopping meanwhile.
  awaitable<bool> wait_thawed(worker_runtime& w, connection& c) {
    while (w.frozen && !c.dropped && !stopping_) {
      auto thaw = w.thaw;  // keeps the timer alive while waited on
      if (!thaw) break;
      error_code ec;
      co_await thaw->async_wait(ec_token(ec));
    }
    co_return !c.dropped && !stopping_;
  }

  // Applies a mode; returns an empty string or an error message (the worker then keeps its mode).
  std::string apply_mode(worker_runtime& w, worker_mode mode, double factor) {
    auto old = w.model.stats().mode;
    if (mode == worker_mode::down && old != worker_mode::down) {
      close_listeners(w);
      w.model.drop_backlog(now());
      drop_connections(w.conns);
      wake_parked(w);  // parked requests of dropped connections end
    } else if (mode != worker_mode::down && old == worker_mode::down) {
      // Re-bind the SAME ports (SO_REUSEADDR lets this work with connections in TIME_WAIT).
      error_code ec;
      auto http_acc = bind(w.http_ep, ec);
      if (ec) return "cannot re-bind " + std::to_string(w.http_ep.port()) + ": " + ec.message();
      auto metrics_acc = bind(w.metrics_ep, ec);
      if (ec) {
        error_code ignored;
        http_acc->close(ignored);
        return "cannot re-bind " + std::to_string(w.metrics_ep.port()) + ": " + ec.message();
      }
      w.http_acc = std::move(http_acc);
      w.metrics_acc = std::move(metrics_acc);
      spawn_accept_loops(w);
    }
    w.model.set_mode(mode, factor);
    if (mode != worker_mode::hung) {
      // Wake parked metrics requests so they re-check the mode.
      for (const auto& c : w.conns) {
        if (c->held) {
          error_code ec;
          c->socket.cancel(ec);
        }
      }
    }
    return {};
  }

  std::size_t open_connections() const {
    std::size_t n = control_conns_.size();
    for (const auto& w : workers_)
      n += w->conns.size();
    return n;
  }

  awaitable<void> accept_loop(worker_runtime* w, std::shared_ptr<tcp::acceptor> acc,
                              listener_kind kind) {
    asio::steady_timer backoff(io_);
    for (;;) {
      error_code ec;
      tcp::socket socket = co_await acc->async_accept(ec_token(ec));
      if (stopping_ || !acc->is_open()) co_return;
      if (ec) {
        // e.g. EMFILE: back off briefly instead of spinning.
        backoff.expires_after(std::chrono::milliseconds(50));
        co_await backoff.async_wait(ec_token(ec));
        continue;
      }
      if (open_connections() >= max_connections) {
        socket.close(ec);
        continue;
      }
      auto c = std::make_shared<connection>(std::move(socket));
      switch (kind) {
        case listener_kind::http:
          asio::co_spawn(io_, serve_http(*w, c), asio::detached);
          break;
        case listener_kind::metrics:
          asio::co_spawn(io_, serve_metrics(*w, c), asio::detached);
          break;
        case listener_kind::control:
          asio::co_spawn(io_, serve_control(c), asio::detached);
          break;
      }
    }
  }

  // Keeps a connection in its owner's set for the coroutine's lifetime.
  struct registration {
    registration(std::set<std::shared_ptr<connection>>& set, std::shared_ptr<connection> c)
        : set_(set), c_(std::move(c)) {
      set_.insert(c_);
    }
    ~registration() { set_.erase(c_); }
    registration(const registration&) = delete;
    registration& operator=(const registration&) = delete;
    std::set<std::shared_ptr<connection>>& set_;
    std::shared_ptr<connection> c_;
  };

  // A request admitted to the model: abandoned unless completed.
  struct in_flight {
    in_flight(simulator& s, worker_model& m, ticket t) : s_(s), m_(m), t_(std::move(t)) {}
    ~in_flight() {
      if (!done_) m_.abandon(t_, s_.now());
    }
    in_flight(const in_flight&) = delete;
    in_flight& operator=(const in_flight&) = delete;
    void complete(int code) {
      m_.complete(t_, code, s_.now());
      done_ = true;
    }
    simulator& s_;
    worker_model& m_;
    ticket t_;
    bool done_ = false;
  };

  static bool is_http_parse_error(const error_code& ec) {
    return ec.category() == make_error_code(http::error::bad_target).category() &&
           ec != http::error::end_of_stream;
  }

  // Reads one request into `parser` with bounded header and body; false when the connection is
  // done (closed, dropped, or a malformed request, which is answered 400 first).
  awaitable<bool> read_request(connection& c, beast::flat_buffer& buffer,
                               http::request_parser<http::string_body>& parser,
                               std::size_t body_limit) {
    parser.header_limit(header_limit);
    parser.body_limit(body_limit);
    error_code ec;
    co_await http::async_read(c.socket, buffer, parser, ec_token(ec));
    if (!ec) co_return true;
    if (!c.dropped && is_http_parse_error(ec)) {
      co_await write_simple(c, 11, http::status::bad_request, "text/plain", "Bad Request");
    }
    co_return false;
  }

  awaitable<void> write_simple(connection& c, unsigned version, http::status status,
                               std::string_view content_type, std::string body) {
    http::response<http::string_body> res{status, version};
    res.set(http::field::content_type,
            beast::string_view(content_type.data(), content_type.size()));
    res.keep_alive(false);
    res.body() = std::move(body);
    res.prepare_payload();
    error_code ec;
    co_await http::async_write(c.socket, res, ec_token(ec));
    c.socket.shutdown(tcp::socket::shutdown_send, ec);
  }

  awaitable<void> serve_http(worker_runtime& w, std::shared_ptr<connection> c) {
    registration reg(w.conns, c);
    beast::flat_buffer buffer(header_limit + http_body_limit);
    for (;;) {
      http::request_parser<http::string_body> parser;
      error_code ec;
      if (!co_await read_request(*c, buffer, parser, http_body_limit)) co_return;
      if (!co_await wait_thawed(w, *c)) co_return;  // a stopped process reads nothing
      const auto& req = parser.get();
      std::string_view target = sv(req.target());
      http::response<http::string_body> res{http::status::ok, req.version()};
      res.keep_alive(req.keep_alive());
      if (target == "/health") {
        res.set(http::field::content_type, "text/plain");
        res.body() = "OK";
      } else {
        in_flight request(*this, w.model, w.model.admit(sv(req.method_string()), target, now()));
        c->timer.expires_at(at(request.t_.finish));
        co_await c->timer.async_wait(ec_token(ec));
        if (ec || c->dropped || stopping_) co_return;
        // Frozen while the request was being served: it finishes when the process resumes.
        if (!co_await wait_thawed(w, *c)) co_return;
        request.complete(200);
        res.set(http::field::content_type, "application/json");
        res.set("X-Synapse-Worker", w.model.params().name);
        res.body() = "{\"worker\":" + json_string(w.model.params().name) +
                     ",\"method\":" + json_string(sv(req.method_string())) +
                     ",\"path\":" + json_string(target) + "}";
      }
      res.prepare_payload();
      if (req.method() == http::verb::head) res.body().clear();  // Content-Length stays
      co_await http::async_write(c->socket, res, ec_token(ec));
      if (ec || c->dropped) co_return;
      if (!res.keep_alive()) {
        c->socket.shutdown(tcp::socket::shutdown_send, ec);
        co_return;
      }
    }
  }

  awaitable<void> serve_metrics(worker_runtime& w, std::shared_ptr<connection> c) {
    registration reg(w.conns, c);
    beast::flat_buffer buffer(header_limit + small_body_limit);
    for (;;) {
      http::request_parser<http::string_body> parser;
      error_code ec;
      if (!co_await read_request(*c, buffer, parser, small_body_limit)) co_return;
      if (!co_await wait_thawed(w, *c)) co_return;
      const auto& req = parser.get();

      // `hung`: the request was read; park until the peer closes or the mode changes.
      while (w.model.stats().mode == worker_mode::hung) {
        c->held = true;
        co_await c->socket.async_wait(tcp::socket::wait_read, ec_token(ec));
        c->held = false;
        if (c->dropped || stopping_) co_return;
        if (ec == asio::error::operation_aborted) continue;  // woken by a mode change
        if (ec) co_return;
        // Readable: more bytes (discarded, bounded) or end of stream.
        char scratch[4096];
        co_await c->socket.async_read_some(asio::buffer(scratch), ec_token(ec));
        if (ec) co_return;
      }

      bool keep_alive = req.keep_alive();
      if (req.method() != http::verb::get && req.method() != http::verb::head) {
        co_await write_simple(*c, req.version(), http::status::method_not_allowed, "text/plain",
                              "Method Not Allowed");
        co_return;
      }
      auto mode = w.model.stats().mode;
      if (mode == worker_mode::huge) {
        std::string head = "HTTP/1.1 200 OK\r\nContent-Type: " + std::string(metrics_content_type) +
                           "\r\nContent-Length: " + std::to_string(huge_body_bytes) + "\r\n" +
                           (keep_alive ? "" : "Connection: close\r\n") + "\r\n";
        co_await asio::async_write(c->socket, asio::buffer(head), ec_token(ec));
        if (req.method() != http::verb::head) {
          const auto& chunk = huge_chunk();
          for (std::uint64_t sent = 0; sent < huge_body_bytes && !ec; sent += chunk.size()) {
            co_await asio::async_write(c->socket, asio::buffer(chunk), ec_token(ec));
          }
        }
      } else {
        http::response<http::string_body> res{http::status::ok, req.version()};
        res.set(http::field::server, "WSGIServer/0.2 CPython/3.11.2");
        res.set(http::field::content_type,
                beast::string_view(metrics_content_type.data(), metrics_content_type.size()));
        res.keep_alive(keep_alive);
        if (mode == worker_mode::garbage) {
          res.body() = garbage_body();
        } else {
          int fds = 10 + static_cast<int>(w.conns.size()) + (w.http_acc ? 1 : 0) +
                    (w.metrics_acc ? 1 : 0);
          res.body() = w.model.scrape(now(), fds);
        }
        res.prepare_payload();
        if (req.method() == http::verb::head) res.body().clear();
        co_await http::async_write(c->socket, res, ec_token(ec));
      }
      if (ec || c->dropped) co_return;
      if (!keep_alive) {
        c->socket.shutdown(tcp::socket::shutdown_send, ec);
        co_return;
      }
    }
  }

  worker_runtime* find_worker(std::string_view name) {
    for (auto& w : workers_) {
      if (w->model.params().name == name) return w.get();
    }
    return nullptr;
  }

  std::string stats_json() const {
    std::string out = "{";
    bool first = true;
    for (const auto& w : workers_) {
      auto s = w->model.stats();
      if (!first) out += ",";
      first = false;
      out += json_string(w->model.params().name) + ":{\"requests\":" + std::to_string(s.requests) +
             ",\"in_flight\":" + std::to_string(s.in_flight) +
             ",\"mode\":" + json_string(mode_name(s.mode)) +
             ",\"frozen\":" + (w->frozen ? "true" : "false") +
             ",\"factor\":" + json_number(s.factor) +
             ",\"http_port\":" + std::to_string(w->http_ep.port()) +
             ",\"metrics_port\":" + std::to_string(w->metrics_ep.port()) + "}";
    }
    return out + "}";
  }

  // Returns {status, body} for one control request.
  std::pair<http::status, std::string> control(http::verb method, std::string_view target) {
    auto q = target.find('?');
    std::string_view path = target.substr(0, q);
    std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);
    auto error = [](http::status st, std::string_view msg) {
      return std::pair{st, "{\"error\":" + json_string(msg) + "}"};
    };
    if (path == "/stats") {
      if (method != http::verb::get) return error(http::status::method_not_allowed, "use GET");
      return {http::status::ok, stats_json()};
    }
    constexpr std::string_view prefix = "/worker/";
    if (!path.starts_with(prefix)) return error(http::status::not_found, "no such endpoint");
    auto rest = path.substr(prefix.size());
    auto slash = rest.find('/');
    std::string_view name = rest.substr(0, slash);
    std::string_view tail = slash == std::string_view::npos ? "" : rest.substr(slash);
    if (!tail.starts_with("/mode/")) return error(http::status::not_found, "no such endpoint");
    if (method != http::verb::post) return error(http::status::method_not_allowed, "use POST");
    auto* w = find_worker(name);
    if (w == nullptr) return error(http::status::not_found, "unknown worker");
    if (tail.substr(6) == "frozen") {
      set_frozen(*w, true);
      return {http::status::ok,
              "{\"worker\":" + json_string(name) + ",\"mode\":\"frozen\",\"frozen\":true}"};
    }
    auto mode = parse_mode(tail.substr(6));
    if (!mode) {
      return error(http::status::bad_request,
                   "bad mode (expected normal, slow, hung, down, garbage, huge or frozen)");
    }
    set_frozen(*w, false);  // any other mode thaws first: parked requests are then served
    double factor = 3;
    for (std::size_t pos = 0; pos <= query.size();) {
      auto amp = query.find('&', pos);
      auto param = query.substr(pos, amp == std::string_view::npos ? amp : amp - pos);
      if (param.starts_with("factor=")) {
        auto f = parse_double(param.substr(7));
        if (!f || *f <= 0 || *f > 1000) {
          return error(http::status::bad_request, "factor must be a number in (0, 1000]");
        }
        factor = *f;
      }
      if (amp == std::string_view::npos) break;
      pos = amp + 1;
    }
    auto failure = apply_mode(*w, *mode, factor);
    if (!failure.empty()) return error(http::status::internal_server_error, failure);
    auto s = w->model.stats();
    return {http::status::ok, "{\"worker\":" + json_string(name) +
                                  ",\"mode\":" + json_string(mode_name(s.mode)) +
                                  ",\"factor\":" + json_number(s.factor) + "}"};
  }

  awaitable<void> serve_control(std::shared_ptr<connection> c) {
    registration reg(control_conns_, c);
    beast::flat_buffer buffer(header_limit + small_body_limit);
    for (;;) {
      http::request_parser<http::string_body> parser;
      error_code ec;
      if (!co_await read_request(*c, buffer, parser, small_body_limit)) co_return;
      const auto& req = parser.get();
      auto [status, body] = control(req.method(), sv(req.target()));
      http::response<http::string_body> res{status, req.version()};
      res.set(http::field::content_type, "application/json");
      res.keep_alive(req.keep_alive());
      res.body() = std::move(body) + "\n";
      res.prepare_payload();
      co_await http::async_write(c->socket, res, ec_token(ec));
      if (ec || c->dropped) co_return;
      if (!res.keep_alive()) {
        c->socket.shutdown(tcp::socket::shutdown_send, ec);
        co_return;
      }
    }
  }

  asio::io_context& io_;
  options opt_;
  std::chrono::steady_clock::time_point origin_;
  std::vector<std::unique_ptr<worker_runtime>> workers_;
  std::shared_ptr<tcp::acceptor> control_acc_;
  std::set<std::shared_ptr<connection>> control_conns_;
  bool stopping_ = false;
};

// Writes `text` to `path` atomically: a temp file in the same directory, then rename().
bool write_ready_file(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      std::cerr << "spoa-sim-workers: cannot write " << tmp << "\n";
      return false;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::perror(("spoa-sim-workers: rename " + tmp + " -> " + path).c_str());
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

}  // namespace
}  // namespace spoa::sim

int main(int argc, char** argv) {
  using namespace spoa::sim;
  std::string error;
  auto opt = parse_args(argc, argv, error);
  if (!opt) {
    if (error.empty()) {
      std::cout << usage;
      return 0;
    }
    std::cerr << "spoa-sim-workers: " << error << "\n" << usage;
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  std::string ready_file = opt->ready_file;
  if (!ready_file.empty()) std::remove(ready_file.c_str());  // never let a stale file pass

  asio::io_context io(1);
  simulator sim(io, std::move(*opt));
  if (!sim.start()) return 1;

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const error_code& ec, int) {
    if (!ec) sim.shutdown();
  });

  std::string ready = sim.ready_text();
  if (!ready_file.empty() && !write_ready_file(ready_file, ready)) {
    sim.shutdown();
    signals.cancel();
    io.run();
    return 1;
  }
  std::cout << ready << std::flush;

  io.run();
  return 0;
}
