#include "routing/siphash.hpp"

namespace spoa::routing {
namespace {

constexpr std::uint64_t rotl(std::uint64_t x, int b) noexcept {
  return (x << b) | (x >> (64 - b));
}

inline std::uint64_t load_le64(const unsigned char* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}

struct sip_state {
  std::uint64_t v0, v1, v2, v3;
  void round() noexcept {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  }
};

// Public constants for the key derivation: the first 32 hex digits of pi's fractional part,
// split in two ways. Anything fixed would do; these are nothing-up-my-sleeve numbers.
constexpr sip_key derive_f0{0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL};
constexpr sip_key derive_f1{0xa4093822299f31d0ULL, 0x082efa98ec4e6c89ULL};

}  // namespace

std::uint64_t siphash24(const sip_key& key, const void* data, std::size_t len) noexcept {
  const auto* in = static_cast<const unsigned char*>(data);
  sip_state s{0x736f6d6570736575ULL ^ key.k0, 0x646f72616e646f6dULL ^ key.k1,
              0x6c7967656e657261ULL ^ key.k0, 0x7465646279746573ULL ^ key.k1};
  const std::size_t whole = len & ~std::size_t{7};
  for (std::size_t i = 0; i < whole; i += 8) {
    const std::uint64_t m = load_le64(in + i);
    s.v3 ^= m;
    s.round();
    s.round();
    s.v0 ^= m;
  }
  // Last block: the remaining 0..7 bytes, zero padded, with len mod 256 in the top byte.
  std::uint64_t b = static_cast<std::uint64_t>(len) << 56;
  for (std::size_t i = 0; i < (len & 7); ++i)
    b |= static_cast<std::uint64_t>(in[whole + i]) << (8 * i);
  s.v3 ^= b;
  s.round();
  s.round();
  s.v0 ^= b;
  s.v2 ^= 0xff;
  s.round();
  s.round();
  s.round();
  s.round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

sip_key derive_sip_key(std::string_view hash_key) noexcept {
  return {siphash24(derive_f0, hash_key), siphash24(derive_f1, hash_key)};
}

std::uint64_t key_fingerprint(const sip_key& key) noexcept {
  return siphash24(key, std::string_view{"synapse-spoa/hash-key-id"});
}

}  // namespace spoa::routing
