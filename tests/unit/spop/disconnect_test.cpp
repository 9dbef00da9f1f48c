#include "spop/disconnect.hpp"

#include <gtest/gtest.h>

#include <string>

#include "spop/frame.hpp"
#include "wire.hpp"

namespace spoa::spop {
namespace {

using test::bytes_of;
using test::to_hex;
using test::wire;

TEST(Disconnect, AgentDisconnectGoldenBytes) {
  std::string out;
  encode_agent_disconnect(out, status::normal, "normal", 16380);
  EXPECT_EQ(to_hex(out), to_hex(wire(R"(00 00 00 25  66  00 00 00 01  00 00
      0b "status-code" 03 00
      07 "message" 08 06 "normal")")));
}

disconnect_info decode_agent(const std::string& out, std::uint32_t max) {
  const frame_result f = decode_frame(bytes_of(out), max);
  EXPECT_EQ(f.state, decode_state::frame);
  EXPECT_EQ(f.frame.type, frame_type::agent_disconnect);
  const disconnect_result d = parse_disconnect(f.frame.payload);
  EXPECT_EQ(d.st, status::normal);
  return d.info;
}

TEST(Disconnect, MessageCutTo255) {
  std::string out;
  encode_agent_disconnect(out, status::invalid, std::string(300, 'x'), 16380);
  const disconnect_info d = decode_agent(out, 16380);
  EXPECT_EQ(d.status_code, 4u);
  EXPECT_EQ(d.message.size(), max_disconnect_message);
}

TEST(Disconnect, MessageCutToFitSmallestFrame) {
  std::string out;
  encode_agent_disconnect(out, status::timeout, std::string(300, 'x'), 256);
  EXPECT_EQ(out.size(), 256u + 4);  // filled exactly
  const disconnect_info d = decode_agent(out, 256);
  EXPECT_EQ(d.status_code, 2u);
  EXPECT_EQ(d.message, std::string(225, 'x'));
}

TEST(Disconnect, CutNeverSplitsUtf8) {
  std::string msg(254, 'x');
  msg += "\xc3\xa9";  // U+00E9 straddles byte 255
  std::string out;
  encode_agent_disconnect(out, status::normal, msg, 16380);
  EXPECT_EQ(decode_agent(out, 16380).message, std::string(254, 'x'));
}

TEST(Disconnect, ParsesHaproxyDisconnect) {
  std::string out;
  encode_haproxy_disconnect(out, 2, "a timeout occurred");
  const frame_result f = decode_frame(bytes_of(out), 16380);
  ASSERT_EQ(f.state, decode_state::frame);
  EXPECT_EQ(f.frame.type, frame_type::haproxy_disconnect);
  const disconnect_result d = parse_disconnect(f.frame.payload);
  ASSERT_EQ(d.st, status::normal);
  EXPECT_TRUE(d.info.has_status_code);
  EXPECT_EQ(d.info.status_code, 2u);
  EXPECT_EQ(d.info.message, "a timeout occurred");
}

TEST(Disconnect, MalformedIsInvalid) {
  EXPECT_EQ(parse_disconnect(bytes_of(wire(R"(0b "status-code" 08 01 "x")"))).st, status::invalid);
  EXPECT_EQ(parse_disconnect(bytes_of(wire(R"(07 "message" 03 01)"))).st, status::invalid);
  EXPECT_EQ(parse_disconnect(bytes_of(wire(R"(0b "status-co")"))).st, status::invalid);
  EXPECT_EQ(parse_disconnect(bytes_of(wire(R"(03 "foo" 00)"))).st, status::normal);
}

}  // namespace
}  // namespace spoa::spop
