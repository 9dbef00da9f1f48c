#pragma once
// Scrapes every worker's Prometheus endpoint on the agent's own event loop (Beast HTTP/1.1,
// keep-alive), with a per-scrape timeout, a jittered interval and a body-size cap, and feeds the
// load model. A scrape never blocks SPOP handling: it is just another coroutine on the loop.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/asio.hpp"
#include "config/config.hpp"
#include "load/model.hpp"

namespace spoa::agent {

struct scrape_target {
  std::size_t worker;  // config worker index (= load model index)
  std::string name;
  std::string host;
  std::uint16_t port;
  std::string path;
  bool haproxy = false;  // HAProxy's exporter (load.haproxy_metrics), not a worker
};

// How one scrape ended: `unreachable` (no connection) counts toward down; `timeout` (no answer
// within load.scrape_timeout, at connect or after the request) makes the worker stalled and then
// down (load/model.hpp); `unusable` (HTTP error, garbage, oversized body) only makes the worker's
// load unknown.
enum class scrape_outcome { ok, unreachable, unusable, timeout };

// Lifetimes. Each target is a task (scraper.cpp) that owns everything its coroutine touches:
// socket, timer and resolver, and through a shared `context` a copy of the options, a shared
// reference to the load model and the callback. The scraper object is only a handle:
//
//   scraper --owns--> task (shared_ptr) <--owns-- the task's coroutine frame
//                       \--> context (shared_ptr): options, model (shared_ptr), on_result
//
// - A task is counted live when its coroutine is spawned (not when it first runs) and until its
//   frame is destroyed, whether it ran to the end or was dropped with the io_context.
// - stop() marks the context stopped and cancels every task: its resolver, timer and socket, the
//   only I/O objects it has (Boost 1.74's Asio predates cancellation slots, 1.77, so cancelling
//   the owned objects is the cancellation). A cancelled coroutine checks the flag after every
//   co_await and returns without touching the model or calling on_result.
// - So the scraper may be destroyed right after stop() (the destructor calls it), and the model
//   may be released by its other owners at any time: the coroutines keep their own reference
//   until they unwind. on_result is never called after stop(); what it captures only has to live
//   until then. The io_context must outlive the scraper (the tasks' I/O objects belong to it).
class scraper {
 public:
  // `on_result` runs on the loop after every scrape (success or failure), until stop().
  scraper(asio::io_context& io, std::vector<scrape_target> targets, config::load opts,
          std::shared_ptr<load::model> model, std::function<void()> on_result);
  ~scraper();
  scraper(const scraper&) = delete;
  scraper& operator=(const scraper&) = delete;

  void start();
  void stop();
  // True when no scrape coroutine is alive: none started yet, or all unwound after stop().
  bool idle() const noexcept;

 private:
  struct context;
  struct task;
  class liveness;
  static awaitable<void> loop(std::shared_ptr<task> t, liveness alive);
  static awaitable<scrape_outcome> scrape_once(task& t, std::string* body, std::string* error);

  asio::io_context& io_;
  std::shared_ptr<context> ctx_;
  std::vector<std::shared_ptr<task>> tasks_;
  bool started_ = false;
};

// Scrape targets for every worker that has a metrics URL; throws std::runtime_error naming the
// worker when a URL does not parse (the config loader has already rejected those).
std::vector<scrape_target> scrape_targets(const config::agent_config& cfg);

// Where each worker (by config index) is in HAProxy: its pool's backend and its server.
std::vector<load::haproxy_server_ref> haproxy_refs(const config::agent_config& cfg);

}  // namespace spoa::agent

namespace spoa::agent {

// For `synapse-spoa route --live`: scrape every worker until each has answered twice (rates need
// two samples) or `scrape_interval` × 2 + `scrape_timeout` has passed, then return the model's
// view by config worker. Blocks the calling thread; offline tools only.
std::shared_ptr<const routing::load_view> scrape_live(const config::agent_config& cfg,
                                                      std::vector<std::string>* status_lines);

}  // namespace spoa::agent
