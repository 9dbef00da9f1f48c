#include "routing/affinity_table.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <new>

namespace spoa::routing {
namespace {

constexpr std::size_t min_slots = 16;
// Grow when an insert would push the load above 7/10.
constexpr bool over_load(std::size_t entries, std::size_t slots) noexcept {
  return entries * 10 > slots * 7;
}

constexpr std::size_t huge_page = std::size_t{2} << 20;

}  // namespace

void affinity_table::free_deleter::operator()(entry* p) const noexcept {
  std::free(p);
}

std::unique_ptr<affinity_table::entry[], affinity_table::free_deleter> affinity_table::allocate(
    std::size_t n) {
  const std::size_t bytes = n * sizeof(entry);
  void* p;
  if (bytes >= huge_page) {
    p = std::aligned_alloc(huge_page, (bytes + huge_page - 1) / huge_page * huge_page);
#ifdef MADV_HUGEPAGE
    if (p) (void)::madvise(p, bytes, MADV_HUGEPAGE);
#endif
  } else {
    p = std::malloc(bytes);
  }
  if (!p) throw std::bad_alloc();
  auto* e = static_cast<entry*>(p);
  for (std::size_t i = 0; i < n; ++i)
    new (e + i) entry{0, 0, vacant, nil, 0, 0, 0};
  return std::unique_ptr<entry[], free_deleter>(e);
}

affinity_table::affinity_table(std::size_t max_keys, std::uint64_t ttl_ms,
                               std::uint32_t lru_resolution_s)
    : slots_(allocate(min_slots)),
      slot_count_(min_slots),
      mask_(min_slots - 1),
      max_keys_(std::min(max_keys, max_capacity)),
      ttl_ms_(ttl_ms),
      lru_resolution_s_(lru_resolution_s ? lru_resolution_s : 1) {}

void affinity_table::set_limits(std::size_t max_keys, std::uint64_t ttl_ms) {
  max_keys_ = std::min(max_keys, max_capacity);
  ttl_ms_ = ttl_ms;
  while (size_ > max_keys_) {
    erase_at(tail_);
    ++evictions_lru_;
  }
}

void affinity_table::reserve(std::size_t keys) {
  keys = std::min(keys, max_keys_);
  std::size_t n = slot_count_;
  while (over_load(keys, n))
    n *= 2;
  if (n != slot_count_) rehash(n);
}

std::size_t affinity_table::find_slot(std::uint64_t hash) const noexcept {
  for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
    const entry& e = slots_[i];
    if (e.prev == vacant) return slot_count_;
    if (e.hash == hash) return i;
  }
}

std::uint32_t affinity_table::free_slot(std::uint64_t hash) const noexcept {
  std::size_t i = hash & mask_;
  while (slots_[i].prev != vacant)
    i = (i + 1) & mask_;
  return static_cast<std::uint32_t>(i);
}

void affinity_table::unlink(std::uint32_t i) noexcept {
  entry& e = slots_[i];
  if (e.prev != nil)
    slots_[e.prev].next = e.next;
  else
    head_ = e.next;
  if (e.next != nil)
    slots_[e.next].prev = e.prev;
  else
    tail_ = e.prev;
}

void affinity_table::link_head(std::uint32_t i) noexcept {
  entry& e = slots_[i];
  e.prev = nil;
  e.next = head_;
  if (head_ != nil)
    slots_[head_].prev = i;
  else
    tail_ = i;
  head_ = i;
}

void affinity_table::relink_moved(std::uint32_t i) noexcept {
  const entry& e = slots_[i];
  if (e.prev != nil)
    slots_[e.prev].next = i;
  else
    head_ = i;
  if (e.next != nil)
    slots_[e.next].prev = i;
  else
    tail_ = i;
}

// Unlinks slot i from the LRU list, then closes the hole by backward shift (Knuth, TAOCP vol. 3,
// 6.4 Algorithm R): an entry after the hole moves into it unless its home slot lies cyclically
// in (hole, here]. Every moved entry's LRU neighbours are pointed at its new slot.
void affinity_table::erase_at(std::uint32_t i) noexcept {
  --per_worker_[slots_[i].worker];
  unlink(i);
  std::size_t hole = i;
  std::size_t j = i;
  for (;;) {
    j = (j + 1) & mask_;
    if (slots_[j].prev == vacant) break;
    const std::size_t home = slots_[j].hash & mask_;
    const bool stays = (hole <= j) ? (hole < home && home <= j) : (hole < home || home <= j);
    if (!stays) {
      slots_[hole] = slots_[j];
      relink_moved(static_cast<std::uint32_t>(hole));
      hole = j;
    }
  }
  slots_[hole].prev = vacant;
  --size_;
}

// Rebuilds the table at `slots` entries, re-inserting oldest first so the LRU order survives.
void affinity_table::rehash(std::size_t slots) {
  std::unique_ptr<entry[], free_deleter> old = allocate(slots);
  old.swap(slots_);
  slot_count_ = slots;
  mask_ = slots - 1;
  std::uint32_t i = tail_;
  head_ = tail_ = nil;
  while (i != nil) {
    const entry& e = old[i];
    const std::uint32_t at = free_slot(e.hash);
    slots_[at] = e;
    link_head(at);
    i = e.prev;
  }
}

affinity_table::entry* affinity_table::find(std::uint64_t hash, std::uint64_t now_ms) noexcept {
  return find_at(slot(hash), now_ms);
}

affinity_table::entry* affinity_table::find_at(std::size_t i, std::uint64_t now_ms) noexcept {
  if (i == npos) return nullptr;
  entry& e = slots_[i];
  if (expired(e, now_ms)) {
    erase_at(static_cast<std::uint32_t>(i));
    ++evictions_ttl_;
    return nullptr;
  }
  if (now_ms > e.last_used_ms) e.last_used_ms = now_ms;
  const auto now_s = static_cast<std::uint32_t>(now_ms / 1000);
  if (now_s - e.linked_at >= lru_resolution_s_) {  // unsigned: wraps correctly after 136 years
    if (head_ != i) {
      unlink(static_cast<std::uint32_t>(i));
      link_head(static_cast<std::uint32_t>(i));
    }
    e.linked_at = now_s;
  }
  return &e;
}

const affinity_table::entry* affinity_table::peek(std::uint64_t hash,
                                                  std::uint64_t now_ms) const noexcept {
  const std::size_t i = find_slot(hash);
  if (i == slot_count_) return nullptr;
  const entry& e = slots_[i];
  return expired(e, now_ms) ? nullptr : &e;
}

affinity_table::entry* affinity_table::insert(std::uint64_t hash, std::uint16_t worker,
                                              std::uint16_t rank, std::uint64_t now_ms) {
  if (max_keys_ == 0) return nullptr;
  if (size_ >= max_keys_) {
    erase_at(tail_);
    ++evictions_lru_;
  }
  if (over_load(size_ + 1, slot_count_)) rehash(slot_count_ * 2);
  const std::uint32_t i = free_slot(hash);
  slots_[i] =
      entry{hash, now_ms, nil, nil, static_cast<std::uint32_t>(now_ms / 1000), worker, rank};
  link_head(i);
  ++size_;
  ++per_worker_[worker];
  return &slots_[i];
}

bool affinity_table::erase(std::uint64_t hash) noexcept {
  const std::size_t i = find_slot(hash);
  if (i == slot_count_) return false;
  erase_at(static_cast<std::uint32_t>(i));
  return true;
}

std::size_t affinity_table::expire(std::uint64_t now_ms, std::size_t limit) noexcept {
  std::size_t n = 0;
  while (n < limit && tail_ != nil && expired(slots_[tail_], now_ms)) {
    erase_at(tail_);
    ++evictions_ttl_;
    ++n;
  }
  return n;
}

void affinity_table::remap_workers(std::span<const std::uint16_t> old_to_new) noexcept {
  std::fill(per_worker_.begin(), per_worker_.end(), 0);
  for (std::uint32_t i = head_; i != nil; i = slots_[i].next) {
    entry& e = slots_[i];
    e.worker = e.worker < old_to_new.size() ? old_to_new[e.worker] : no_worker;
    ++per_worker_[e.worker];
  }
}

void affinity_table::forget_homes() noexcept {
  for (std::size_t i = 0; i < slot_count_; ++i)
    if (slots_[i].prev != vacant && is_displaced(slots_[i].rank)) slots_[i].rank = no_rank;
}

std::size_t affinity_table::displaced_count() const noexcept {
  std::size_t n = 0;
  for_each_slot([&](const entry& e) { n += is_displaced(e.rank) ? 1 : 0; });
  return n;
}

void affinity_table::clear() noexcept {
  for (std::size_t i = 0; i < slot_count_; ++i)
    slots_[i].prev = vacant;
  size_ = 0;
  std::fill(per_worker_.begin(), per_worker_.end(), 0);
  head_ = tail_ = nil;
}

std::size_t affinity_table::memory_bytes() const noexcept {
  return slot_count_ * sizeof(entry);
}

}  // namespace spoa::routing
