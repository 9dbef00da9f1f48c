#pragma once
// YAML -> agent_config, validated eagerly. The first problem found ends the load and is reported
// as one line naming where it is and what was rejected:
//
//   FILE:LINE:COL: KEY: MESSAGE (got 'VALUE')
//
//   FILE   the path given to load_file, or the `source` given to load_string
//   LINE, COL  1-based, from yaml-cpp's marks: the value at fault, or its key when the value is
//          empty, or the enclosing mapping for a missing key
//   KEY    the dotted path of the value at fault: `placement.balance_factor`, `workers[3].pool`,
//          `pools.room.backend`, `routes.prepend[0].name`; `(root)` for the document itself
//   VALUE  the scalar as written (control bytes as \xNN, cut to 64 bytes + "..."); a value that
//          is not a scalar is shown as (got a mapping), (got a sequence) or (got null). Errors
//          about a key rather than a value (unknown, duplicate or missing key) have no "(got)".
//
// Errors that have no position use "FILE: MESSAGE": unreadable file ("FILE: cannot read:
// No such file or directory"), a file over max_config_bytes. A YAML syntax error is
// "FILE:LINE:COL: invalid YAML: what yaml-cpp said".
//
// A file is complete on its own: it is not merged with the embedded default. Only `pools` and
// `workers` are required; every omitted scalar keeps its default from config.hpp. Which values
// are accepted is documented next to each key in default_config.yaml.
//
// Checked here: syntax, unknown/duplicate keys, types, ranges, endpoints, URLs, durations, names
// (A-Z a-z 0-9 _ . : -), pool/worker/server cross-references, pools without workers, rule shape
// (name, pattern, pool, methods, key) and duplicate rule names. Not checked here: whether a rule
// pattern is well formed, whether a retargeted rule exists, shadowing between rules — the route
// table does that when it compiles the rules (rule_spec::source carries "FILE:LINE" for it).

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

#include "config/config.hpp"
// The whole loading API in one include: endpoint and duration parsing are used by callers too
// (--listen overrides, the scraper).
#include "config/duration.hpp"
#include "config/endpoint.hpp"

namespace spoa::config {

struct load_error {
  std::string message;  // one line, no trailing newline
};

// Larger inputs are rejected before parsing: a config is a few KiB, and yaml-cpp builds the whole
// document in memory.
inline constexpr std::size_t max_config_bytes = 1024 * 1024;

// Reads and validates the file at `path`; agent_config::source is set to `path`. Never throws
// for any content of the file (yaml-cpp's exceptions are caught here).
std::variant<agent_config, load_error> load_file(const std::string& path);

// As load_file, for a document already in memory; `source` names it in messages.
std::variant<agent_config, load_error> load_string(std::string_view yaml,
                                                   const std::string& source);

// The embedded default document (src/config/default_config.yaml, verbatim), printed by
// `synapse-spoa print-default-config`.
std::string_view default_yaml() noexcept;
// The project's version (CMake's PROJECT_VERSION, generated with default_yaml()): the one copy,
// printed by `synapse-spoa version` and exported as synapse_spoa_build_info{version}.
std::string_view version() noexcept;

// default_yaml() loaded with source "<embedded default>". The embedded document is validated by
// the unit tests, so this cannot fail in a tested build; if it ever does it throws
// std::logic_error (a build defect, not an input error).
agent_config default_config();

}  // namespace spoa::config
