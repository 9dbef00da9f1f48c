#pragma once
// The affinity table: which worker a key was placed on, remembered for an idle TTL and capped at
// max_keys entries with least-recently-used eviction.
//
// It stores the 64-bit keyed hash of (key, pool), never the key: memory per entry is fixed, and a
// dump of the table (or its snapshot on disk) reveals no room IDs. Two distinct keys collide with
// probability 2^-64 per pair (about 3e-8 for a full table of 10^6 keys against 10^6 new keys a
// day for a year): a collision only means one room shares another's worker, which is harmless.
//
// Layout (one owner thread, no locks — see placement.hpp):
//
//   slots_ (open addressing, linear probing, load <= 1/2, power-of-two size)
//   +-------------------------------+
//   | node+1 (32 bits) | tag (32)   |  tag = low 32 bits of the hash; home slot = tag & mask;
//   +-------------------------------+  0 = empty; deletion by backward shift (no tombstones)
//            |
//            v
//   nodes_ [ hash | last_used_ms | prev | next | linked_at | worker | rank ]   32 bytes each
//            LRU list through prev/next: head_ = most recent ... tail_ = least recent
//
// A hit costs one probe run in slots_ and one node read. The node moves to the LRU head only when
// its list position is from an earlier 1024 ms period (memcached's ITEM_UPDATE_INTERVAL idea), so
// a hot key does not write its neighbours on every request: LRU order is exact to about a second.
// Memory: 32 bytes per node + 8 bytes per slot x (2..4 slots per key) = 48..64 bytes per key,
// plus the vectors' growth slack; memory_bytes() reports the exact allocation.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace spoa::routing {

class affinity_table {
 public:
  static constexpr std::uint16_t no_rank = 0xffff;    // rank unknown (restored from a snapshot)
  static constexpr std::uint16_t no_worker = 0xffff;  // its worker left the configuration
  static constexpr std::size_t max_capacity = std::size_t{1} << 30;

  struct entry {
    std::uint64_t hash;
    std::uint64_t last_used_ms;
    std::uint32_t prev;
    std::uint32_t next;
    std::uint32_t linked_at;  // last_used_ms >> 10 when the node last moved to the LRU head
    std::uint16_t worker;
    std::uint16_t rank;
  };
  static_assert(sizeof(entry) == 32);

  // max_keys is clamped to max_capacity; ttl_ms = 0 means entries never expire by idleness.
  affinity_table(std::size_t max_keys, std::uint64_t ttl_ms);

  // Evicts (LRU first) down to a lower cap.
  void set_limits(std::size_t max_keys, std::uint64_t ttl_ms);
  void reserve(std::size_t keys);

  // The live entry for `hash`, refreshed (last use = now, maybe moved to the LRU head); nullptr
  // when absent. An entry idle for ttl or longer is erased here and counted as a TTL eviction.
  // The pointer is valid until the next insert/erase/expire.
  entry* find(std::uint64_t hash, std::uint64_t now_ms) noexcept;
  // The same lookup without any change (explain, tests).
  const entry* peek(std::uint64_t hash, std::uint64_t now_ms) const noexcept;

  // Adds `hash` (which must be absent) as the most recent entry, evicting the least recently used
  // one when full. nullptr when max_keys is 0. May allocate (table growth).
  entry* insert(std::uint64_t hash, std::uint16_t worker, std::uint16_t rank, std::uint64_t now_ms);
  bool erase(std::uint64_t hash) noexcept;

  // Erases up to `limit` idle entries from the LRU tail; returns how many. Called a few at a time
  // on the hot path so expiry never costs a long pause.
  std::size_t expire(std::uint64_t now_ms, std::size_t limit) noexcept;

  // Reconfiguration: worker index i becomes old_to_new[i] (no_worker when gone); entries with an
  // index outside the span also become no_worker.
  void remap_workers(std::span<const std::uint16_t> old_to_new) noexcept;
  void clear() noexcept;

  // Least recently used first: restoring a dump in this order reproduces the LRU order.
  template <class F>
  void for_each_oldest_first(F&& f) const {
    for (std::uint32_t i = tail_; i != nil; i = nodes_[i].prev)
      f(nodes_[i]);
  }

  std::size_t size() const noexcept { return size_; }
  std::size_t max_keys() const noexcept { return max_keys_; }
  std::uint64_t ttl_ms() const noexcept { return ttl_ms_; }
  std::uint64_t evictions_lru() const noexcept { return evictions_lru_; }
  std::uint64_t evictions_ttl() const noexcept { return evictions_ttl_; }
  // Bytes allocated by the table (capacity of both vectors), for the bytes-per-key figure.
  std::size_t memory_bytes() const noexcept;

 private:
  static constexpr std::uint32_t nil = 0xffffffff;

  bool expired(const entry& e, std::uint64_t now_ms) const noexcept {
    return ttl_ms_ != 0 && now_ms >= e.last_used_ms && now_ms - e.last_used_ms >= ttl_ms_;
  }
  std::size_t find_slot(std::uint64_t hash) const noexcept;  // slots_.size() when absent
  void place_slot(std::uint64_t slot_value) noexcept;        // into the first empty slot
  void erase_slot(std::size_t i) noexcept;
  void erase_node(std::uint32_t n) noexcept;
  void unlink(std::uint32_t n) noexcept;
  void link_head(std::uint32_t n) noexcept;
  void grow();

  std::vector<std::uint64_t> slots_;
  std::vector<entry> nodes_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
  std::size_t max_keys_;
  std::uint64_t ttl_ms_;
  std::uint32_t head_ = nil;
  std::uint32_t tail_ = nil;
  std::uint32_t free_ = nil;  // erased nodes, chained through `next`
  std::uint64_t evictions_lru_ = 0;
  std::uint64_t evictions_ttl_ = 0;
};

}  // namespace spoa::routing
