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

namespace spoa::config {

namespace {

// Thrown inside the loader only; load_string turns it into a load_error. Exceptions are fine at
// config time (STYLE.md) and keep every check a single line.
struct config_error {
  std::string message;
};

// One key/value pair of a mapping (or one element of a sequence, with `key` undefined), with the
// dotted path that names it in messages.
struct field {
  std::string path;
  YAML::Node key;
  YAML::Node value;
};

bool mark_valid(const YAML::Mark& m) {
  return m.line >= 0 && m.column >= 0;
}

// Where to point for a problem with a field's value. yaml-cpp gives an empty value (`key:`) the
// position of whatever follows it, so an empty value points at its key instead.
YAML::Mark value_mark(const field& f) {
  if (f.value.IsDefined() && !f.value.IsNull() && mark_valid(f.value.Mark())) {
    return f.value.Mark();
  }
  if (f.key.IsDefined() && mark_valid(f.key.Mark())) return f.key.Mark();
  if (f.value.IsDefined() && mark_valid(f.value.Mark())) return f.value.Mark();
  return YAML::Mark{};
}

YAML::Mark key_mark(const field& f) {
  if (f.key.IsDefined() && mark_valid(f.key.Mark())) return f.key.Mark();
  return value_mark(f);
}

// The value as it appears in a message: one line, bounded.
std::string show(std::string_view s) {
  constexpr std::size_t max_shown = 64;
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < max_shown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > max_shown) out += "...";
  return out;
}

std::string got(const YAML::Node& v) {
  if (!v.IsDefined() || v.IsNull()) return " (got null)";
  if (v.IsMap()) return " (got a mapping)";
  if (v.IsSequence()) return " (got a sequence)";
  return " (got '" + show(v.Scalar()) + "')";
}

// Keys come from the file too: escaped and bounded like values, so a message stays one line.
std::string join_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return show(key);
  std::string out(parent);
  out += '.';
  out += show(key);
  return out;
}

std::string index_path(std::string_view parent, std::size_t i) {
  return std::string(parent) + "[" + std::to_string(i) + "]";
}

std::string format_number(double v) {
  // Whole numbers as integers ("1000000", not "1e+06"): bounds are read by people.
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<long long>(v));
  }
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Names that end up in HAProxy (backend, server) or in messages and metrics labels (pool,
// worker, rule): HAProxy's identifier characters.
bool is_name(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':' || c == '-';
  });
}

// "*" or METHOD(|METHOD)* with METHOD made of uppercase ASCII letters.
bool is_methods(std::string_view s) {
  if (s == "*") return true;
  if (s.empty()) return false;
  std::size_t token_len = 0;
  for (char c : s) {
    if (c == '|') {
      if (token_len == 0) return false;
      token_len = 0;
    } else if (c >= 'A' && c <= 'Z') {
      ++token_len;
    } else {
      return false;
    }
  }
  return token_len > 0;
}

bool is_query_param_name(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

class loader {
 public:
  explicit loader(const std::string& source) : source_(source) {}

  agent_config read_document(const YAML::Node& root);

 private:
  // A mapping whose keys were checked: all scalar, all known (when `known` is given), no
  // duplicates. Entries keep document order.
  struct mapping {
    std::string path;
    YAML::Mark mark;
    std::vector<field> entries;

    const field* find(std::string_view key) const {
      for (const field& f : entries) {
        if (f.key.Scalar() == key) return &f;
      }
      return nullptr;
    }
  };

  [[noreturn]] void fail(const YAML::Mark& m, std::string_view path, std::string_view what) const {
    std::string msg = source_;
    if (mark_valid(m)) {
      msg += ':' + std::to_string(m.line + 1) + ':' + std::to_string(m.column + 1);
    } else {
      msg += ":1:1";
    }
    msg += ": ";
    msg += path.empty() ? std::string_view("(root)") : path;
    msg += ": ";
    msg += what;
    throw config_error{std::move(msg)};
  }

  // A problem with a value: the message ends with what was written.
  [[noreturn]] void fail_value(const field& f, std::string_view what) const {
    fail(value_mark(f), f.path, std::string(what) + got(f.value));
  }

  mapping read_mapping(const field& f, std::initializer_list<std::string_view> known) const;
  // Required keys: missing -> "missing required key", reported at the enclosing mapping.
  const field& require(const mapping& m, std::string_view key) const;
  std::vector<field> read_sequence(const field& f) const;

  std::string read_string(const field& f) const;
  std::string read_name(const field& f) const;
  double read_double(const field& f) const;
  double read_double_in(const field& f, double lo, bool lo_open, double hi) const;
  std::int64_t read_integer_in(const field& f, std::int64_t lo, std::int64_t hi) const;
  bool read_bool(const field& f) const;
  std::chrono::milliseconds read_duration(const field& f) const;
  routing::key_kind read_key_kind(const field& f) const;
  std::string read_listen(const field& f) const;

  void read_pools(const field& f, agent_config& c) const;
  void read_workers(const field& f, agent_config& c) const;
  void read_routes(const field& f, agent_config& c) const;
  void read_placement(const field& f, placement& p) const;
  void read_load(const field& f, load& l) const;
  void read_spop(const field& f, spop& s) const;

  const pool* find_pool(const agent_config& c, std::string_view name) const {
    for (const pool& p : c.pools) {
      if (p.name == name) return &p;
    }
    return nullptr;
  }
  // Resolves a reference to a pool, or fails naming the pools that exist.
  const pool& pool_ref(const field& f, const agent_config& c) const;

  const std::string& source_;
  // Position of each pool's name, parallel to agent_config::pools, for "pool has no workers".
  mutable std::vector<YAML::Mark> pool_marks_;
};

loader::mapping loader::read_mapping(const field& f,
                                     std::initializer_list<std::string_view> known) const {
  mapping m;
  m.path = f.path;
  m.mark = value_mark(f);
  // An empty section (`placement:` with nothing under it) is the same as an omitted one.
  if (!f.value.IsDefined() || f.value.IsNull()) return m;
  if (!f.value.IsMap()) fail_value(f, "expected a mapping");
  for (auto it = f.value.begin(); it != f.value.end(); ++it) {
    // A copy: yaml-cpp's iterator returns a proxy, and a reference into it would dangle.
    const YAML::Node k = it->first;
    if (!k.IsScalar()) {
      fail(mark_valid(k.Mark()) ? k.Mark() : m.mark, f.path, "keys must be plain strings");
    }
    field entry{join_path(f.path, k.Scalar()), k, it->second};
    if (known.size() != 0 && std::find(known.begin(), known.end(), k.Scalar()) == known.end()) {
      std::string what = "unknown key '" + show(k.Scalar()) + "'";
      std::string_view best;
      std::size_t best_d = std::numeric_limits<std::size_t>::max();
      for (std::string_view cand : known) {
        const std::size_t d = edit_distance(k.Scalar(), cand);
        if (d < best_d) {
          best_d = d;
          best = cand;
        }
      }
      // A typo is at most two edits away (or one for very short keys).
      if (best_d <= std::min<std::size_t>(2, std::max<std::size_t>(1, best.size() / 3))) {
        what += " (did you mean '" + std::string(best) + "'?)";
      } else {
        what += " (expected one of: ";
        for (std::string_view cand : known) {
          if (cand != *known.begin()) what += ", ";
          what += cand;
        }
        what += ')';
      }
      fail(key_mark(entry), entry.path, what);
    }
    if (const field* first = m.find(k.Scalar())) {
      const YAML::Mark fm = key_mark(*first);
      fail(key_mark(entry), entry.path,
           "duplicate key (first at line " + std::to_string(fm.line + 1) + ")");
    }
    m.entries.push_back(std::move(entry));
  }
  return m;
}

const field& loader::require(const mapping& m, std::string_view key) const {
  const field* f = m.find(key);
  if (f == nullptr) fail(m.mark, join_path(m.path, key), "missing required key");
  return *f;
}

std::vector<field> loader::read_sequence(const field& f) const {
  std::vector<field> out;
  if (!f.value.IsDefined() || f.value.IsNull()) return out;
  if (!f.value.IsSequence()) fail_value(f, "expected a sequence");
  std::size_t i = 0;
  for (const YAML::Node& e : f.value) {
    out.push_back(field{index_path(f.path, i), YAML::Node(YAML::NodeType::Undefined), e});
    ++i;
  }
  return out;
}

std::string loader::read_string(const field& f) const {
  if (!f.value.IsScalar()) fail_value(f, "expected a string");
  return f.value.Scalar();
}

std::string loader::read_name(const field& f) const {
  std::string s = read_string(f);
  if (!is_name(s)) fail_value(f, "expected a name made of A-Z a-z 0-9 _ . : -");
  return s;
}

double loader::read_double(const field& f) const {
  if (!f.value.IsScalar()) fail_value(f, "expected a number");
  const std::string& s = f.value.Scalar();
  double v = 0;
  const char* end = s.data() + s.size();
  const auto r = std::from_chars(s.data(), end, v);
  if (r.ec != std::errc{} || r.ptr != end || !std::isfinite(v)) {
    std::string lower;
    for (char c : s)
      lower += static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
    // YAML spells them .inf and .nan; from_chars reads inf and nan.
    if (lower.find("inf") != std::string::npos || lower.find("nan") != std::string::npos ||
        r.ec == std::errc::result_out_of_range || (r.ec == std::errc{} && r.ptr == end)) {
      fail_value(f, "must be a finite number");
    }
    fail_value(f, "expected a number");
  }
  return v;
}

double loader::read_double_in(const field& f, double lo, bool lo_open, double hi) const {
  const double v = read_double(f);
  if ((lo_open ? v <= lo : v < lo) || v > hi) {
    fail_value(f, std::string("must be in ") + (lo_open ? "(" : "[") + format_number(lo) + ", " +
                      format_number(hi) + "]");
  }
  return v;
}

std::int64_t loader::read_integer_in(const field& f, std::int64_t lo, std::int64_t hi) const {
  if (!f.value.IsScalar()) fail_value(f, "expected an integer");
  const std::string& s = f.value.Scalar();
  std::int64_t v = 0;
  const char* end = s.data() + s.size();
  const auto r = std::from_chars(s.data(), end, v);
  const std::string range = "must be between " + std::to_string(lo) + " and " + std::to_string(hi);
  if (r.ptr != end || s.empty()) fail_value(f, "expected an integer");
  if (r.ec == std::errc::result_out_of_range) fail_value(f, range);
  if (r.ec != std::errc{}) fail_value(f, "expected an integer");
  if (v < lo || v > hi) fail_value(f, range);
  return v;
}

bool loader::read_bool(const field& f) const {
  if (f.value.IsScalar()) {
    const std::string& s = f.value.Scalar();
    // YAML 1.2 core schema only: yes/no/on/off are too easy to write by accident.
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  fail_value(f, "expected true or false");
}

std::chrono::milliseconds loader::read_duration(const field& f) const {
  if (!f.value.IsScalar()) fail_value(f, "expected a duration like 250ms, 2s, 5m, 1h or 1d");
  const auto d = parse_duration(f.value.Scalar());
  if (!d) fail_value(f, "expected a duration like 250ms, 2s, 5m, 1h or 1d, at most 365d");
  if (d->count() == 0) fail_value(f, "must be more than 0");
  return *d;
}

routing::key_kind loader::read_key_kind(const field& f) const {
  if (f.value.IsScalar()) {
    const std::string& s = f.value.Scalar();
    if (s == "room") return routing::key_kind::room;
    if (s == "user") return routing::key_kind::user;
    if (s == "origin") return routing::key_kind::origin;
    if (s == "none") return routing::key_kind::none;
  }
  fail_value(f, "expected room, user, origin or none");
}

std::string loader::read_listen(const field& f) const {
  std::string s = read_string(f);
  const auto ep = parse_endpoint(s);
  // The agent binds without resolving names, so a listen address must be an IP literal; saying
  // so here keeps check-config and run in agreement.
  if (!ep || ep->host.find('/') != std::string::npos || !is_address_or_cidr(ep->host)) {
    fail_value(f, "expected IP:PORT or [IPV6]:PORT");
  }
  return s;
}

const pool& loader::pool_ref(const field& f, const agent_config& c) const {
  const std::string name = read_string(f);
  if (const pool* p = find_pool(c, name)) return *p;
  std::string what = "unknown pool (pools are:";
  for (const pool& p : c.pools)
    what += ' ' + p.name;
  what += ')';
  fail_value(f, what);
}

agent_config loader::read_document(const YAML::Node& root_node) {
  agent_config c;
  c.source = source_;
  const field root{"", YAML::Node(YAML::NodeType::Undefined), root_node};
  const mapping top = read_mapping(root, {"listen", "metrics_listen", "log_level", "pools",
                                          "workers", "routes", "placement", "load", "spop"});
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
  read_pools(pools, c);
  read_workers(workers, c);
  if (const field* f = top.find("routes")) read_routes(*f, c);
  if (const field* f = top.find("placement")) read_placement(*f, c.placement);
  if (const field* f = top.find("load")) read_load(*f, c.load);
  if (const field* f = top.find("spop")) read_spop(*f, c.spop);
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
        if (!is_methods(rule.methods)) {
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

void loader::read_placement(const field& f, placement& p) const {
  const mapping m =
      read_mapping(f, {"balance_factor", "overload_factor", "overload_after", "affinity_ttl",
                       "max_keys", "max_moves_per_second", "hash_key", "snapshot",
                       "snapshot_interval", "load_half_life", "return_after", "return_per_second"});
  if (const field* x = m.find("balance_factor"))
    p.balance_factor = read_double_in(*x, 1, false, 100);
  if (const field* x = m.find("overload_factor")) {
    p.overload_factor = read_double_in(*x, 1, false, 1000);
    if (p.overload_factor < p.balance_factor) {
      fail_value(*x, "must be >= balance_factor (" + format_number(p.balance_factor) + ")");
    }
  } else if (p.overload_factor < p.balance_factor) {
    // The default overload_factor (2.0) is below an explicit balance_factor: say which key.
    fail_value(*m.find("balance_factor"),
               "must be <= overload_factor (" + format_number(p.overload_factor) + ")");
  }
  if (const field* x = m.find("overload_after")) p.overload_after = read_duration(*x);
  if (const field* x = m.find("affinity_ttl")) p.affinity_ttl = read_duration(*x);
  if (const field* x = m.find("max_keys")) {
    p.max_keys = static_cast<std::size_t>(read_integer_in(*x, 1, 100'000'000));
  }
  if (const field* x = m.find("max_moves_per_second")) {
    p.max_moves_per_second = read_double_in(*x, 0, true, 1e6);
  }
  if (const field* x = m.find("hash_key")) p.hash_key = read_string(*x);
  if (const field* x = m.find("snapshot")) p.snapshot = read_string(*x);
  if (const field* x = m.find("snapshot_interval")) p.snapshot_interval = read_duration(*x);
  if (const field* x = m.find("load_half_life")) p.load_half_life = read_duration(*x);
  if (const field* x = m.find("return_after")) p.return_after = read_duration(*x);
  if (const field* x = m.find("return_per_second")) {
    p.return_per_second = read_double_in(*x, 0, false, 1e6);
  }
}

void loader::read_load(const field& f, load& l) const {
  const mapping m = read_mapping(
      f, {"scrape_interval", "scrape_timeout", "max_body_bytes", "ewma_alpha", "hot_cpu",
          "cool_cpu", "hot_reactor_lag", "cool_reactor_lag", "down_after_failures", "stale_after",
          "stall_down_after", "reactor_stall_after", "hot_in_flight", "cool_in_flight",
          "capacity_knee", "capacity_at_hot", "hot_capacity"});
  using std::chrono::milliseconds;
  if (const field* x = m.find("scrape_interval")) {
    l.scrape_interval = read_duration(*x);
    if (l.scrape_interval < milliseconds{100}) fail_value(*x, "must be at least 100ms");
  }
  if (const field* x = m.find("scrape_timeout")) l.scrape_timeout = read_duration(*x);
  if (l.scrape_timeout >= l.scrape_interval) {
    // Report at the key the user wrote; with both written, the timeout is the one to shorten.
    const field* x = m.find("scrape_timeout");
    if (x != nullptr) {
      fail_value(*x,
                 "must be less than scrape_interval (" + format_duration(l.scrape_interval) + ")");
    }
    fail_value(*m.find("scrape_interval"),
               "must be more than scrape_timeout (" + format_duration(l.scrape_timeout) + ")");
  }
  if (const field* x = m.find("max_body_bytes")) {
    l.max_body_bytes = static_cast<std::size_t>(read_integer_in(*x, 1024, 256 * 1024 * 1024));
  }
  if (const field* x = m.find("ewma_alpha")) l.ewma_alpha = read_double_in(*x, 0, true, 1);
  if (const field* x = m.find("hot_cpu")) l.hot_cpu = read_double_in(*x, 0, true, 64);
  if (const field* x = m.find("cool_cpu")) l.cool_cpu = read_double_in(*x, 0, false, 64);
  if (l.cool_cpu > l.hot_cpu) {
    if (const field* x = m.find("cool_cpu")) {
      fail_value(*x, "must be <= hot_cpu (" + format_number(l.hot_cpu) + ")");
    }
    fail_value(*m.find("hot_cpu"), "must be >= cool_cpu (" + format_number(l.cool_cpu) + ")");
  }
  // Reactor lag is compared with a gauge in seconds, so it is kept as seconds.
  const auto seconds = [](milliseconds d) { return static_cast<double>(d.count()) / 1000.0; };
  if (const field* x = m.find("hot_reactor_lag")) l.hot_reactor_lag = seconds(read_duration(*x));
  if (const field* x = m.find("cool_reactor_lag")) {
    l.cool_reactor_lag = seconds(read_duration(*x));
  }
  if (l.cool_reactor_lag > l.hot_reactor_lag) {
    const auto ms = [](double s) { return milliseconds{std::llround(s * 1000.0)}; };
    if (const field* x = m.find("cool_reactor_lag")) {
      fail_value(*x, "must be <= hot_reactor_lag (" + format_duration(ms(l.hot_reactor_lag)) + ")");
    }
    fail_value(*m.find("hot_reactor_lag"),
               "must be >= cool_reactor_lag (" + format_duration(ms(l.cool_reactor_lag)) + ")");
  }
  if (const field* x = m.find("down_after_failures")) {
    l.down_after_failures = static_cast<int>(read_integer_in(*x, 1, 1000));
  }
  if (const field* x = m.find("stale_after")) l.stale_after = read_duration(*x);
  // Data is only refreshed every scrape_interval; staler-than-that would flap every worker.
  if (l.stale_after < l.scrape_interval) {
    if (const field* x = m.find("stale_after")) {
      fail_value(*x,
                 "must be at least scrape_interval (" + format_duration(l.scrape_interval) + ")");
    }
    fail_value(*m.find("scrape_interval"),
               "must be at most stale_after (" + format_duration(l.stale_after) + ")");
  }
  if (const field* x = m.find("stall_down_after")) l.stall_down_after = read_duration(*x);
  // Shorter, and the first timed-out scrape would already be "down": no stalled warning first.
  if (l.stall_down_after <= l.scrape_interval + l.scrape_timeout) {
    const std::string sum = format_duration(l.scrape_interval + l.scrape_timeout);
    if (const field* x = m.find("stall_down_after")) {
      fail_value(*x, "must be more than scrape_interval + scrape_timeout (" + sum + ")");
    }
    const field* x = m.find("scrape_timeout");
    fail_value(x ? *x : *m.find("scrape_interval"), "scrape_interval + scrape_timeout (" + sum +
                                                        ") must be less than stall_down_after (" +
                                                        format_duration(l.stall_down_after) + ")");
  }
  if (const field* x = m.find("reactor_stall_after")) l.reactor_stall_after = read_duration(*x);
  if (const field* x = m.find("hot_in_flight")) l.hot_in_flight = read_double_in(*x, 0, false, 1e6);
  if (const field* x = m.find("cool_in_flight")) {
    l.cool_in_flight = read_double_in(*x, 0, false, 1e6);
    if (l.hot_in_flight > 0 && l.cool_in_flight > l.hot_in_flight)
      fail_value(*x, "must be <= hot_in_flight (" + format_number(l.hot_in_flight) + ")");
  }
  if (const field* x = m.find("capacity_knee"))
    l.capacity_knee = read_double_in(*x, 0, false, 0.99);
  if (const field* x = m.find("capacity_at_hot")) {
    l.capacity_at_hot = read_double_in(*x, 0, true, 1);
  }
  if (const field* x = m.find("hot_capacity")) l.hot_capacity = read_double_in(*x, 0, true, 1);
}

void loader::read_spop(const field& f, spop& s) const {
  const mapping m = read_mapping(f, {"max_frame_size", "idle_timeout", "hello_timeout",
                                     "max_connections", "max_pipelined", "allow_from"});
  // 256: room for a HELLO with its capabilities; 65532: 64 KiB minus the 4-byte length, a
  // bound that keeps a connection's buffer small whatever HAProxy announces.
  if (const field* x = m.find("max_frame_size")) {
    s.max_frame_size = static_cast<std::uint32_t>(read_integer_in(*x, 256, 65532));
  }
  if (const field* x = m.find("idle_timeout")) s.idle_timeout = read_duration(*x);
  if (const field* x = m.find("hello_timeout")) s.hello_timeout = read_duration(*x);
  if (const field* x = m.find("max_connections")) {
    s.max_connections = static_cast<std::size_t>(read_integer_in(*x, 1, 1'000'000));
  }
  if (const field* x = m.find("max_pipelined")) {
    s.max_pipelined = static_cast<std::size_t>(read_integer_in(*x, 1, 65536));
  }
  if (const field* x = m.find("allow_from")) {
    for (const field& item : read_sequence(*x)) {
      const std::string a = read_string(item);
      if (!is_address_or_cidr(a))
        fail_value(item, "expected an IP address or CIDR like 10.0.0.0/8");
      s.allow_from.push_back(a);
    }
  }
}

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
