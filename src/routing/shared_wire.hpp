#pragma once
// The shared affinity store's names and messages (README, "Several HAProxy + agent pairs"):
// pure string work, so the agent's Redis client (agent/shared_store.hpp) only moves bytes.
//
//   key      <prefix>a:<pool>:<16 hex digits of the table hash>   value: the worker's name
//   channel  <prefix>moves
//   message  "m1 <agent id> <pool> <16 hex> <worker>"               one move, pushed to every agent
//   message  "l1 <agent id> <worker> <mrps> <worker> <mrps> ..."    one agent's request rates per
//            worker, in thousandths of a request per second (decimal), on the same channel, every
//            load_interval: bounded load compares the sum over agents (placement::set_peer_rates)
//
// The table hash is keyed SipHash of (key, pool) (placement.hpp), identical on every agent that
// shares placement.hash_key: Redis holds no room ID, user or origin. Everything read back from
// Redis or the channel is untrusted (another agent, another version, or anybody with access to
// Redis): parse_* accept only the exact shapes above, bounded in length, and never throw.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spoa::routing::shared_wire {

inline constexpr std::size_t max_name = 128;     // pool, worker and agent names
inline constexpr std::size_t max_message = 512;  // a longer message is rejected unread

std::string key(std::string_view prefix, std::string_view pool, std::uint64_t table_hash);
std::string channel(std::string_view prefix);

struct move_message {
  std::string_view agent;
  std::string_view pool;
  std::uint64_t table_hash = 0;
  std::string_view worker;
};
std::string format_move(std::string_view agent, std::string_view pool, std::uint64_t table_hash,
                        std::string_view worker);
// The views point into `s`. nullopt for anything but the exact shape (unknown version, a field
// missing, empty or too long, a hash not 16 lowercase hex digits, trailing bytes).
std::optional<move_message> parse_move(std::string_view s) noexcept;

// A load report. Rates below 0.001 requests per second are left out; at most max_load_entries
// workers (the rest are left out too).
inline constexpr std::size_t max_load_entries = 4096;
inline constexpr std::size_t max_load_message = max_load_entries * (max_name + 16) + max_name + 8;
inline constexpr std::uint64_t max_mrps = 1'000'000'000'000;  // 10^9 requests per second
struct load_entry {
  std::string_view worker;
  std::uint64_t mrps = 0;  // thousandths of a request per second
};
std::string format_load(std::string_view agent,
                        const std::vector<std::pair<std::string_view, double>>& rates);
// Fills `out` (cleared first; the caller reserves max_load_entries once, so this never
// allocates) with views into `s`, and returns the agent. nullopt for anything but the exact shape:
// an odd field, a name that is not valid_name(), a rate that is not plain decimal digits up to
// max_mrps, more than max_load_entries pairs, a message longer than max_load_message.
std::optional<std::string_view> parse_load(std::string_view s,
                                           std::vector<load_entry>& out) noexcept;

// A key written by key() with this prefix: its pool and hash. For the restore scan.
struct key_parts {
  std::string_view pool;
  std::uint64_t table_hash = 0;
};
std::optional<key_parts> parse_key(std::string_view prefix, std::string_view k) noexcept;

// A worker name as stored in a value: non-empty, at most max_name bytes, printable ASCII, no
// spaces. Whether the worker exists is the caller's question.
bool valid_name(std::string_view s) noexcept;

}  // namespace spoa::routing::shared_wire
