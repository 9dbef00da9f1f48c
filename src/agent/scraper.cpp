#include "agent/scraper.hpp"
#include "agent/clock.hpp"

#include <algorithm>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <random>
#include <stdexcept>

#include "config/load.hpp"

namespace spoa::agent {
namespace beast = boost::beast;
namespace http = beast::http;

namespace {}  // namespace

struct scraper::state {
  scrape_target target;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  asio::steady_timer timer;
  bool connected = false;
  std::mt19937_64 rng;

  state(asio::io_context& io, scrape_target t)
      : target(std::move(t)), stream(io), timer(io), rng(std::hash<std::string>{}(target.name)) {}
};

load::options load_options_of(const config::load& l) {
  load::options o;
  o.ewma_alpha = l.ewma_alpha;
  o.hot_cpu = l.hot_cpu;
  o.cool_cpu = l.cool_cpu;
  o.hot_reactor_lag = l.hot_reactor_lag;
  o.cool_reactor_lag = l.cool_reactor_lag;
  o.down_after_failures = l.down_after_failures;
  o.stale_after_ms = static_cast<std::uint64_t>(l.stale_after.count());
  o.stall_down_after_ms = static_cast<std::uint64_t>(l.stall_down_after.count());
  o.blocked_reactor_seconds = static_cast<double>(l.reactor_stall_after.count()) / 1000.0;
  return o;
}

std::vector<scrape_target> scrape_targets(const config::agent_config& cfg) {
  std::vector<scrape_target> out;
  for (std::size_t i = 0; i < cfg.workers.size(); ++i) {
    const auto& w = cfg.workers[i];
    if (w.metrics.empty()) continue;
    auto url = config::parse_http_url(w.metrics);
    if (!url)
      throw std::runtime_error("workers." + w.name + ".metrics: not an http:// URL: '" + w.metrics +
                               "'");
    out.push_back({i, w.name, url->host, url->port, url->target.empty() ? "/" : url->target});
  }
  return out;
}

scraper::scraper(asio::io_context& io, std::vector<scrape_target> targets, config::load opts,
                 load::model& model, std::function<void()> on_result)
    : io_(io), opts_(std::move(opts)), model_(model), on_result_(std::move(on_result)) {
  for (auto& t : targets)
    states_.push_back(std::make_shared<state>(io_, std::move(t)));
}

scraper::~scraper() {
  stop();
}

void scraper::start() {
  for (const auto& st : states_)
    asio::co_spawn(io_, loop(st), asio::detached);
}

void scraper::stop() {
  stopped_ = true;
  for (const auto& st : states_) {
    st->timer.cancel();
    beast::error_code ec;
    st->stream.socket().close(ec);
  }
}

awaitable<void> scraper::loop(std::shared_ptr<state> st) {
  struct alive {
    int& n;
    explicit alive(int& count) : n(++count) {}
    ~alive() { --n; }
  } guard(running_);
  // Spread the first scrapes over one interval so workers are not all hit at once, then keep a
  // ±10% jitter so agents and workers do not fall into lockstep.
  const auto interval = std::chrono::duration<double, std::milli>(opts_.scrape_interval).count();
  std::uniform_real_distribution<double> first(0.0, interval),
      jitter(0.9 * interval, 1.1 * interval);
  double wait_ms = first(st->rng);
  std::string body;
  std::string error;
  beast::error_code ec;
  while (!stopped_) {
    st->timer.expires_after(std::chrono::microseconds(static_cast<std::int64_t>(wait_ms * 1000)));
    co_await st->timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (stopped_) break;
    const auto started = std::chrono::steady_clock::now();
    body.clear();
    error.clear();
    const scrape_outcome outcome = co_await scrape_once(*st, &body, &error);
    if (stopped_) break;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    using failure = load::model::failure;
    if (outcome == scrape_outcome::ok) {
      auto r = load::extract(body);
      if (r.ok) {
        model_.on_success(st->target.worker, r.value, now_ms(), seconds);
      } else {
        model_.on_failure(st->target.worker, "bad metrics body: " + r.error, now_ms(), seconds,
                          failure::unusable);
      }
    } else {
      const failure kind = outcome == scrape_outcome::unreachable ? failure::unreachable
                           : outcome == scrape_outcome::timeout   ? failure::timeout
                                                                  : failure::unusable;
      model_.on_failure(st->target.worker, error, now_ms(), seconds, kind);
    }
    if (on_result_) on_result_();
    wait_ms = jitter(st->rng);
  }
}

awaitable<scrape_outcome> scraper::scrape_once(state& st, std::string* body, std::string* error) {
  beast::error_code ec;
  st.stream.expires_after(opts_.scrape_timeout);
  const bool reused = st.connected;
  if (!st.connected) {
    asio::ip::tcp::resolver resolver(io_);
    auto results = co_await resolver.async_resolve(st.target.host, std::to_string(st.target.port),
                                                   asio::redirect_error(use_awaitable, ec));
    if (ec) {
      *error = "resolve " + st.target.host + ": " + ec.message();
      co_return scrape_outcome::unreachable;
    }
    co_await st.stream.async_connect(results, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      // A stopped process whose listen backlog is full drops SYNs: the connect times out.
      const bool timed_out = ec == beast::error::timeout;
      *error = timed_out ? "connect timed out" : "connect: " + ec.message();
      st.stream.socket().close(ec);
      co_return timed_out ? scrape_outcome::timeout : scrape_outcome::unreachable;
    }
    st.stream.socket().set_option(tcp::no_delay(true), ec);
    st.connected = true;
  }
  http::request<http::empty_body> req{http::verb::get, st.target.path, 11};
  req.set(http::field::host, st.target.host + ":" + std::to_string(st.target.port));
  req.set(http::field::user_agent, "synapse-spoa");
  req.set(http::field::accept, "text/plain; version=0.0.4");  // never OpenMetrics, never gzip
  req.keep_alive(true);
  co_await http::async_write(st.stream, req, asio::redirect_error(use_awaitable, ec));
  http::response_parser<http::string_body> parser;
  parser.body_limit(opts_.max_body_bytes);
  parser.header_limit(64 * 1024);
  // Header first: Boost 1.74's parser checks body_limit only as bytes arrive, and string_body
  // reserves an announced Content-Length up front — a lying header would allocate it all.
  if (!ec) {
    co_await http::async_read_header(st.stream, st.buffer, parser,
                                     asio::redirect_error(use_awaitable, ec));
  }
  if (!ec && parser.content_length() && *parser.content_length() > opts_.max_body_bytes) {
    ec = http::error::body_limit;
  }
  if (!ec && !parser.is_done()) {
    co_await http::async_read(st.stream, st.buffer, parser,
                              asio::redirect_error(use_awaitable, ec));
  }
  auto drop = [&] {
    beast::error_code ignored;
    st.stream.socket().close(ignored);
    st.buffer.consume(st.buffer.size());
    st.connected = false;
  };
  if (ec) {
    // The connection went away (the worker closed or died) vs. an endpoint that answered, or
    // hung, without usable metrics: only the first says anything about the worker's health.
    const bool lost = ec == http::error::end_of_stream || ec == asio::error::eof ||
                      ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
                      ec == asio::error::connection_aborted;
    drop();
    // A keep-alive connection the worker closed while idle: try once on a fresh one.
    if (lost && reused) co_return co_await scrape_once(st, body, error);
    *error = ec == beast::error::timeout     ? "timed out"
             : ec == http::error::body_limit ? "body larger than load.max_body_bytes"
                                             : "read: " + ec.message();
    if (lost) co_return scrape_outcome::unreachable;
    co_return ec == beast::error::timeout ? scrape_outcome::timeout : scrape_outcome::unusable;
  }
  auto res = parser.release();
  if (!res.keep_alive()) drop();
  if (res.result() != http::status::ok) {
    *error = "HTTP " + std::to_string(res.result_int());
    co_return scrape_outcome::unusable;
  }
  *body = std::move(res.body());
  co_return scrape_outcome::ok;
}

}  // namespace spoa::agent

namespace spoa::agent {

std::shared_ptr<const routing::load_view> scrape_live(const config::agent_config& cfg,
                                                      std::vector<std::string>* status_lines) {
  asio::io_context io(1);
  std::vector<std::string> names;
  for (const auto& w : cfg.workers)
    names.push_back(w.name);
  load::model model(load_options_of(cfg.load), std::move(names));
  auto targets = scrape_targets(cfg);
  std::vector<std::size_t> workers;
  for (const auto& t : targets)
    workers.push_back(t.worker);
  // Done when every worker has a rate (two good scrapes) or is down (enough failures).
  auto settled = [&] {
    for (const auto w : workers) {
      const auto& st = model.status(w);
      if (st.scrapes_ok < 2 && st.consecutive_failures < cfg.load.down_after_failures) return false;
    }
    return true;
  };
  scraper s(io, std::move(targets), cfg.load, model, [&] {
    if (settled()) io.stop();
  });
  asio::steady_timer deadline(io);
  const auto rounds = std::max(2, cfg.load.down_after_failures) + 1;
  deadline.expires_after(cfg.load.scrape_interval * rounds + cfg.load.scrape_timeout);
  deadline.async_wait([&](const boost::system::error_code& ec) {
    if (!ec) io.stop();
  });
  s.start();
  io.run();
  s.stop();
  const auto view = model.publish(now_ms(), status_lines);
  return view;
}

}  // namespace spoa::agent
