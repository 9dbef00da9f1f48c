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

// Shared by the scraper and every task: what the coroutines read besides their own target.
struct scraper::context {
  config::load opts;
  std::shared_ptr<load::model> model;
  std::function<void()> on_result;
  bool stopped = false;
  int running = 0;  // scrape coroutines spawned whose frames still exist
};

// One scrape target and the I/O objects only its coroutine uses. Kept alive by that coroutine
// (and by the scraper, to cancel it), so nothing it touches can die under it.
struct scraper::task {
  std::shared_ptr<context> ctx;
  scrape_target target;
  tcp::resolver resolver;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  asio::steady_timer timer;
  bool connected = false;
  std::mt19937_64 rng;

  task(asio::io_context& io, std::shared_ptr<context> c, scrape_target t)
      : ctx(std::move(c)),
        target(std::move(t)),
        resolver(io),
        stream(io),
        timer(io),
        rng(std::hash<std::string>{}(target.name)) {}

  // Every pending operation of this task completes with operation_aborted.
  void cancel() {
    resolver.cancel();
    timer.cancel();
    beast::error_code ignored;
    stream.socket().close(ignored);
    connected = false;
  }
};

// Counts one scrape coroutine from its spawn until its frame is destroyed. Move-only: the count
// moves with the token into the coroutine frame.
class scraper::liveness {
 public:
  explicit liveness(std::shared_ptr<context> c) : ctx_(std::move(c)) { ++ctx_->running; }
  liveness(liveness&& o) noexcept : ctx_(std::move(o.ctx_)) {}
  liveness& operator=(liveness&&) = delete;
  ~liveness() {
    if (ctx_) --ctx_->running;
  }

 private:
  std::shared_ptr<context> ctx_;
};

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
  if (!cfg.load.haproxy_metrics.empty()) {
    auto url = config::parse_http_url(cfg.load.haproxy_metrics);
    if (!url)
      throw std::runtime_error("load.haproxy_metrics: not an http:// URL: '" +
                               cfg.load.haproxy_metrics + "'");
    out.push_back({static_cast<std::size_t>(-1), "haproxy", url->host, url->port,
                   url->target.empty() ? "/" : url->target, true});
  }
  return out;
}

std::vector<load::haproxy_server_ref> haproxy_refs(const config::agent_config& cfg) {
  std::vector<load::haproxy_server_ref> refs(cfg.workers.size());
  for (std::size_t i = 0; i < cfg.workers.size(); ++i) {
    const auto& w = cfg.workers[i];
    for (const auto& p : cfg.pools)
      if (p.name == w.pool && !w.pool.empty())
        refs[i] = {p.backend, w.server.empty() ? w.name : w.server};
  }
  return refs;
}

scraper::scraper(asio::io_context& io, std::vector<scrape_target> targets, config::load opts,
                 std::shared_ptr<load::model> model, std::function<void()> on_result)
    : io_(io),
      ctx_(std::make_shared<context>(
          context{std::move(opts), std::move(model), std::move(on_result)})) {
  for (auto& t : targets)
    tasks_.push_back(std::make_shared<task>(io_, ctx_, std::move(t)));
}

scraper::~scraper() {
  stop();
}

bool scraper::idle() const noexcept {
  return ctx_->running == 0;
}

void scraper::start() {
  if (started_ || ctx_->stopped) return;
  started_ = true;
  for (const auto& t : tasks_)
    asio::co_spawn(io_, loop(t, liveness(ctx_)), asio::detached);
}

void scraper::stop() {
  ctx_->stopped = true;
  for (const auto& t : tasks_)
    t->cancel();
}

awaitable<void> scraper::loop(std::shared_ptr<task> t, [[maybe_unused]] liveness alive) {
  const context& ctx = *t->ctx;
  // Spread the first scrapes over one interval so workers are not all hit at once, then keep a
  // ±10% jitter so agents and workers do not fall into lockstep.
  const auto interval = std::chrono::duration<double, std::milli>(ctx.opts.scrape_interval).count();
  std::uniform_real_distribution<double> first(0.0, interval),
      jitter(0.9 * interval, 1.1 * interval);
  double wait_ms = first(t->rng);
  std::string body;
  std::string error;
  beast::error_code ec;
  while (!ctx.stopped) {
    t->timer.expires_after(std::chrono::microseconds(static_cast<std::int64_t>(wait_ms * 1000)));
    co_await t->timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (ctx.stopped) break;
    const auto started = std::chrono::steady_clock::now();
    body.clear();
    error.clear();
    const scrape_outcome outcome = co_await scrape_once(*t, &body, &error);
    if (ctx.stopped) break;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    using failure = load::model::failure;
    load::model& model = *ctx.model;
    if (t->target.haproxy) {
      if (outcome == scrape_outcome::ok)
        model.on_haproxy(body, now_ms());
      else
        model.on_haproxy_failure("HAProxy metrics: " + error, now_ms());
    } else if (outcome == scrape_outcome::ok) {
      auto r = load::extract(body);
      if (r.ok) {
        model.on_success(t->target.worker, r.value, now_ms(), seconds);
      } else {
        model.on_failure(t->target.worker, "bad metrics body: " + r.error, now_ms(), seconds,
                         failure::unusable);
      }
    } else {
      const failure kind = outcome == scrape_outcome::unreachable ? failure::unreachable
                           : outcome == scrape_outcome::timeout   ? failure::timeout
                                                                  : failure::unusable;
      model.on_failure(t->target.worker, error, now_ms(), seconds, kind);
    }
    if (ctx.on_result) ctx.on_result();
    wait_ms = jitter(t->rng);
  }
}

awaitable<scrape_outcome> scraper::scrape_once(task& t, std::string* body, std::string* error) {
  const config::load& opts = t.ctx->opts;
  beast::error_code ec;
  t.stream.expires_after(opts.scrape_timeout);
  const bool reused = t.connected;
  if (!t.connected) {
    auto results = co_await t.resolver.async_resolve(t.target.host, std::to_string(t.target.port),
                                                     asio::redirect_error(use_awaitable, ec));
    if (ec) {
      *error = "resolve " + t.target.host + ": " + ec.message();
      co_return scrape_outcome::unreachable;
    }
    if (t.ctx->stopped) co_return scrape_outcome::unreachable;  // the caller drops it
    co_await t.stream.async_connect(results, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      // A stopped process whose listen backlog is full drops SYNs: the connect times out.
      const bool timed_out = ec == beast::error::timeout;
      *error = timed_out ? "connect timed out" : "connect: " + ec.message();
      t.stream.socket().close(ec);
      co_return timed_out ? scrape_outcome::timeout : scrape_outcome::unreachable;
    }
    t.stream.socket().set_option(tcp::no_delay(true), ec);
    t.connected = true;
  }
  http::request<http::empty_body> req{http::verb::get, t.target.path, 11};
  req.set(http::field::host, t.target.host + ":" + std::to_string(t.target.port));
  req.set(http::field::user_agent, "synapse-spoa");
  req.set(http::field::accept, "text/plain; version=0.0.4");  // never OpenMetrics, never gzip
  req.keep_alive(true);
  co_await http::async_write(t.stream, req, asio::redirect_error(use_awaitable, ec));
  http::response_parser<http::string_body> parser;
  parser.body_limit(opts.max_body_bytes);
  parser.header_limit(64 * 1024);
  // Header first: Boost 1.74's parser checks body_limit only as bytes arrive, and string_body
  // reserves an announced Content-Length up front — a lying header would allocate it all.
  if (!ec) {
    co_await http::async_read_header(t.stream, t.buffer, parser,
                                     asio::redirect_error(use_awaitable, ec));
  }
  if (!ec && parser.content_length() && *parser.content_length() > opts.max_body_bytes) {
    ec = http::error::body_limit;
  }
  if (!ec && !parser.is_done()) {
    co_await http::async_read(t.stream, t.buffer, parser, asio::redirect_error(use_awaitable, ec));
  }
  auto drop = [&] {
    beast::error_code ignored;
    t.stream.socket().close(ignored);
    t.buffer.consume(t.buffer.size());
    t.connected = false;
  };
  if (ec) {
    // The connection went away (the worker closed or died) vs. an endpoint that answered, or
    // hung, without usable metrics: only the first says anything about the worker's health.
    const bool lost = ec == http::error::end_of_stream || ec == asio::error::eof ||
                      ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
                      ec == asio::error::connection_aborted;
    drop();
    // A keep-alive connection the worker closed while idle: try once on a fresh one.
    if (lost && reused && !t.ctx->stopped) co_return co_await scrape_once(t, body, error);
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
  auto model = std::make_shared<load::model>(cfg.load, std::move(names));
  auto targets = scrape_targets(cfg);
  std::vector<std::size_t> workers;
  model->set_haproxy_servers(haproxy_refs(cfg));
  for (const auto& t : targets)
    if (!t.haproxy) workers.push_back(t.worker);
  // Done when every worker has a rate (two good scrapes) or is down (enough failures).
  auto settled = [&] {
    for (const auto w : workers) {
      const auto& st = model->status(w);
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
  const auto view = model->publish(now_ms(), status_lines);
  return view;
}

}  // namespace spoa::agent
