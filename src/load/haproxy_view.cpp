#include "load/haproxy_view.hpp"

#include "promtext/parser.hpp"

namespace spoa::load {
namespace {

int rank(haproxy_state s) noexcept {
  switch (s) {
    case haproxy_state::maint:
      return 4;
    case haproxy_state::drain:
      return 3;
    case haproxy_state::down:
      return 2;
    case haproxy_state::up:
      return 1;
    case haproxy_state::unknown:
      break;
  }
  return 0;
}

haproxy_state state_of(std::string_view label) noexcept {
  if (label == "UP") return haproxy_state::up;
  if (label == "DOWN") return haproxy_state::down;
  // NOLB: stopping (disable-on-404, say): HAProxy sends it only persistent traffic.
  if (label == "DRAIN" || label == "NOLB") return haproxy_state::drain;
  if (label == "MAINT") return haproxy_state::maint;
  return haproxy_state::unknown;
}

class status_sink : public promtext::sink {
 public:
  status_sink(const std::vector<haproxy_server_ref>& refs, std::vector<haproxy_state>& out)
      : refs_(refs), out_(out) {}
  bool wants(std::string_view name) override { return name == "haproxy_server_status"; }
  void on_sample(const promtext::sample& s) override {
    ++seen;
    if (s.value != 1) return;
    std::string_view proxy, server, state;
    for (const auto& l : s.labels) {
      if (l.name == "proxy")
        proxy = l.value;
      else if (l.name == "server")
        server = l.value;
      else if (l.name == "state")
        state = l.value;
    }
    const haproxy_state st = state_of(state);
    if (st == haproxy_state::unknown) return;
    for (std::size_t i = 0; i < refs_.size(); ++i) {
      if (refs_[i].server.empty() || refs_[i].server != server || refs_[i].backend != proxy)
        continue;
      if (rank(st) > rank(out_[i])) out_[i] = st;
    }
  }
  std::size_t seen = 0;

 private:
  const std::vector<haproxy_server_ref>& refs_;
  std::vector<haproxy_state>& out_;
};

}  // namespace

std::string_view to_string(haproxy_state s) noexcept {
  switch (s) {
    case haproxy_state::up:
      return "UP";
    case haproxy_state::down:
      return "DOWN";
    case haproxy_state::drain:
      return "DRAIN";
    case haproxy_state::maint:
      return "MAINT";
    case haproxy_state::unknown:
      break;
  }
  return "unknown";
}

haproxy_parse parse_haproxy_servers(std::string_view body,
                                    const std::vector<haproxy_server_ref>& refs) {
  haproxy_parse r;
  r.states.assign(refs.size(), haproxy_state::unknown);
  status_sink sink(refs, r.states);
  const promtext::parse_result p = promtext::parse(body, sink);
  if (!p.ok) {
    r.states.assign(refs.size(), haproxy_state::unknown);
    r.error = p.message;
    return r;
  }
  if (sink.seen == 0) {
    r.error = "no haproxy_server_status series (is this HAProxy's prometheus-exporter?)";
    return r;
  }
  r.ok = true;
  return r;
}

}  // namespace spoa::load
