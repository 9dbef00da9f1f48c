#include "spop/hello.hpp"

#include <gtest/gtest.h>

#include <string>

#include "spop/frame.hpp"
#include "wire.hpp"

namespace spoa::spop {
namespace {

using test::bytes_of;
using test::to_hex;
using test::wire;

hello_result parse(const std::string& payload) {
  return parse_haproxy_hello(bytes_of(payload));
}

// The 2.x HAPROXY-HELLO payload from haproxy/haproxy#1736 (engine-id shortened).
const std::string captured = wire(
    R"(12 "supported-versions" 08 03 "2.0"  0e "max-frame-size" 03 fc f0 06
       0c "capabilities" 08 10 "pipelining,async"  09 "engine-id" 08 08 "371d3c51")");

TEST(Hello, AgentHelloGoldenBytes) {
  std::string out;
  encode_agent_hello(out, 16380);
  EXPECT_EQ(to_hex(out), to_hex(wire(R"(00 00 00 40  65  00 00 00 01  00 00
      07 "version" 08 03 "2.0"
      0e "max-frame-size" 03 fc f0 06
      0c "capabilities" 08 0a "pipelining")")));
}

TEST(Hello, ParsesCapturedHello) {
  const hello_result r = parse(captured);
  ASSERT_EQ(r.st, status::normal);
  EXPECT_EQ(r.hello.supported_versions, "2.0");
  EXPECT_EQ(r.hello.max_frame_size, 16380u);
  EXPECT_EQ(r.hello.capabilities, "pipelining,async");
  EXPECT_EQ(r.hello.engine_id, "371d3c51");
  EXPECT_FALSE(r.hello.healthcheck);
}

TEST(Hello, HealthcheckFlag) {
  const hello_result r = parse(captured + wire(R"(0b "healthcheck" 11)"));
  ASSERT_EQ(r.st, status::normal);
  EXPECT_TRUE(r.hello.healthcheck);
  EXPECT_FALSE(parse(captured + wire(R"(0b "healthcheck" 01)")).hello.healthcheck);
}

TEST(Hello, RoundTripThroughFakePeerEncoder) {
  std::string out;
  encode_haproxy_hello(out, {"2.0", 1024, "", "", true});
  const frame_result f = decode_frame(bytes_of(out), 16380);
  ASSERT_EQ(f.state, decode_state::frame);
  EXPECT_EQ(f.frame.type, frame_type::haproxy_hello);
  const hello_result r = parse_haproxy_hello(f.frame.payload);
  ASSERT_EQ(r.st, status::normal);
  EXPECT_EQ(r.hello.max_frame_size, 1024u);
  EXPECT_TRUE(r.hello.healthcheck);
}

TEST(Hello, UnknownKeysAreSkipped) {
  const hello_result r =
      parse(wire(R"(03 "foo" 09 03 01 02 03  04 "bar!" 04 f4 94 01)") + captured);
  EXPECT_EQ(r.st, status::normal);
}

TEST(Hello, KeysMatchExactlyNotByPrefix) {
  const hello_result r =
      parse(wire(R"(12 "supported-versions" 08 03 "2.0"  10 "max-frame-size-x" 03 fc f0 06)"));
  EXPECT_EQ(r.st, status::no_frame_size);
}

TEST(Hello, MissingVersionIs5) {
  EXPECT_EQ(parse(wire(R"(0e "max-frame-size" 03 fc f0 06)")).st, status::no_version);
}

TEST(Hello, Version10OnlyIs8) {
  EXPECT_EQ(
      parse(wire(R"(12 "supported-versions" 08 03 "1.0" 0e "max-frame-size" 03 fc f0 06)")).st,
      status::unsupported_version);
}

TEST(Hello, VersionListsWithSpaces) {
  EXPECT_TRUE(supports_version_2_0("2.0"));
  EXPECT_TRUE(supports_version_2_0("2.0, 1.5"));
  EXPECT_TRUE(supports_version_2_0(" 1.0 ,2.0 "));
  EXPECT_FALSE(supports_version_2_0("1.0"));
  EXPECT_FALSE(supports_version_2_0("2.1"));
  EXPECT_FALSE(supports_version_2_0("20"));
  EXPECT_FALSE(supports_version_2_0(""));
  EXPECT_FALSE(supports_version_2_0("2.0x"));
}

TEST(Hello, MissingFrameSizeIs6) {
  EXPECT_EQ(parse(wire(R"(12 "supported-versions" 08 03 "2.0")")).st, status::no_frame_size);
}

TEST(Hello, FrameSize255Is9And256Accepted) {
  EXPECT_EQ(parse(wire(R"(12 "supported-versions" 08 03 "2.0" 0e "max-frame-size" 03 ef)")).st,
            status::bad_frame_size);  // 239
  EXPECT_EQ(parse(wire(R"(12 "supported-versions" 08 03 "2.0" 0e "max-frame-size" 03 ff 00)")).st,
            status::bad_frame_size);  // 255
  const hello_result ok =
      parse(wire(R"(12 "supported-versions" 08 03 "2.0" 0e "max-frame-size" 03 f0 01)"));
  EXPECT_EQ(ok.st, status::normal);  // 256
  EXPECT_EQ(ok.hello.max_frame_size, 256u);
  // A negative INT32 is too small, not huge.
  EXPECT_EQ(parse(wire(R"(12 "supported-versions" 08 03 "2.0"
                          0e "max-frame-size" 02 ff f0 fe fe fe fe fe fe fe 0e)"))
                .st,
            status::bad_frame_size);
}

TEST(Hello, WrongTypesAndTruncationAreInvalid) {
  EXPECT_EQ(parse(wire(R"(12 "supported-versions" 03 02)")).st, status::invalid);
  EXPECT_EQ(parse(wire(R"(0e "max-frame-size" 08 03 "999")")).st, status::invalid);
  EXPECT_EQ(parse(wire(R"(0b "healthcheck" 08 03 "yes")")).st, status::invalid);
  // Cut at every byte: inside a key-value pair → invalid; at a pair boundary the list is
  // well-formed and judged on its content.
  ASSERT_EQ(captured.size(), 94u);
  for (std::size_t n = 1; n < captured.size(); ++n) {
    const hello_result r = parse(captured.substr(0, n));
    const status expect = n == 24                ? status::no_frame_size
                          : (n == 43 || n == 74) ? status::normal
                                                 : status::invalid;
    EXPECT_EQ(r.st, expect) << n;
  }
}

TEST(Hello, Negotiation) {
  EXPECT_EQ(negotiate_frame_size(16380, 16380), 16380u);
  EXPECT_EQ(negotiate_frame_size(65532, 16380), 16380u);
  EXPECT_EQ(negotiate_frame_size(1024, 16380), 1024u);
}

TEST(Hello, AgentHelloParsesBack) {
  std::string out;
  encode_agent_hello(out, 300);
  const frame_result f = decode_frame(bytes_of(out), 16380);
  ASSERT_EQ(f.state, decode_state::frame);
  const agent_hello_result r = parse_agent_hello(f.frame.payload);
  ASSERT_EQ(r.st, status::normal);
  EXPECT_EQ(r.hello.version, "2.0");
  EXPECT_EQ(r.hello.max_frame_size, 300u);
  EXPECT_EQ(r.hello.capabilities, "pipelining");
}

}  // namespace
}  // namespace spoa::spop
