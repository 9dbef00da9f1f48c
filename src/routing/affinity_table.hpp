#pragma once
// The affinity table: which worker a key was placed on, remembered for an idle TTL and capped at
// max_keys entries with least-recently-used eviction.
//
// It stores the 64-bit keyed hash of (key, pool), never the key: memory per entry is fixed, and a
// dump of the table (or its snapshot on disk) reveals no room IDs. Two distinct keys collide with
// probability 2^-64 per pair (about 3e-8 for a full table of 10^6 keys against 10^6 new keys a
// day for a year): a collision only means one room shares another's worker, which is harmless.
//
// Layout (one owner thread, no locks — see placement.hpp): the entries live in the hash table
// itself, so a hit touches one cache line (a separate index -> node array costs two dependent
// DRAM misses per hit with a million keys).
//
//   slots_ (open addressing, linear probing, power-of-two size, load <= 0.7)
//   +------+--------------+------+------+-----------+--------+------+
//   | hash | last_used_ms | prev | next | linked_at | worker | rank |   32 bytes
//   +------+--------------+------+------+-----------+--------+------+
//   home slot = hash & mask; prev == vacant marks an empty slot; deletion by backward shift
//   (Knuth 6.4 Algorithm R), fixing the LRU neighbours' links of every entry it moves.
//   LRU list through prev/next (slot indices): head_ = most recent ... tail_ = least recent.
//
// A hit moves the entry to the LRU head only when its list position is at least
// `lru_resolution_s` old (memcached's ITEM_UPDATE_INTERVAL, 60 s there), so a hit rarely writes
// its neighbours: LRU order is exact to that resolution, which is all a cap of a million
// entries idle for up to an hour needs.
// Memory: 32 bytes / load factor = 46..92 bytes per key (load between 0.35 and 0.7), in huge
// pages where the kernel allows (transparent_hugepage = madvise or always).
// memory_bytes() reports the exact allocation.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace spoa::routing {

class affinity_table {
 public:
  // `rank`: the worker's position in the key's ranking when placed (0..0x7ffe); no_rank when
  // unknown (restored from a snapshot); displaced | h when the key was moved off its home
  // worker, at rank h, because that worker was down (placement.hpp, "Sticky home").
  static constexpr std::uint16_t no_rank = 0xffff;
  static constexpr std::uint16_t displaced = 0x8000;
  static constexpr bool is_displaced(std::uint16_t rank) noexcept {
    return rank != no_rank && (rank & displaced) != 0;
  }
  static constexpr std::uint16_t home_rank(std::uint16_t rank) noexcept {
    return static_cast<std::uint16_t>(rank & ~displaced);
  }
  static constexpr std::uint16_t no_worker = 0xffff;  // its worker left the configuration
  static constexpr std::size_t max_capacity = std::size_t{1} << 30;

  struct entry {
    std::uint64_t hash;
    std::uint64_t last_used_ms;
    std::uint32_t prev;  // LRU neighbours as slot indices; prev == vacant: empty slot
    std::uint32_t next;
    std::uint32_t linked_at;  // time (seconds) when the node last moved to the LRU head
    std::uint16_t worker;
    std::uint16_t rank;
  };
  static_assert(sizeof(entry) == 32);

  // max_keys is clamped to max_capacity; ttl_ms = 0 means entries never expire by idleness;
  // lru_resolution_s >= 1.
  affinity_table(std::size_t max_keys, std::uint64_t ttl_ms, std::uint32_t lru_resolution_s = 60);

  // Evicts (LRU first) down to a lower cap.
  void set_limits(std::size_t max_keys, std::uint64_t ttl_ms);
  void reserve(std::size_t keys);

  // The live entry for `hash`, refreshed (last use = now, maybe moved to the LRU head); nullptr
  // when absent. An entry idle for ttl or longer is erased here and counted as a TTL eviction.
  // The pointer is valid until the next insert/erase/expire/set_limits (entries move).
  entry* find(std::uint64_t hash, std::uint64_t now_ms) noexcept;
  // The same lookup without any change (explain, tests).
  const entry* peek(std::uint64_t hash, std::uint64_t now_ms) const noexcept;

  // The lookup in two halves, for a caller that looks first and changes later (placement's
  // decide() then place()): slot() is the slot holding `hash` (live or idle past the TTL), npos
  // when absent, and changes nothing; peek_at()/find_at() are peek()/find() for that slot. The
  // index stays valid until the next insert/erase/expire/set_limits.
  static constexpr std::size_t npos = ~std::size_t{0};
  std::size_t slot(std::uint64_t hash) const noexcept {
    const std::size_t i = find_slot(hash);
    return i == slot_count_ ? npos : i;
  }
  const entry* peek_at(std::size_t slot, std::uint64_t now_ms) const noexcept {
    return slot == npos || expired(slots_[slot], now_ms) ? nullptr : &slots_[slot];
  }
  entry* find_at(std::size_t slot, std::uint64_t now_ms) noexcept;

  // Starts loading the cache lines a lookup of `hash` probes first (its home slot, and the next
  // slot when that lies in the next line), so the DRAM miss of a cold entry overlaps whatever
  // the caller computes before the lookup. Changes nothing.
  void prefetch(std::uint64_t hash) const noexcept {
    const std::size_t i = hash & mask_;
    __builtin_prefetch(&slots_[i]);
    if (i & 1) __builtin_prefetch(&slots_[(i + 1) & mask_]);
  }

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
  // Every displaced entry's rank becomes no_rank (its home position means nothing any more).
  void forget_homes() noexcept;
  // Entries currently displaced from their home: a full scan, for tests and diagnostics.
  std::size_t displaced_count() const noexcept;
  void clear() noexcept;

  // Least recently used first: restoring a dump in this order reproduces the LRU order.
  template <class F>
  void for_each_oldest_first(F&& f) const {
    for (std::uint32_t i = tail_; i != nil; i = slots_[i].prev)
      f(slots_[i]);
  }

  // Every live entry in slot order (a sequential scan; no particular order).
  template <class F>
  void for_each_slot(F&& f) const {
    for (std::size_t i = 0; i < slot_count_; ++i)
      if (slots_[i].prev != vacant) f(slots_[i]);
  }

  // The entries used at or after `since_ms`, newest first, without a full scan: the walk from the
  // LRU head stops at the first entry linked to the head more than lru_resolution_s before
  // since_ms. Exact, because an entry used at t >= since_ms was linked at t or at most
  // lru_resolution_s before t (find_at() relinks anything older), and linked_at only decreases
  // along the list. For the shared store's batched TTL refresh (agent/shared_store.hpp).
  template <class F>
  void for_each_used_since(std::uint64_t since_ms, F&& f) const {
    const auto since_s = static_cast<std::uint32_t>(since_ms / 1000);
    const std::uint32_t stop = since_s > lru_resolution_s_ ? since_s - lru_resolution_s_ : 0;
    for (std::uint32_t i = head_; i != nil; i = slots_[i].next) {
      if (slots_[i].linked_at < stop) break;
      if (slots_[i].last_used_ms >= since_ms) f(slots_[i]);
    }
  }
  std::size_t size() const noexcept { return size_; }
  // Entries per worker index (no_worker counts the keys of workers that left), kept exact on
  // every insert, erase, eviction, move and remap: a gauge, not a scan.
  std::uint32_t keys_on(std::uint16_t worker) const noexcept { return per_worker_[worker]; }
  // Moves an entry to another worker (placement's "moved"), keeping keys_on() exact.
  void set_worker(entry& e, std::uint16_t worker) noexcept {
    --per_worker_[e.worker];
    ++per_worker_[worker];
    e.worker = worker;
  }
  std::size_t max_keys() const noexcept { return max_keys_; }
  std::uint64_t ttl_ms() const noexcept { return ttl_ms_; }
  std::uint64_t evictions_lru() const noexcept { return evictions_lru_; }
  std::uint64_t evictions_ttl() const noexcept { return evictions_ttl_; }
  // Bytes allocated by the table (capacity of both vectors), for the bytes-per-key figure.
  std::size_t memory_bytes() const noexcept;

 private:
  static constexpr std::uint32_t nil = 0xffffffff;
  static constexpr std::uint32_t vacant = 0xfffffffe;

  bool expired(const entry& e, std::uint64_t now_ms) const noexcept {
    return ttl_ms_ != 0 && now_ms >= e.last_used_ms && now_ms - e.last_used_ms >= ttl_ms_;
  }
  std::size_t find_slot(std::uint64_t hash) const noexcept;  // slot_count_ when absent
  std::uint32_t free_slot(std::uint64_t hash) const noexcept;
  void erase_at(std::uint32_t i) noexcept;
  void unlink(std::uint32_t i) noexcept;
  void link_head(std::uint32_t i) noexcept;
  void relink_moved(std::uint32_t i) noexcept;  // neighbours of an entry now at slot i
  void rehash(std::size_t slots);

  // The slot array: 2 MiB aligned and madvise(MADV_HUGEPAGE)d when that large, because with a
  // million keys a lookup otherwise pays a page-table walk (more DRAM misses) on top of its one
  // cache miss. Falls back to ordinary pages silently.
  struct free_deleter {
    void operator()(entry* p) const noexcept;
  };
  static std::unique_ptr<entry[], free_deleter> allocate(std::size_t n);

  std::unique_ptr<entry[], free_deleter> slots_;
  std::size_t slot_count_ = 0;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
  std::vector<std::uint32_t> per_worker_ = std::vector<std::uint32_t>(0x10000, 0);
  std::size_t max_keys_;
  std::uint64_t ttl_ms_;
  std::uint32_t lru_resolution_s_;
  std::uint32_t head_ = nil;
  std::uint32_t tail_ = nil;
  std::uint64_t evictions_lru_ = 0;
  std::uint64_t evictions_ttl_ = 0;
};

}  // namespace spoa::routing
