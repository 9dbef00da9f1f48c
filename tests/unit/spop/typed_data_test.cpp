#include "spop/typed_data.hpp"

#include <gtest/gtest.h>

#include <string>

#include "wire.hpp"

namespace spoa::spop {
namespace {

using test::bytes_of;
using test::to_hex;
using test::wire;

bool decode_all(const std::string& w, typed_value& v) {
  const auto b = bytes_of(w);
  const std::uint8_t* p = b.data();
  return decode_typed(p, b.data() + b.size(), v) && p == b.data() + b.size();
}

struct typed_golden {
  typed_value value;
  const char* hex;
};

const std::string ipv4_raw = wire("7f 00 00 01");
const std::string ipv6_raw = wire("20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01");

TEST(TypedData, EveryTypeRoundTripsThroughGoldenBytes) {
  const typed_golden goldens[] = {
      {typed_value::make_null(), "00"},
      {typed_value::make_bool(false), "01"},
      {typed_value::make_bool(true), "11"},
      {typed_value::make_int32(-1), "02 ff f0 fe fe fe fe fe fe fe 0e"},
      {typed_value::make_int32(5), "02 05"},
      {typed_value::make_uint32(16380), "03 fc f0 06"},
      {typed_value::make_int64(0x1234), "04 f4 94 01"},
      {typed_value::make_int64(-2), "04 fe f0 fe fe fe fe fe fe fe 0e"},
      {typed_value::make_uint64(0xFFFFFFFFull), "05 ff f0 fe fe 7e"},
      {typed_value::make_ipv4(ipv4_raw), "06 7f 00 00 01"},
      {typed_value::make_ipv6(ipv6_raw), "07 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01"},
      {typed_value::make_string("GET"), R"(08 03 "GET")"},
      {typed_value::make_string(""), "08 00"},
      {typed_value::make_binary(std::string_view("\x00\xff", 2)), "09 02 00 ff"},
  };
  for (const typed_golden& g : goldens) {
    std::string out;
    encode_typed(out, g.value);
    EXPECT_EQ(to_hex(out), to_hex(wire(g.hex)));
    EXPECT_EQ(typed_size(g.value), out.size());
    typed_value back;
    ASSERT_TRUE(decode_all(out, back)) << g.hex;
    EXPECT_EQ(back.type, g.value.type);
    EXPECT_EQ(back.boolean, g.value.boolean);
    EXPECT_EQ(back.i, g.value.i);
    EXPECT_EQ(back.u, g.value.u);
    EXPECT_EQ(back.bytes, g.value.bytes);
  }
}

TEST(TypedData, NegativeIntegersReadBackSigned) {
  typed_value v;
  ASSERT_TRUE(decode_all(wire("04 ff f0 fe fe fe fe fe fe fe 0e"), v));
  EXPECT_EQ(v.i, -1);
  EXPECT_EQ(v.u, ~std::uint64_t{0});
}

TEST(TypedData, ReservedTypesAreInvalid) {
  for (int t = 10; t <= 15; ++t) {
    std::string w(1, static_cast<char>(t));
    w += "abcd";
    typed_value v;
    const auto b = bytes_of(w);
    const std::uint8_t* p = b.data();
    EXPECT_FALSE(decode_typed(p, b.data() + b.size(), v)) << t;
    EXPECT_EQ(p, b.data());
  }
}

TEST(TypedData, HighNibbleFlagsIgnoredExceptForBool) {
  typed_value v;
  const std::string w = wire(R"(28 02 "ok")");  // outlives the view in v.bytes
  ASSERT_TRUE(decode_all(w, v));
  EXPECT_EQ(v.type, data_type::string);
  EXPECT_EQ(v.bytes, "ok");
  ASSERT_TRUE(decode_all(wire("21"), v));  // flag 0x20 is not the true flag
  EXPECT_FALSE(v.boolean);
}

TEST(TypedData, TruncatedAtEveryPrefixIsInvalid) {
  const char* cases[] = {"02 f4 94 01", "06 7f 00 00 01",
                         "07 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01", R"(08 05 "hello")",
                         R"(09 f0 00 "x")"};
  for (const char* c : cases) {
    const std::string w = wire(c);
    const auto b = bytes_of(w);
    for (std::size_t n = 0; n < w.size(); ++n) {
      typed_value v;
      const std::uint8_t* p = b.data();
      EXPECT_FALSE(decode_typed(p, b.data() + n, v)) << c << " at " << n;
    }
  }
}

TEST(TypedData, StringLengthBeyondEndIsInvalidNotAllocated) {
  typed_value v;
  // Length 2^32-1 with three bytes of data: checked against the remaining bytes.
  EXPECT_FALSE(decode_all(wire(R"(08 ff f0 fe fe 7e "abc")"), v));
}

}  // namespace
}  // namespace spoa::spop
