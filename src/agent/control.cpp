#include "agent/control.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <boost/asio/local/stream_protocol.hpp>

#include "agent/log.hpp"
#include "agent/shared_store.hpp"
#include "decision/router.hpp"
#include "load/model.hpp"
#include "routing/json.hpp"

namespace spoa::agent {
namespace {

using local = asio::local::stream_protocol;
namespace json = routing::json;

// False only when nobody listens on the socket file at `path` (ECONNREFUSED: left by an agent
// that was killed). Anything else — it answers, its backlog is full (EAGAIN: a stopped agent),
// no permission — counts as in use. Non-blocking: never hangs the start.
bool in_use(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return true;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.data(), path.size());
  const bool refused =
      ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 && errno == ECONNREFUSED;
  ::close(fd);
  return !refused;
}

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size() && out.size() < 8) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
      ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t')
      ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string error(std::string_view why) {
  std::string out = "{\"ok\":false,\"error\":";
  json::append_string(out, why);
  out += "}";
  return out;
}

}  // namespace

// ---- the socket --------------------------------------------------------------------------------

struct control_server::state {
  state(asio::io_context& i, std::string p, unsigned m, handler fn)
      : io(i), path(std::move(p)), mode(m), h(std::move(fn)), acceptor(i) {}
  asio::io_context& io;
  std::string path;
  unsigned mode;
  handler h;
  local::acceptor acceptor;
  int sessions = 0;
  bool stopped = false;
  bool bound = false;
};

namespace {

awaitable<void> session(std::shared_ptr<control_server::state> st,
                        std::shared_ptr<local::socket> sock);

awaitable<void> accept_loop(std::shared_ptr<control_server::state> st) {
  boost::system::error_code ec;
  asio::steady_timer backoff(st->io);
  while (!st->stopped) {
    local::socket sock(st->io);
    co_await st->acceptor.async_accept(sock, asio::redirect_error(use_awaitable, ec));
    if (st->stopped) co_return;
    if (ec) {  // out of file descriptors, say: do not spin
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    if (st->sessions >= control_server::max_sessions) {
      sock.close(ec);
      continue;
    }
    asio::co_spawn(st->io, session(st, std::make_shared<local::socket>(std::move(sock))),
                   asio::detached);
  }
}

awaitable<void> session(std::shared_ptr<control_server::state> st,
                        std::shared_ptr<local::socket> sock) {
  ++st->sessions;
  struct count {
    int& n;
    ~count() { --n; }
  } counted{st->sessions};
  auto timer = std::make_shared<asio::steady_timer>(st->io);
  timer->expires_after(std::chrono::seconds(5));
  // The handler owns the socket too: a wait that completed just before the session ended still
  // runs after it, and closes a socket that is alive (and already closed: harmless).
  timer->async_wait([sock, timer](const boost::system::error_code& e) {
    if (e) return;
    boost::system::error_code ignored;
    sock->close(ignored);
  });
  boost::system::error_code ec;
  std::string line;
  const std::size_t n =
      co_await asio::async_read_until(*sock, asio::dynamic_buffer(line, control_server::max_line),
                                      '\n', asio::redirect_error(use_awaitable, ec));
  std::string reply;
  if (ec == asio::error::not_found) {
    reply =
        error("request line longer than " + std::to_string(control_server::max_line) + " bytes");
  } else if (!ec) {
    std::string_view req(line.data(), n > 0 ? n - 1 : 0);
    if (!req.empty() && req.back() == '\r') req.remove_suffix(1);
    reply = st->stopped ? error("the agent is stopping") : st->h(req);
  }
  if (!reply.empty() && sock->is_open()) {
    reply.push_back('\n');
    co_await asio::async_write(*sock, asio::buffer(reply), asio::redirect_error(use_awaitable, ec));
  }
  timer->cancel();
  sock->close(ec);
}

}  // namespace

control_server::control_server(asio::io_context& io, std::string path, unsigned mode, handler h)
    : st_(std::make_shared<state>(io, std::move(path), mode, std::move(h))) {}

control_server::~control_server() {
  stop();
}

void control_server::start() {
  const std::string& path = st_->path;
  if (path.size() >= sizeof(sockaddr_un{}.sun_path))
    throw std::runtime_error("control.socket " + path + ": path longer than " +
                             std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes");
  struct stat sb {};
  if (::lstat(path.c_str(), &sb) == 0) {
    if (!S_ISSOCK(sb.st_mode))
      throw std::runtime_error("control.socket " + path + ": exists and is not a socket");
    if (in_use(path))
      throw std::runtime_error("control.socket " + path +
                               ": another agent answers there (or it is not ours to replace)");
    ::unlink(path.c_str());  // stale: left by an agent that was killed
  }
  boost::system::error_code ec;
  st_->acceptor.open(local(), ec);
  // Created with exactly control.mode (no chmod by path afterwards: no symlink race).
  const mode_t old = ::umask(static_cast<mode_t>(~st_->mode & 0777));
  if (!ec) st_->acceptor.bind(local::endpoint(path), ec);
  ::umask(old);
  if (ec) throw std::runtime_error("control.socket " + path + ": cannot bind: " + ec.message());
  st_->bound = true;
  st_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("control.socket " + path + ": cannot listen: " + ec.message());
  asio::co_spawn(st_->io, accept_loop(st_), asio::detached);
}

void control_server::stop() {
  if (!st_ || st_->stopped) return;
  st_->stopped = true;
  boost::system::error_code ec;
  st_->acceptor.close(ec);
  if (st_->bound) ::unlink(st_->path.c_str());
}

// ---- the commands ------------------------------------------------------------------------------

control_commands::control_commands(decision::router& router,
                                   std::function<const load::model*()> model,
                                   std::function<std::shared_ptr<const shared_counters>()> shared)
    : router_(router), model_(std::move(model)), shared_(std::move(shared)) {}

std::string control_commands::run(std::string_view line, std::uint64_t now_ms) {
  try {
    const auto w = words(line);
    if (w.empty())
      return error(
          "empty request; commands: status, drain WORKER, undrain WORKER, "
          "forget KEY, explain METHOD PATH");
    if (w[0] == "status" && w.size() == 1) return status(now_ms);
    if ((w[0] == "drain" || w[0] == "undrain") && w.size() == 2)
      return drain(w[1], w[0] == "drain");
    if (w[0] == "forget" && w.size() == 2) return forget(w[1], now_ms);
    if (w[0] == "explain" && w.size() == 3) return explain(w[1], w[2], now_ms);
    return error("unknown command or wrong arguments: '" + std::string(line.substr(0, 200)) +
                 "'; commands: status, drain WORKER, undrain WORKER, forget KEY, explain METHOD "
                 "PATH");
  } catch (const std::exception& e) {
    return error(std::string("internal error: ") + e.what());
  }
}

std::string control_commands::status(std::uint64_t now_ms) const {
  const auto& pl = router_.placement();
  const load::model* m = model_();
  const double per_second = pl.rate_scale(now_ms);
  std::string out = "{\"ok\":true,\"workers\":[";
  for (std::size_t i = 0; i < pl.workers().size(); ++i) {
    const auto& spec = pl.workers()[i];
    const auto f = pl.figures(static_cast<int>(i));
    if (i) out += ',';
    out += "{\"name\":";
    json::append_string(out, spec.name);
    out += ",\"pool\":";
    const int pool = pl.pool_of(static_cast<int>(i));
    if (pool >= 0)
      json::append_string(out, pl.pools()[static_cast<std::size_t>(pool)].name);
    else
      out += "null";
    out += ",\"state\":";
    json::append_string(out, routing::to_string(f.state));
    out += ",\"haproxy\":";
    json::append_string(out, m ? load::to_string(m->haproxy(i)) : "unknown");
    out += ",\"capacity\":";
    json::append_number(out, f.capacity);
    out += ",\"rate\":";  // requests per second, this agent's and its peers'
    json::append_number(out, f.load * f.weight * f.capacity * per_second);
    out += ",\"peer_rate\":";
    json::append_number(out, f.peer_load * f.weight * f.capacity * per_second);
    out += ",\"keys\":" + std::to_string(pl.keys_on(static_cast<int>(i)));
    const bool config_drain =
        router_.config().workers.size() > i && router_.config().workers[i].drain;
    out += ",\"drain\":";
    if (drains_.count(spec.name))
      out += "\"runtime\"";
    else if (config_drain)
      out += "\"config\"";
    else if (m && m->haproxy(i) == load::haproxy_state::drain)
      out += "\"haproxy\"";
    else
      out += "null";
    out += '}';
  }
  out += "],\"keys\":" + std::to_string(pl.table().size());
  const auto sh = shared_ ? shared_() : nullptr;
  out += ",\"shared\":";
  if (sh) {
    out += std::string("{\"connected\":") + (sh->connected ? "true" : "false") +
           ",\"peers\":" + std::to_string(sh->peers.load()) + "}";
  } else {
    out += "null";
  }
  out += '}';
  return out;
}

std::string control_commands::drain(std::string_view worker, bool on) {
  auto& pl = router_.placement();
  if (pl.worker_index(worker) < 0) return error("no worker named '" + std::string(worker) + "'");
  const std::string name(worker);
  const bool was = drains_.count(name) > 0;
  if (on) {
    drains_.insert(name);
    pl.set_drain(name, true);
  } else {
    drains_.erase(name);
    // The config's own drain stays.
    bool config_drain = false;
    for (const auto& w : router_.config().workers)
      if (w.name == name) config_drain = w.drain;
    pl.set_drain(name, config_drain);
  }
  if (was != on) {
    log_info(std::string("ctl: ") + (on ? "drain " : "undrain ") + name +
                 (on ? " (runtime: no new keys, its keys move gradually; kept across reloads, not "
                       "restarts)"
                     : " (runtime drain lifted)"),
             {{"event", "drain"},
              {"worker", name},
              {"drain", on},
              {"source", "ctl"},
              {"keys", pl.keys_on(pl.worker_index(name))}});
    if (on_drains_changed) on_drains_changed();
  }
  std::string out = "{\"ok\":true,\"worker\":";
  json::append_string(out, name);
  out += std::string(",\"drain\":") + (on ? "true" : "false") +
         ",\"changed\":" + (was != on ? "true" : "false") + "}";
  return out;
}

void control_commands::reapply() {
  auto& pl = router_.placement();
  for (auto it = drains_.begin(); it != drains_.end();) {
    if (pl.worker_index(*it) < 0) {
      log_info("ctl: runtime drain of " + *it + " dropped: the reloaded config has no such worker",
               {{"event", "drain"}, {"worker", *it}, {"drain", false}, {"source", "ctl_dropped"}});
      it = drains_.erase(it);
      continue;
    }
    pl.set_drain(*it, true);
    ++it;
  }
  if (on_drains_changed) on_drains_changed();
}

std::string control_commands::forget(std::string_view key, std::uint64_t now_ms) {
  auto& pl = router_.placement();
  std::string moved;
  for (std::size_t p = 0; p < pl.pools().size(); ++p) {
    if (!pl.pools()[p].keyed) continue;
    const int from = pl.decide(static_cast<int>(p), key, now_ms).remembered;
    if (from < 0) continue;
    const int to = pl.move_now(static_cast<int>(p), key, now_ms);
    if (to < 0) continue;
    if (!moved.empty()) moved += ',';
    moved += "{\"pool\":";
    json::append_string(moved, pl.pools()[p].name);
    moved += ",\"from\":";
    json::append_string(moved, pl.workers()[static_cast<std::size_t>(from)].name);
    moved += ",\"to\":";
    json::append_string(moved, pl.workers()[static_cast<std::size_t>(to)].name);
    moved += '}';
    const auto& from_name = pl.workers()[static_cast<std::size_t>(from)].name;
    const auto& to_name = pl.workers()[static_cast<std::size_t>(to)].name;
    log_info(
        "ctl: forget: moved a key of pool " + pl.pools()[p].name + " from " + from_name + " to " +
            to_name,
        {{"event", "forget"}, {"pool", pl.pools()[p].name}, {"from", from_name}, {"to", to_name}});
  }
  if (moved.empty()) return error("no pool remembers that key, or it has nowhere else to go");
  return "{\"ok\":true,\"moved\":[" + moved + "]}";
}

std::string control_commands::explain(std::string_view method, std::string_view path,
                                      std::uint64_t now_ms) {
  routing::request req;
  req.method = method;
  req.path = path;
  const auto q = path.find('?');
  if (q != std::string_view::npos) req.query = path.substr(q + 1);
  return "{\"ok\":true,\"decision\":" + router_.explain(req, now_ms) + "}";
}

}  // namespace spoa::agent
