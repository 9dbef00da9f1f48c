#pragma once
// The affinity snapshot: what the affinity table remembers, saved so a restart keeps rooms on
// their warm workers. msgpack, one map (keys written in this order):
//
//   {"format": "synapse-spoa-affinity", "version": 1,
//    "hash_key_id": <u64 fingerprint of the SipHash key (siphash.hpp key_fingerprint)>,
//    "workers": [name, ...],                                  // index -> worker name
//    "entries": [[table_hash u64, worker index, last_used Unix ms], ...]}   // oldest first
//
// Unknown map keys are skipped (forward compatibility within version 1). The decoder is a small
// bounded reader written for this one document: it allocates nothing per the counts it reads
// before checking them against the bytes that remain and against the caller's limits, and it
// reports "truncated" / "malformed: ..." / "version N != 1" as values, never by throwing.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace spoa::routing::snapshot {

inline constexpr std::string_view format_name = "synapse-spoa-affinity";
inline constexpr std::uint64_t format_version = 1;
inline constexpr std::size_t max_worker_name = 1024;

struct entry {
  std::uint64_t hash = 0;
  std::uint32_t worker = 0;
  std::uint64_t last_used_unix_ms = 0;
};

struct document {
  std::uint64_t hash_key_id = 0;
  std::vector<std::string> workers;
  std::vector<entry> entries;  // oldest first
};

// msgpack bytes of `doc` (msgpack-cxx's packer).
std::string encode(const document& doc);

struct decode_result {
  bool ok = false;
  std::string error;  // "truncated", "malformed: ...", "version 7 != 1", "not an affinity snapshot"
  document doc;
};
// At most max_entries entries are kept (the newest, i.e. the last ones); more than max_workers
// worker names is malformed.
decode_result decode(std::string_view bytes, std::size_t max_entries, std::size_t max_workers);

}  // namespace spoa::routing::snapshot
