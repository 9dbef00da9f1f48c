#pragma once
// Persistence of the affinity table: the file side of routing/snapshot.hpp's format. The pure
// placement copies its table into a snapshot::document and restores from one; reading, writing,
// fsync and the system clock are here, in the shell.

#include <cstdint>
#include <string>
#include <string_view>

#include "routing/placement.hpp"
#include "routing/snapshot.hpp"

namespace spoa::agent {

// Writes `bytes` to path.tmp, fsyncs it, renames it over `path`, fsyncs the directory.
bool write_file_atomic(const std::string& path, std::string_view bytes, std::string* error);

enum class snapshot_read : std::uint8_t { ok, missing, too_large, error };
// Reads the whole file if it is at most max_bytes long.
snapshot_read read_file(const std::string& path, std::size_t max_bytes, std::string* out,
                        std::string* error);

// Sorts (oldest first), encodes and writes a snapshot document (temp file + fsync + rename).
// Thread-safe: touches only its arguments and the file system.
bool write_snapshot(const std::string& path, routing::snapshot::document doc, std::string* error);

// Copy (on the owning thread) + write_snapshot. unix_now_ms = 0 reads the system clock.
bool save_snapshot(const routing::placement& p, const std::string& path, std::uint64_t now_ms,
                   std::uint64_t unix_now_ms, std::string* error);

// Reads, decodes (bounded by the table's max_keys) and restores; never throws. The status is
// "restored N keys", "missing", "ignored: truncated", "ignored: version 7 != 1", ...
std::string load_snapshot(routing::placement& p, const std::string& path, std::uint64_t now_ms,
                          std::uint64_t unix_now_ms);

// Milliseconds since the Unix epoch (snapshot ages are Unix times).
std::uint64_t unix_now_ms();

}  // namespace spoa::agent
