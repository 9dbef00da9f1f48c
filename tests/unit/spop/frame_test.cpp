#include "spop/frame.hpp"

#include <gtest/gtest.h>

#include <string>

#include "wire.hpp"

namespace spoa::spop {
namespace {

using test::bytes_of;
using test::to_hex;
using test::wire;

const std::string notify_golden = wire(
    R"(00 00 00 28  03  00 00 00 01  01 01
       05 "route" 02  06 "method" 08 03 "GET"  04 "path" 08 07 "/api/v1")");

frame_result decode(const std::string& w, std::uint32_t max = 16380) {
  return decode_frame(bytes_of(w), max);
}

TEST(Frame, DecodesWorkedNotify) {
  const frame_result r = decode(notify_golden);
  ASSERT_EQ(r.state, decode_state::frame);
  EXPECT_EQ(r.consumed, notify_golden.size());
  EXPECT_EQ(r.frame.type, frame_type::notify);
  EXPECT_EQ(r.frame.flags, flag_fin);
  EXPECT_EQ(r.frame.stream_id, 1u);
  EXPECT_EQ(r.frame.frame_id, 1u);
  EXPECT_EQ(r.frame.payload.size(), 0x28u - 7);
}

TEST(Frame, GrindEverySplitPoint) {
  // A multi-byte-ID frame followed by a second frame: every prefix of the first is need_more
  // with nothing consumed; the whole buffer yields exactly the first frame.
  std::string w;
  encode_frame(w, frame_type::notify, flag_fin, 2091, 0x1234, "payload");
  const std::size_t first = w.size();
  w += notify_golden;
  for (std::size_t i = 0; i < first; ++i) {
    const frame_result r = decode(w.substr(0, i));
    ASSERT_EQ(r.state, decode_state::need_more) << i;
    ASSERT_EQ(r.consumed, 0u);
  }
  for (std::size_t i = first; i <= w.size(); ++i) {
    const std::string prefix = w.substr(0, i);  // outlives the frame view
    const frame_result r = decode(prefix);
    ASSERT_EQ(r.state, decode_state::frame) << i;
    ASSERT_EQ(r.consumed, first);
    EXPECT_EQ(r.frame.stream_id, 2091u);
    EXPECT_EQ(r.frame.frame_id, 0x1234u);
    EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(r.frame.payload.data()),
                               r.frame.payload.size()),
              "payload");
  }
}

TEST(Frame, EncodeGolden) {
  std::string out;
  encode_frame(out, frame_type::ack, flag_fin, 2091, 1, "");
  EXPECT_EQ(to_hex(out), "00 00 00 08 67 00 00 00 01 fb 73 01");
}

TEST(Frame, LengthZeroIsInvalid) {
  const frame_result r = decode(wire("00 00 00 00"));
  EXPECT_EQ(r.state, decode_state::error);
  EXPECT_EQ(r.error, status::invalid);
}

TEST(Frame, LengthCheckedBeforeBody) {
  // Only the 4 length bytes are present: too big is known already, no waiting for the body.
  const frame_result r = decode(wire("00 00 01 01"), 256);
  EXPECT_EQ(r.state, decode_state::error);
  EXPECT_EQ(r.error, status::too_big);
  const frame_result huge = decode(wire("16 02 f1 26"), 16380);  // ~369 MB of garbage length
  EXPECT_EQ(huge.error, status::too_big);
}

TEST(Frame, LengthExactlyMaxAcceptedAndMaxPlusOneRejected) {
  for (std::uint32_t max : {256u, 16380u}) {
    std::string w;
    encode_frame(w, frame_type::notify, flag_fin, 1, 1, std::string(max - 7, '\0'));
    ASSERT_EQ(w.size(), max + 4u);
    const frame_result ok = decode(w, max);
    EXPECT_EQ(ok.state, decode_state::frame);
    EXPECT_EQ(ok.consumed, max + 4u);
    std::string w2;
    encode_frame(w2, frame_type::notify, flag_fin, 1, 1, std::string(max - 6, '\0'));
    const frame_result big = decode(w2, max);
    EXPECT_EQ(big.state, decode_state::error);
    EXPECT_EQ(big.error, status::too_big);
  }
}

TEST(Frame, TooShortForHeaderIsInvalid) {
  for (const char* c :
       {"00 00 00 01 03", "00 00 00 05 03 00 00 00 01", "00 00 00 06 03 00 00 00 01 01"}) {
    const frame_result r = decode(wire(c));
    EXPECT_EQ(r.state, decode_state::error) << c;
    EXPECT_EQ(r.error, status::invalid) << c;
  }
}

TEST(Frame, VarintRunningPastFrameEndIsInvalidNotNeedMore) {
  // Length 7 ends inside the 2-byte frame-id varint; more bytes follow in the buffer.
  const frame_result r = decode(wire("00 00 00 07 03 00 00 00 01 01 f4 94 01 00 00"));
  EXPECT_EQ(r.state, decode_state::error);
  EXPECT_EQ(r.error, status::invalid);
}

TEST(Frame, OverlongVarintIsInvalid) {
  const frame_result r =
      decode(wire("00 00 00 11 03 00 00 00 01 f0 80 80 80 80 80 80 80 80 80 00 01"));
  EXPECT_EQ(r.state, decode_state::error);
  EXPECT_EQ(r.error, status::invalid);
}

TEST(Frame, WithoutFinIsFragmentation) {
  const frame_result r = decode(wire("00 00 00 07 03 00 00 00 00 01 01"));
  EXPECT_EQ(r.state, decode_state::error);
  EXPECT_EQ(r.error, status::fragmentation_not_supported);
}

TEST(Frame, UnknownTypeIsReturnedForTheCallerToSkip) {
  const frame_result r = decode(wire("00 00 00 09 2a 00 00 00 01 00 00 ab cd"));
  ASSERT_EQ(r.state, decode_state::frame);
  EXPECT_EQ(static_cast<int>(r.frame.type), 42);
  EXPECT_EQ(r.consumed, 13u);
}

}  // namespace
}  // namespace spoa::spop
