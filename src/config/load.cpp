#include "config/load.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

#include "config/duration.hpp"
#include "config/endpoint.hpp"
#include "config/reader.hpp"

namespace spoa::config {

namespace {

using namespace detail;

// Records where each document's first node starts; nothing is built.
class document_starts final : public YAML::EventHandler {
 public:
  std::optional<YAML::Mark> first;  // of the document handled last

  void OnDocumentStart(const YAML::Mark&) override { first.reset(); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t) override { note(m); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { note(m); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                const std::string&) override {
    note(m);
  }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    note(m);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    note(m);
  }
  void OnMapEnd() override {}

 private:
  void note(const YAML::Mark& m) {
    if (!first) first = m;
  }
};

// Rejects a stream with more than one document, looking at no more than two. YAML::LoadAll is
// not used: in yaml-cpp 0.7 a stray ',' at the top level makes it emit empty documents forever
// without consuming input, until memory runs out (jbeder/yaml-cpp#1040, fixed upstream by #1319
// after 0.8). Such a non-advancing "second document" starts exactly where the first did, which
// is how it is told apart from a real one. Throws config_error or YAML::ParserException.
void check_single_document(const std::string& text, const std::string& source) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  document_starts h;
  if (!parser.HandleNextDocument(h)) return;
  const std::optional<YAML::Mark> first = h.first;
  if (!parser.HandleNextDocument(h)) return;
  const YAML::Mark m = h.first.value_or(YAML::Mark{});
  const std::string where =
      mark_valid(m) ? ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) : "";
  if (first && h.first && first->pos == h.first->pos) {
    const auto pos = static_cast<std::size_t>(std::max(0, m.pos));
    throw config_error{source + where + ": invalid YAML: unexpected '" +
                       show(std::string_view(text).substr(pos, 1)) + "'"};
  }
  throw config_error{source + where + ": (root): expected one YAML document, found more"};
}

}  // namespace

namespace detail {

agent_config loader::read_document(const YAML::Node& root_node) {
  agent_config c;
  c.source = source_;
  const field root{"", YAML::Node(YAML::NodeType::Undefined), root_node};
  const mapping top =
      read_mapping(root, {"listen", "metrics_listen", "log_level", "log_format", "pools", "workers",
                          "routes", "placement", "load", "spop", "shared", "control", "responses"});
  const field& pools = require(top, "pools");
  const field& workers = require(top, "workers");

  if (const field* f = top.find("listen")) c.listen = read_listen(*f);
  if (const field* f = top.find("metrics_listen")) c.metrics_listen = read_listen(*f);
  if (const field* f = top.find("log_level")) {
    c.log_level = read_string(*f);
    if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" &&
        c.log_level != "error") {
      fail_value(*f, "expected debug, info, warn or error");
    }
  }
  if (const field* f = top.find("log_format")) {
    c.log_format = read_string(*f);
    if (c.log_format != "text" && c.log_format != "json") fail_value(*f, "expected text or json");
  }
  read_pools(pools, c);
  read_workers(workers, c);
  if (const field* f = top.find("routes")) read_routes(*f, c);
  if (const field* f = top.find("placement")) read_placement(*f, c.placement);
  if (const field* f = top.find("load")) read_load(*f, c.load);
  if (const field* f = top.find("spop")) read_spop(*f, c.spop);
  if (const field* f = top.find("shared")) read_shared(*f, c.shared);
  if (const field* f = top.find("control")) read_control(*f, c.control);
  if (const field* f = top.find("responses")) read_responses(*f, c.responses);
  return c;
}

void loader::read_pools(const field& f, agent_config& c) const {
  const mapping pools = read_mapping(f, {});
  if (pools.entries.empty()) fail_value(f, "expected at least one pool");
  for (const field& entry : pools.entries) {
    const std::string& name = entry.key.Scalar();
    if (!is_name(name)) {
      fail(key_mark(entry), entry.path,
           "pool name must be made of A-Z a-z 0-9 _ . : - (got '" + show(name) + "')");
    }
    const mapping m = read_mapping(entry, {"backend", "balance", "key"});
    pool p;
    p.name = name;
    const field& backend = require(m, "backend");
    p.backend = read_name(backend);
    for (const pool& other : c.pools) {
      if (other.backend == p.backend) {
        fail_value(backend, "backend already used by pool '" + other.name + "'");
      }
    }
    const field* balance = m.find("balance");
    if (balance != nullptr) {
      const std::string b = balance->value.IsScalar() ? balance->value.Scalar() : "";
      if (b == "affinity") {
        p.balance = balance_mode::affinity;
      } else if (b == "least_loaded") {
        p.balance = balance_mode::least_loaded;
      } else {
        fail_value(*balance, "expected affinity or least_loaded");
      }
    }
    const field* key = m.find("key");
    if (key != nullptr) p.key = read_key_kind(*key);
    if (p.balance == balance_mode::affinity && p.key == routing::key_kind::none) {
      if (key != nullptr) fail_value(*key, "balance affinity needs key room, user or origin");
      fail_value(*balance, "needs a key: room, user or origin");
    }
    if (p.balance == balance_mode::least_loaded && p.key != routing::key_kind::none) {
      fail_value(*key, "must be none with balance least_loaded");
    }
    c.pools.push_back(std::move(p));
    pool_marks_.push_back(key_mark(entry));
  }
}

void loader::read_workers(const field& f, agent_config& c) const {
  const std::vector<field> items = read_sequence(f);
  // name -> index of the worker that has it, for "first at" in messages.
  std::map<std::string, std::size_t, std::less<>> names;
  std::map<std::pair<std::string, std::string>, std::size_t> servers;  // (pool, server)
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (!items[i].value.IsMap()) fail_value(items[i], "expected a mapping");
    const mapping m =
        read_mapping(items[i], {"name", "pool", "server", "weight", "metrics", "drain"});
    worker w;
    const field& name = require(m, "name");
    w.name = read_name(name);
    if (const auto it = names.find(w.name); it != names.end()) {
      fail_value(name, "duplicate worker name (first at " + index_path(f.path, it->second) + ")");
    }
    names.emplace(w.name, i);
    if (const field* pf = m.find("pool")) w.pool = pool_ref(*pf, c).name;
    const field* server = m.find("server");
    w.server = server != nullptr ? read_name(*server) : w.name;
    if (const field* wf = m.find("weight")) w.weight = read_double_in(*wf, 0, true, 1e6);
    if (const field* mf = m.find("metrics")) {
      w.metrics = read_string(*mf);
      if (!parse_http_url(w.metrics)) {
        const bool https = w.metrics.size() >= 8 && (w.metrics.compare(0, 8, "https://") == 0);
        fail_value(*mf,
                   https ? "only http:// is supported (no TLS)" : "expected http://HOST:PORT/PATH");
      }
    }
    if (const field* df = m.find("drain")) w.drain = read_bool(*df);
    if (!w.pool.empty()) {
      const auto k = std::make_pair(w.pool, w.server);
      if (const auto it = servers.find(k); it != servers.end()) {
        fail_value(server != nullptr ? *server : name, "duplicate server '" + w.server +
                                                           "' in pool '" + w.pool + "' (first at " +
                                                           index_path(f.path, it->second) + ")");
      }
      servers.emplace(k, i);
    }
    c.workers.push_back(std::move(w));
  }
  // Every pool must be servable: a pool without workers is a typo in a pool name, not a state.
  for (std::size_t p = 0; p < c.pools.size(); ++p) {
    const std::string& pname = c.pools[p].name;
    const bool used = std::any_of(c.workers.begin(), c.workers.end(),
                                  [&](const worker& w) { return w.pool == pname; });
    if (!used) fail(pool_marks_[p], "pools." + pname, "pool has no workers");
  }
}

void loader::read_routes(const field& f, agent_config& c) const {
  const mapping m = read_mapping(f, {"prepend", "retarget", "replace_defaults"});
  std::map<std::string, std::size_t, std::less<>> names;
  if (const field* pf = m.find("prepend")) {
    const std::vector<field> items = read_sequence(*pf);
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (!items[i].value.IsMap()) fail_value(items[i], "expected a mapping");
      const mapping r =
          read_mapping(items[i], {"name", "methods", "pattern", "pool", "key", "if_query_absent"});
      routing::rule_spec rule;
      const field& name = require(r, "name");
      rule.name = read_name(name);
      if (const auto it = names.find(rule.name); it != names.end()) {
        fail_value(name, "duplicate rule name (first at " + index_path(pf->path, it->second) + ")");
      }
      names.emplace(rule.name, i);
      rule.methods = "*";
      if (const field* mf = r.find("methods")) {
        rule.methods = read_string(*mf);
        if (routing::method_syntax_error(rule.methods)) {
          fail_value(*mf, "expected * or uppercase methods joined by |, like GET|HEAD");
        }
      }
      const field& pattern = require(r, "pattern");
      rule.pattern = read_string(pattern);
      if (rule.pattern.empty() || rule.pattern.front() != '/') {
        fail_value(pattern, "must start with /");
      }
      const pool& target = pool_ref(require(r, "pool"), c);
      rule.pool = target.name;
      // A rule without a key inherits its pool's key: pool.key is documented as the default key
      // of rules that target the pool.
      rule.key = target.key;
      if (const field* kf = r.find("key")) rule.key = read_key_kind(*kf);
      if (const field* qf = r.find("if_query_absent")) {
        rule.if_query_absent = read_string(*qf);
        if (!is_query_param_name(rule.if_query_absent)) {
          fail_value(*qf, "expected a query parameter name made of A-Z a-z 0-9 _ . -");
        }
      }
      rule.source = source_ + ":" + std::to_string(value_mark(items[i]).line + 1);
      c.routes.push_back(std::move(rule));
    }
  }
  if (const field* rf = m.find("retarget")) {
    const mapping r = read_mapping(*rf, {});
    for (const field& entry : r.entries) {
      if (!is_name(entry.key.Scalar())) {
        fail(key_mark(entry), entry.path,
             "rule name must be made of A-Z a-z 0-9 _ . : - (got '" + show(entry.key.Scalar()) +
                 "')");
      }
      c.route_retarget.emplace_back(entry.key.Scalar(), pool_ref(entry, c).name);
    }
  }
  if (const field* df = m.find("replace_defaults")) {
    c.routes_replace_defaults = read_bool(*df);
    if (c.routes_replace_defaults && c.routes.empty()) {
      fail_value(*df, "true needs at least one rule in routes.prepend");
    }
  }
}

}  // namespace detail

std::variant<agent_config, load_error> load_string(std::string_view yaml,
                                                   const std::string& source) {
  if (yaml.size() > max_config_bytes) {
    return load_error{source + ": config file too large (got " + std::to_string(yaml.size()) +
                      " bytes, limit " + std::to_string(max_config_bytes) + ")"};
  }
  try {
    const std::string text(yaml);
    check_single_document(text, source);
    loader l(source);
    return l.read_document(YAML::Load(text));
  } catch (const config_error& e) {
    return load_error{e.message};
  } catch (const YAML::ParserException& e) {
    // e.what() repeats the position in yaml-cpp's own words; e.msg is the bare reason.
    return load_error{source + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) + ": invalid YAML: " + e.msg};
  } catch (const std::exception& e) {
    return load_error{source + ": cannot load: " + e.what()};
  } catch (...) {
    return load_error{source + ": cannot load: unknown error"};
  }
}

std::variant<agent_config, load_error> load_file(const std::string& path) {
  const auto cannot_read = [&](int err) {
    return load_error{path + ": cannot read: " + std::strerror(err)};
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cannot_read(errno);
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } close_on_return{fd};

  struct stat st {};
  if (::fstat(fd, &st) != 0) return cannot_read(errno);
  if (S_ISDIR(st.st_mode)) return cannot_read(EISDIR);
  if (S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) > max_config_bytes) {
    return load_error{path + ": config file too large (got " + std::to_string(st.st_size) +
                      " bytes, limit " + std::to_string(max_config_bytes) + ")"};
  }
  // Read at most one byte past the limit, so a pipe or a growing file is bounded too.
  std::string text;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return cannot_read(errno);
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > max_config_bytes) {
      return load_error{path + ": config file too large (more than " +
                        std::to_string(max_config_bytes) + " bytes)"};
    }
  }
  return load_string(text, path);
}

agent_config default_config() {
  auto r = load_string(default_yaml(), "<embedded default>");
  if (auto* e = std::get_if<load_error>(&r)) {
    throw std::logic_error("embedded default config is invalid: " + e->message);
  }
  return std::get<agent_config>(std::move(r));
}

}  // namespace spoa::config
