#pragma once
// Runtime control: `synapse-spoa ctl` against a running agent (README, "Runtime control").
//
// Transport: a Unix stream socket (control.socket), created with control.mode (default 0660)
// and removed on exit: who may connect is the file system's answer (the socket's mode and
// owner, and its directory's). One request line in (at most max_line bytes, within 5 s), one
// JSON line out, then the agent closes; at most max_sessions at once (more are closed at once).
// No TCP listener: nothing is reachable from the network.
//
// Commands (control_commands::run), every answer an object with "ok":
//   status                  workers (state, HAProxy's view, capacity, load, keys, drains) and
//                           the shared store
//   drain WORKER / undrain WORKER
//                           a runtime drain: logged, exported (synapse_spoa_runtime_drain), kept
//                           across reloads (SIGHUP), gone at a restart (put it in the config)
//   forget KEY              moves the room (user, origin) now to its next choice, in every keyed
//                           pool that remembers it (placement::move_now; pushed to the other
//                           agents through the shared store like any move)
//   explain METHOD PATH     the live decision as `route` prints it; like a request, it places
//                           (and remembers) a key not seen before

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "agent/asio.hpp"

namespace spoa::decision {
class router;
}
namespace spoa::load {
class model;
}

namespace spoa::agent {

struct shared_counters;

class control_server {
 public:
  static constexpr std::size_t max_line = 4096;
  static constexpr int max_sessions = 16;
  using handler = std::function<std::string(std::string_view line)>;
  control_server(asio::io_context& io, std::string path, unsigned mode, handler h);
  ~control_server();
  control_server(const control_server&) = delete;
  control_server& operator=(const control_server&) = delete;
  // Throws std::runtime_error naming the path: another agent answers there, the directory is
  // missing, bind or chmod failed. A stale socket file (nobody answers) is replaced.
  void start();
  void stop();  // closes the listener and removes the socket file

  struct state;  // control.cpp: shared with the accept and session coroutines

 private:
  std::shared_ptr<state> st_;
};

class control_commands {
 public:
  control_commands(decision::router& router, std::function<const load::model*()> model,
                   std::function<std::shared_ptr<const shared_counters>()> shared);
  // One request line; never throws.
  std::string run(std::string_view line, std::uint64_t now_ms);
  // After a reload (the config's drains replaced placement's): the runtime drains again, minus
  // workers the new config no longer has (logged).
  void reapply();
  const std::set<std::string>& runtime_drains() const { return drains_; }
  std::function<void()> on_drains_changed;  // the agent exports them

 private:
  std::string status(std::uint64_t now_ms) const;
  std::string drain(std::string_view worker, bool on);
  std::string forget(std::string_view key, std::uint64_t now_ms);
  std::string explain(std::string_view method, std::string_view path, std::uint64_t now_ms);

  decision::router& router_;
  std::function<const load::model*()> model_;
  std::function<std::shared_ptr<const shared_counters>()> shared_;
  std::set<std::string> drains_;
};

}  // namespace spoa::agent
