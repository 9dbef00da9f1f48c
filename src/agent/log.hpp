#pragma once
// A minimal leveled logger to stderr: one line per event. The agent never logs request secrets:
// it never receives any (HAProxy sends derived keys only), it logs no request paths or keys above
// debug level, and the shared store's password is never part of a message or a field.
//
// Two formats (`log_format` in the config):
//   text  2026-12-02T16:02:44.123Z info load: room3: healthy -> down (3 consecutive failures: ..)
//         timestamp, level, message; the fields below are not shown (the message says it);
//   json  {"ts":"2026-12-02T16:02:44.123Z","level":"info","msg":"load: room3: ...",
//          "event":"worker_state","worker":"room3","from":"healthy","to":"down",...}
//         one object per line: every string is escaped (control characters as \uXXXX, bytes
//         that are not UTF-8 as U+FFFD), so a message never spans lines or breaks the JSON, which
//         is what journald and log shippers want. `ts`, `level` and `msg` come first, then the
//         event's fields in the order given. Numbers have six significant digits (as %g);
//         one that is not finite is null.
//
// Cost: the level check comes first and is all a filtered call does; callers that build a
// message or fields with work of their own check log_enabled() before building them.

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace spoa::agent {

enum class log_level { debug, info, warn, error };
enum class log_format { text, json };

void set_log_level(log_level l) noexcept;
bool parse_log_level(std::string_view s, log_level* out) noexcept;
bool log_enabled(log_level l) noexcept;
void set_log_format(log_format f) noexcept;
bool parse_log_format(std::string_view s, log_format* out) noexcept;

// One structured field of an event: a name and a string, number, integer, boolean, or a JSON
// text the caller built (with append_json_string for its strings). Views only: a field lives for
// the one call it is passed to.
struct log_field {
  enum class kind : std::uint8_t { string, number, integer, boolean, json };
  std::string_view name;
  kind k = kind::string;
  std::string_view text;  // string and json
  double number = 0;
  std::int64_t integer = 0;
  bool boolean = false;

  log_field(std::string_view n, std::string_view v) : name(n), k(kind::string), text(v) {}
  log_field(std::string_view n, const char* v) : name(n), k(kind::string), text(v) {}
  log_field(std::string_view n, const std::string& v) : name(n), k(kind::string), text(v) {}
  log_field(std::string_view n, double v) : name(n), k(kind::number), number(v) {}
  log_field(std::string_view n, bool v) : name(n), k(kind::boolean), boolean(v) {}
  template <std::integral T>
  requires(!std::same_as<T, bool>) log_field(std::string_view n, T v)
      : name(n), k(kind::integer), integer(static_cast<std::int64_t>(v)) {}
  // `json` must be one complete JSON value.
  static log_field raw(std::string_view n, std::string_view json) {
    log_field f(n, json);
    f.k = kind::json;
    return f;
  }
};

// Appends `s` as a JSON string, quotes included (see the escaping above).
void append_json_string(std::string& out, std::string_view s);

// The line for one event, newline included, at `unix_ms` (milliseconds since the Unix epoch).
// Pure: what log() writes, for tests.
std::string format_log_line(log_format f, log_level l, std::uint64_t unix_ms,
                            std::string_view message, std::span<const log_field> fields = {});

// Where lines go: stderr (one fwrite per line) unless a test installs its own sink; null restores
// stderr.
using log_sink = void (*)(std::string_view line);
void set_log_sink(log_sink s) noexcept;

void log(log_level l, std::string_view message, std::span<const log_field> fields = {});
inline void log(log_level l, std::string_view message, std::initializer_list<log_field> fields) {
  log(l, message, std::span<const log_field>(fields.begin(), fields.size()));
}

inline void log_info(std::string_view m, std::initializer_list<log_field> f = {}) {
  log(log_level::info, m, f);
}
inline void log_warn(std::string_view m, std::initializer_list<log_field> f = {}) {
  log(log_level::warn, m, f);
}
inline void log_error(std::string_view m, std::initializer_list<log_field> f = {}) {
  log(log_level::error, m, f);
}

}  // namespace spoa::agent
