#include "routing/siphash.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>

namespace spoa::routing {
namespace {

// The reference key of the SipHash paper (Appendix A): bytes 00 01 .. 0f.
constexpr sip_key paper_key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};

std::array<unsigned char, 64> counting_bytes() {
  std::array<unsigned char, 64> b{};
  for (std::size_t i = 0; i < b.size(); ++i)
    b[i] = static_cast<unsigned char>(i);
  return b;
}

TEST(Siphash, PaperAppendixVector) {
  // Message 00 01 .. 0e (15 bytes): a129ca6149be45e5.
  const auto b = counting_bytes();
  EXPECT_EQ(siphash24(paper_key, b.data(), 15), 0xa129ca6149be45e5ULL);
}

TEST(Siphash, ReferenceVectorsAtEveryTailLength) {
  // From the reference implementation's vectors.h (vectors_sip64), inputs 00 .. (n-1).
  const auto b = counting_bytes();
  EXPECT_EQ(siphash24(paper_key, b.data(), 0), 0x726fdb47dd0e0e31ULL);
  EXPECT_EQ(siphash24(paper_key, b.data(), 1), 0x74f839c593dc67fdULL);
  EXPECT_EQ(siphash24(paper_key, b.data(), 7), 0xab0200f58b01d137ULL);
  EXPECT_EQ(siphash24(paper_key, b.data(), 8), 0x93f5f5799a932462ULL);
  EXPECT_EQ(siphash24(paper_key, b.data(), 63), 0x958a324ceb064572ULL);
}

TEST(Siphash, DerivedKeyIsDeterministicAndDependsOnTheSecret) {
  EXPECT_EQ(derive_sip_key("s3cret"), derive_sip_key("s3cret"));
  EXPECT_NE(derive_sip_key("s3cret"), derive_sip_key("s3cret "));
  EXPECT_NE(derive_sip_key(""), derive_sip_key("x"));
  const sip_key k = derive_sip_key("s3cret");
  EXPECT_NE(k.k0, k.k1);
  EXPECT_NE(key_fingerprint(k), key_fingerprint(derive_sip_key("other")));
}

TEST(Siphash, Mix64IsTheSplitmixFinalizer) {
  EXPECT_EQ(mix64(0), 0u);
  // splitmix64 with state 0: the first output is mix64(0x9e3779b97f4a7c15).
  EXPECT_EQ(mix64(0x9e3779b97f4a7c15ULL), 0xe220a8397b1dcdafULL);
}

}  // namespace
}  // namespace spoa::routing
