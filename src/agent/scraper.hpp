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
};

// How one scrape ended: `unreachable` (no connection) counts toward down; `timeout` (no answer
// within load.scrape_timeout, at connect or after the request) makes the worker stalled and then
// down (load/model.hpp); `unusable` (HTTP error, garbage, oversized body) only makes the worker's
// load unknown.
enum class scrape_outcome { ok, unreachable, unusable, timeout };

class scraper {
 public:
  // `on_result` runs on the loop after every scrape (success or failure).
  scraper(asio::io_context& io, std::vector<scrape_target> targets, config::load opts,
          load::model& model, std::function<void()> on_result);
  ~scraper();
  void start();
  void stop();
  // True once every scrape coroutine has returned (after stop()): the object may be destroyed.
  bool idle() const noexcept { return running_ == 0; }

 private:
  struct state;
  awaitable<void> loop(std::shared_ptr<state> st);
  awaitable<scrape_outcome> scrape_once(state& st, std::string* body, std::string* error);

  asio::io_context& io_;
  std::vector<std::shared_ptr<state>> states_;
  config::load opts_;
  load::model& model_;
  std::function<void()> on_result_;
  bool stopped_ = false;
  int running_ = 0;  // scrape coroutines still alive (they reference this object)
};

// The load model's options from the config's `load` section.
load::options load_options_of(const config::load& l);

// Scrape targets for every worker that has a metrics URL; throws std::runtime_error naming the
// worker when a URL does not parse (the config loader has already rejected those).
std::vector<scrape_target> scrape_targets(const config::agent_config& cfg);

}  // namespace spoa::agent

namespace spoa::agent {

// For `synapse-spoa route --live`: scrape every worker until each has answered twice (rates need
// two samples) or `scrape_interval` × 2 + `scrape_timeout` has passed, then return the model's
// view by config worker. Blocks the calling thread; offline tools only.
std::shared_ptr<const routing::load_view> scrape_live(const config::agent_config& cfg,
                                                      std::vector<std::string>* status_lines);

}  // namespace spoa::agent
