#include "agent/log.hpp"

#include "routing/json.hpp"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <string>

namespace spoa::agent {
namespace {
log_level g_level = log_level::info;
log_format g_format = log_format::text;
log_sink g_sink = nullptr;

const char* name(log_level l) {
  switch (l) {
    case log_level::debug:
      return "debug";
    case log_level::info:
      return "info";
    case log_level::warn:
      return "warn";
    case log_level::error:
      return "error";
  }
  return "info";
}

// "2026-12-02T16:02:44.123Z": RFC 3339, UTC, milliseconds.
void append_timestamp(std::string& out, std::uint64_t unix_ms) {
  const std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[40];
  const std::size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  out.append(stamp, n);
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(unix_ms % 1000));
  out += frac;
}

// The length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF), 0 when there is none.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const auto cont = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xc0) == 0x80; };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xe0 && b(1) < 0xa0) return 0;   // overlong
    if (c == 0xed && b(1) >= 0xa0) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xf0 && b(1) < 0x90) return 0;   // overlong
    if (c == 0xf4 && b(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

void append_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  // Six significant digits, as printf's %g: the figures are measurements (an EWMA of CPU, a
  // reactor lag, an interval), and 0.00999626 reads better than 0.009996264130643613.
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general, 6);
  out.append(buf, r.ptr);
}

void append_field(std::string& out, const log_field& f) {
  out += ',';
  append_json_string(out, f.name);
  out += ':';
  switch (f.k) {
    case log_field::kind::string:
      append_json_string(out, f.text);
      break;
    case log_field::kind::number:
      append_number(out, f.number);
      break;
    case log_field::kind::integer: {
      char buf[24];
      const auto r = std::to_chars(buf, buf + sizeof buf, f.integer);
      out.append(buf, r.ptr);
      break;
    }
    case log_field::kind::boolean:
      out += f.boolean ? "true" : "false";
      break;
    case log_field::kind::json:
      out += f.text.empty() ? std::string_view("null") : f.text;
      break;
  }
}

void write_stderr(std::string_view line) {
  std::fwrite(line.data(), 1, line.size(), stderr);
}
}  // namespace

void set_log_level(log_level l) noexcept {
  g_level = l;
}

bool parse_log_level(std::string_view s, log_level* out) noexcept {
  for (auto l : {log_level::debug, log_level::info, log_level::warn, log_level::error}) {
    if (s == name(l)) {
      *out = l;
      return true;
    }
  }
  return false;
}

bool log_enabled(log_level l) noexcept {
  return l >= g_level;
}

void set_log_format(log_format f) noexcept {
  g_format = f;
}

bool parse_log_format(std::string_view s, log_format* out) noexcept {
  if (s == "text") {
    *out = log_format::text;
  } else if (s == "json") {
    *out = log_format::json;
  } else {
    return false;
  }
  return true;
}

void set_log_sink(log_sink s) noexcept {
  g_sink = s;
}

void append_json_string(std::string& out, std::string_view s) {
  // ASCII runs go through the project's JSON escaper; a log line also turns bytes that are not
  // UTF-8 into U+FFFD and escapes DEL, so journald and jq never see a broken line.
  out += '"';
  std::size_t run = 0;  // start of the pending ASCII run
  const auto flush = [&](std::size_t i) {
    routing::json::append_escaped(out, s.substr(run, i - run));
  };
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x7f) {
      ++i;
      continue;
    }
    flush(i);
    if (c == 0x7f) {
      out += "\\u007f";
      ++i;
    } else if (const std::size_t n = utf8_length(s, i); n == 0) {
      out += "\\ufffd";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
    run = i;
  }
  flush(s.size());
  out += '"';
}

std::string format_log_line(log_format f, log_level l, std::uint64_t unix_ms,
                            std::string_view message, std::span<const log_field> fields) {
  std::string line;
  if (f == log_format::text) {
    line.reserve(message.size() + 48);
    append_timestamp(line, unix_ms);
    line += ' ';
    line += name(l);
    line += ' ';
    line += message;
    line += '\n';
    return line;
  }
  line.reserve(message.size() + 64 + 32 * fields.size());
  line += "{\"ts\":\"";
  append_timestamp(line, unix_ms);
  line += "\",\"level\":\"";
  line += name(l);
  line += "\",\"msg\":";
  append_json_string(line, message);
  for (const log_field& field : fields)
    append_field(line, field);
  line += "}\n";
  return line;
}

void log(log_level l, std::string_view message, std::span<const log_field> fields) {
  if (!log_enabled(l)) return;
  const auto unix_ms =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  const std::string line = format_log_line(g_format, l, unix_ms, message, fields);
  (g_sink ? g_sink : write_stderr)(line);
}

}  // namespace spoa::agent
