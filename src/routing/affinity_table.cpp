#include "routing/affinity_table.hpp"

#include <algorithm>

namespace spoa::routing {
namespace {

constexpr std::size_t min_slots = 16;

constexpr std::uint64_t make_slot(std::uint64_t hash, std::uint32_t node) noexcept {
  return (static_cast<std::uint64_t>(node) + 1) << 32 | (hash & 0xffffffffULL);
}
constexpr std::uint32_t slot_node(std::uint64_t slot) noexcept {
  return static_cast<std::uint32_t>((slot >> 32) - 1);
}
constexpr std::uint32_t slot_tag(std::uint64_t slot) noexcept {
  return static_cast<std::uint32_t>(slot);
}

}  // namespace

affinity_table::affinity_table(std::size_t max_keys, std::uint64_t ttl_ms)
    : slots_(min_slots, 0),
      mask_(min_slots - 1),
      max_keys_(std::min(max_keys, max_capacity)),
      ttl_ms_(ttl_ms) {}

void affinity_table::set_limits(std::size_t max_keys, std::uint64_t ttl_ms) {
  max_keys_ = std::min(max_keys, max_capacity);
  ttl_ms_ = ttl_ms;
  while (size_ > max_keys_) {
    erase_node(tail_);
    ++evictions_lru_;
  }
}

void affinity_table::reserve(std::size_t keys) {
  keys = std::min(keys, max_keys_);
  nodes_.reserve(keys);
  while ((slots_.size() >> 1) < keys)
    grow();
}

std::size_t affinity_table::find_slot(std::uint64_t hash) const noexcept {
  const auto tag = static_cast<std::uint32_t>(hash);
  for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
    const std::uint64_t s = slots_[i];
    if (s == 0) return slots_.size();
    if (slot_tag(s) == tag && nodes_[slot_node(s)].hash == hash) return i;
  }
}

void affinity_table::place_slot(std::uint64_t slot_value) noexcept {
  std::size_t i = slot_tag(slot_value) & mask_;
  while (slots_[i] != 0)
    i = (i + 1) & mask_;
  slots_[i] = slot_value;
}

// Backward-shift deletion for linear probing (Knuth, TAOCP vol. 3, 6.4 Algorithm R): entries
// after the hole move into it unless their home slot lies cyclically in (hole, here].
void affinity_table::erase_slot(std::size_t i) noexcept {
  std::size_t j = i;
  for (;;) {
    j = (j + 1) & mask_;
    const std::uint64_t s = slots_[j];
    if (s == 0) break;
    const std::size_t home = slot_tag(s) & mask_;
    const bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
    if (!stays) {
      slots_[i] = s;
      i = j;
    }
  }
  slots_[i] = 0;
}

void affinity_table::grow() {
  std::vector<std::uint64_t> old(slots_.size() * 2, 0);
  old.swap(slots_);
  mask_ = slots_.size() - 1;
  for (std::uint64_t s : old)
    if (s != 0) place_slot(s);
}

void affinity_table::unlink(std::uint32_t n) noexcept {
  entry& e = nodes_[n];
  if (e.prev != nil)
    nodes_[e.prev].next = e.next;
  else
    head_ = e.next;
  if (e.next != nil)
    nodes_[e.next].prev = e.prev;
  else
    tail_ = e.prev;
  e.prev = e.next = nil;
}

void affinity_table::link_head(std::uint32_t n) noexcept {
  entry& e = nodes_[n];
  e.prev = nil;
  e.next = head_;
  if (head_ != nil)
    nodes_[head_].prev = n;
  else
    tail_ = n;
  head_ = n;
}

void affinity_table::erase_node(std::uint32_t n) noexcept {
  const std::size_t i = find_slot(nodes_[n].hash);
  if (i < slots_.size()) erase_slot(i);
  unlink(n);
  nodes_[n].next = free_;
  free_ = n;
  --size_;
}

affinity_table::entry* affinity_table::find(std::uint64_t hash, std::uint64_t now_ms) noexcept {
  const std::size_t i = find_slot(hash);
  if (i == slots_.size()) return nullptr;
  const std::uint32_t n = slot_node(slots_[i]);
  entry& e = nodes_[n];
  if (expired(e, now_ms)) {
    erase_slot(i);
    unlink(n);
    e.next = free_;
    free_ = n;
    --size_;
    ++evictions_ttl_;
    return nullptr;
  }
  if (now_ms > e.last_used_ms) e.last_used_ms = now_ms;
  const auto period = static_cast<std::uint32_t>(now_ms >> 10);
  if (period != e.linked_at && head_ != n) {
    unlink(n);
    link_head(n);
  }
  e.linked_at = period;
  return &e;
}

const affinity_table::entry* affinity_table::peek(std::uint64_t hash,
                                                  std::uint64_t now_ms) const noexcept {
  const std::size_t i = find_slot(hash);
  if (i == slots_.size()) return nullptr;
  const entry& e = nodes_[slot_node(slots_[i])];
  return expired(e, now_ms) ? nullptr : &e;
}

affinity_table::entry* affinity_table::insert(std::uint64_t hash, std::uint16_t worker,
                                              std::uint16_t rank, std::uint64_t now_ms) {
  if (max_keys_ == 0) return nullptr;
  if (size_ >= max_keys_) {
    erase_node(tail_);
    ++evictions_lru_;
  }
  if ((size_ + 1) * 2 > slots_.size()) grow();
  std::uint32_t n;
  if (free_ != nil) {
    n = free_;
    free_ = nodes_[n].next;
  } else {
    n = static_cast<std::uint32_t>(nodes_.size());
    nodes_.push_back({});
  }
  nodes_[n] = entry{hash, now_ms, nil, nil, static_cast<std::uint32_t>(now_ms >> 10), worker, rank};
  link_head(n);
  place_slot(make_slot(hash, n));
  ++size_;
  return &nodes_[n];
}

bool affinity_table::erase(std::uint64_t hash) noexcept {
  const std::size_t i = find_slot(hash);
  if (i == slots_.size()) return false;
  erase_node(slot_node(slots_[i]));
  return true;
}

std::size_t affinity_table::expire(std::uint64_t now_ms, std::size_t limit) noexcept {
  std::size_t n = 0;
  while (n < limit && tail_ != nil && expired(nodes_[tail_], now_ms)) {
    erase_node(tail_);
    ++evictions_ttl_;
    ++n;
  }
  return n;
}

void affinity_table::remap_workers(std::span<const std::uint16_t> old_to_new) noexcept {
  for (std::uint32_t i = head_; i != nil; i = nodes_[i].next) {
    entry& e = nodes_[i];
    e.worker = e.worker < old_to_new.size() ? old_to_new[e.worker] : no_worker;
  }
}

void affinity_table::clear() noexcept {
  std::fill(slots_.begin(), slots_.end(), 0);
  nodes_.clear();
  size_ = 0;
  head_ = tail_ = free_ = nil;
}

std::size_t affinity_table::memory_bytes() const noexcept {
  return slots_.capacity() * sizeof(std::uint64_t) + nodes_.capacity() * sizeof(entry);
}

}  // namespace spoa::routing
