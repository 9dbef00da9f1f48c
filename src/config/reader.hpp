#pragma once
// The YAML reader behind load.hpp: fields with their dotted paths, checked scalar readers, and the
// exact "FILE:LINE:COL: path: problem (got 'value')" messages. Internal to src/config: load.cpp
// reads the document (pools, workers, routes), sections.cpp the components' options sections.

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace spoa::config::detail {

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

bool mark_valid(const YAML::Mark& m);
YAML::Mark value_mark(const field& f);
YAML::Mark key_mark(const field& f);
std::string show(std::string_view s);
std::string got(const YAML::Node& v);
std::string join_path(std::string_view parent, std::string_view key);
std::string index_path(std::string_view parent, std::size_t i);
std::string format_number(double v);
std::size_t edit_distance(std::string_view a, std::string_view b);
bool is_name(std::string_view s);
bool is_query_param_name(std::string_view s);

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
  void read_shared(const field& f, shared& s) const;
  void read_control(const field& f, control& c) const;
  void read_responses(const field& f, responses& r) const;

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

}  // namespace spoa::config::detail
