#pragma once
// Weighted rendezvous (highest random weight) hashing: Thaler & Ravishankar, "Using name-based
// mappings to increase hit rates", IEEE/ACM ToN 6(1), 1998; weighted by the "logarithmic method"
// of Schindelhauer & Schomaker, "Weighted distributed hash tables", SPAA 2005:
//
//   score(key, w) = -weight(w) / ln(h(key, w)),   h uniform in (0, 1),   highest score wins.
//
// Each worker wins a share of keys proportional to its weight; removing a worker moves only its
// keys; adding one moves keys only onto it; and the full ranking of the workers for a key is that
// key's own fallback order (spill from one worker spreads over all others).
//
// h(key, w) = unit(mix64(key_hash XOR seed(w))), key_hash = SipHash-2-4 of the key bytes (one per
// request), seed(w) = SipHash-2-4 of the worker's name (once per configuration). Exact score ties
// (probability ~2^-53 per pair) are broken by worker name, smaller name first, so every agent
// produces the same ranking from the same key, names and weights.

#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>

#include "routing/siphash.hpp"

namespace spoa::routing {

// Maps 64 random bits into the open interval (0, 1): the top 53 bits, centred in their cell,
// ((x >> 11) + 0.5) * 2^-53. The top cell's centre, 1 - 2^-54, is not a double and rounds to
// exactly 1.0 (ln = 0, score -inf), so it is clamped to the largest double below 1; every other
// value is exact. The result is never 0 (ln would be -inf) nor 1.
constexpr double hash_to_unit(std::uint64_t x) noexcept {
  const double u = (static_cast<double>(x >> 11) + 0.5) * 0x1p-53;
  return u < 1.0 ? u : 0x1.fffffffffffffp-1;
}

inline double rendezvous_score(std::uint64_t key_hash, std::uint64_t worker_seed,
                               double weight) noexcept {
  return -weight / std::log(hash_to_unit(mix64(key_hash ^ worker_seed)));
}

// The seed of a worker: SipHash-2-4 of "worker:" || name (the prefix keeps worker seeds and key
// hashes in separate domains, so a room named like a worker has no special relation to it).
std::uint64_t worker_seed(const sip_key& key, std::string_view name);

struct rendezvous_node {
  std::uint64_t seed = 0;
  double weight = 1.0;
  std::string_view name;  // tie-break only
};

// True when a ranks before b for the same key: higher score, then smaller name.
inline bool ranks_before(double score_a, std::string_view name_a, double score_b,
                         std::string_view name_b) noexcept {
  return score_a > score_b || (score_a == score_b && name_a < name_b);
}

// Index of the first-ranked node, -1 when `nodes` is empty. O(n).
int rendezvous_first(std::uint64_t key_hash, std::span<const rendezvous_node> nodes) noexcept;

// Writes the full ranking (indices into `nodes`, best first) into `out`, which must have
// nodes.size() elements. O(n log n).
void rendezvous_rank(std::uint64_t key_hash, std::span<const rendezvous_node> nodes,
                     std::span<int> out);

}  // namespace spoa::routing
