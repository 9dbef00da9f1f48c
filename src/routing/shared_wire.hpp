#pragma once
// The shared affinity store's names and messages (README, "Several HAProxy + agent pairs"):
// pure string work, so the agent's Redis client (agent/shared_store.hpp) only moves bytes.
//
//   key      <prefix>a:<pool>:<16 hex digits of the table hash>   value: the worker's name
//   channel  <prefix>moves
//   message  "m1 <agent id> <pool> <16 hex> <worker>"               one move, pushed to every agent
//
// The table hash is keyed SipHash of (key, pool) (placement.hpp), identical on every agent that
// shares placement.hash_key: Redis holds no room ID, user or origin. Everything read back from
// Redis or the channel is untrusted (another agent, another version, or anybody with access to
// Redis): parse_* accept only the exact shapes above, bounded in length, and never throw.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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
