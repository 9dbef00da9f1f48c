#pragma once
// SipHash-2-4, the keyed 64-bit PRF of Aumasson & Bernstein, "SipHash: a fast short-input PRF"
// (INDOCRYPT 2012). Placement hashes room IDs, user IDs and origins with a secret key so that a
// client who can choose a room ID cannot aim it at one worker: without the key the ranking of a
// key over the workers is unpredictable. Every agent with the same key computes the same hashes.
//
// Also here: the deterministic derivation of the 128-bit SipHash key from the configured
// `hash_key` string, and a 64-bit finalizer (mix64) used to derive per-worker scores cheaply.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace spoa::routing {

struct sip_key {
  std::uint64_t k0 = 0;
  std::uint64_t k1 = 0;
  friend bool operator==(const sip_key&, const sip_key&) = default;
};

// SipHash-2-4 of `len` bytes at `data` under `key` (little-endian key words, as in the paper's
// reference code: the 16 key bytes k[0..15] give k0 = LE64(k[0..7]), k1 = LE64(k[8..15])).
std::uint64_t siphash24(const sip_key& key, const void* data, std::size_t len) noexcept;

inline std::uint64_t siphash24(const sip_key& key, std::string_view bytes) noexcept {
  return siphash24(key, bytes.data(), bytes.size());
}

// The SipHash key for a configured `hash_key` (any string, any length, may be empty):
//   k0 = SipHash-2-4(F0, hash_key),  k1 = SipHash-2-4(F1, hash_key)
// with the fixed public keys F0, F1 defined in siphash.cpp. Deterministic, so agents that share
// the string share the key. An empty hash_key gives a valid but public key: placement is then
// still deterministic, just predictable to anyone who reads this file.
sip_key derive_sip_key(std::string_view hash_key) noexcept;

// A fingerprint of a derived key that reveals nothing useful about it (a SipHash output under the
// key itself). Stored in affinity snapshots so a snapshot written under another key is ignored.
std::uint64_t key_fingerprint(const sip_key& key) noexcept;

// splitmix64's finalizer (Steele, Lea & Flood, "Fast splittable pseudorandom number generators",
// OOPSLA 2014; constants from Stafford's "Mix13"). A bijection on 64 bits with full avalanche:
// used to turn (key hash XOR worker seed) into an independent-looking per-worker value.
constexpr std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace spoa::routing
