#include "spop/varint.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "wire.hpp"

namespace spoa::spop {
namespace {

using test::bytes_of;
using test::to_hex;
using test::wire;

struct golden {
  std::uint64_t value;
  const char* hex;
};

constexpr golden goldens[] = {
    {0, "00"},
    {239, "ef"},
    {240, "f0 00"},
    {2287, "ff 7f"},
    {2288, "f0 80 00"},
    {0x1234, "f4 94 01"},
    {16380, "fc f0 06"},
    {264432, "f0 80 80 00"},
    {0xFFFFFFFFull, "ff f0 fe fe 7e"},
    {std::numeric_limits<std::uint64_t>::max(), "ff f0 fe fe fe fe fe fe fe 0e"},
};

TEST(Varint, EncodesGoldenBytes) {
  for (const golden& g : goldens) {
    std::string out;
    append_varint(out, g.value);
    EXPECT_EQ(to_hex(out), g.hex) << g.value;
    EXPECT_EQ(varint_size(g.value), out.size()) << g.value;
  }
}

TEST(Varint, DecodesGoldenBytes) {
  for (const golden& g : goldens) {
    const std::string w = wire(g.hex);
    const auto b = bytes_of(w);
    const varint_result r = decode_varint(b.data(), b.data() + b.size());
    EXPECT_EQ(r.error, varint_error::none) << g.hex;
    EXPECT_EQ(r.value, g.value) << g.hex;
    EXPECT_EQ(r.size, w.size()) << g.hex;
  }
}

TEST(Varint, DecodeIsAdditiveNotOr) {
  // 2288 = 240 + (0x80 << 4): an OR decoder would read F0 80 00 as 0xF0 | 0x800 = 2288 too,
  // but FF 7F distinguishes them: additive 255 + (127 << 4) = 2287, OR gives 0x7FF = 2047.
  const std::string w = wire("ff 7f");
  const auto b = bytes_of(w);
  EXPECT_EQ(decode_varint(b.data(), b.data() + 2).value, 2287u);
}

TEST(Varint, BoundariesOfEveryLengthRoundTrip) {
  // First value of each length: 240, 2288, 264432, 33818864, ... (each adds 2^(4+7k)).
  std::uint64_t first = 240;
  std::size_t len = 2;
  for (unsigned shift = 4; shift <= 60; shift += 7, ++len) {
    for (std::uint64_t v : {first - 1, first, first + 1}) {
      std::string out;
      append_varint(out, v);
      const std::size_t expect = v < first ? len - 1 : len;
      EXPECT_EQ(out.size(), expect) << v;
      const auto b = bytes_of(out);
      const varint_result r = decode_varint(b.data(), b.data() + b.size());
      EXPECT_EQ(r.error, varint_error::none);
      EXPECT_EQ(r.value, v);
      EXPECT_EQ(r.size, out.size());
    }
    if (shift + 7 > 63) break;
    first += std::uint64_t{1} << (shift + 7);
  }
}

TEST(Varint, SeededRandomRoundTrip) {
  std::mt19937_64 rng(20240611);
  for (int k = 0; k < 100000; ++k) {
    const std::uint64_t v = rng() >> (rng() % 64);
    std::string out;
    append_varint(out, v);
    const auto b = bytes_of(out);
    const varint_result r = decode_varint(b.data(), b.data() + b.size());
    ASSERT_EQ(r.error, varint_error::none);
    ASSERT_EQ(r.value, v);
    ASSERT_EQ(r.size, out.size());
  }
}

TEST(Varint, TruncatedAtEveryPrefix) {
  const std::string w = wire("ff f0 fe fe fe fe fe fe fe 0e");
  const auto b = bytes_of(w);
  for (std::size_t n = 0; n < w.size(); ++n) {
    const varint_result r = decode_varint(b.data(), b.data() + n);
    EXPECT_EQ(r.error, varint_error::truncated) << n;
    EXPECT_EQ(r.size, 0u);
  }
}

TEST(Varint, ElevenByteSequenceIsTooLong) {
  // Ten continuation bytes: never terminates within 10 bytes (small digits, so no overflow).
  const std::string w = wire("f0 80 80 80 80 80 80 80 80 80 00");
  const auto b = bytes_of(w);
  const varint_result r = decode_varint(b.data(), b.data() + b.size());
  EXPECT_NE(r.error, varint_error::none);
  EXPECT_EQ(r.size, 0u);
}

TEST(Varint, TenthByteContinuationIsRejected) {
  const std::string w = wire("f0 80 80 80 80 80 80 80 80 80");
  const auto b = bytes_of(w);
  EXPECT_NE(decode_varint(b.data(), b.data() + b.size()).error, varint_error::none);
}

TEST(Varint, OverflowIsRejected) {
  // 2^64 - 1 plus one more unit in the last digit.
  {
    const std::string w = wire("ff f0 fe fe fe fe fe fe fe 0f");
    const auto b = bytes_of(w);
    EXPECT_EQ(decode_varint(b.data(), b.data() + b.size()).error, varint_error::overflow);
  }
  {  // last digit >= 16 loses bits when shifted by 60
    const std::string w = wire("f0 80 80 80 80 80 80 80 80 10");
    const auto b = bytes_of(w);
    EXPECT_EQ(decode_varint(b.data(), b.data() + b.size()).error, varint_error::overflow);
  }
}

TEST(Varint, StopsAtEndEvenWithMoreBytesBeyond) {
  const std::string w = wire("f4 94 01");
  const auto b = bytes_of(w);
  EXPECT_EQ(decode_varint(b.data(), b.data() + 2).error, varint_error::truncated);
}

}  // namespace
}  // namespace spoa::spop
