#include "spop/message.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "spop/frame.hpp"
#include "wire.hpp"

namespace spoa::spop {
namespace {

using test::bytes_of;
using test::to_hex;
using test::wire;

const std::string notify_golden = wire(
    R"(00 00 00 28  03  00 00 00 01  01 01
       05 "route" 02  06 "method" 08 03 "GET"  04 "path" 08 07 "/api/v1")");

std::span<const std::uint8_t> payload_of(const std::string& frame) {
  const frame_result f = decode_frame(bytes_of(frame), 16380);
  EXPECT_EQ(f.state, decode_state::frame);
  return f.frame.payload;
}

std::vector<std::string> message_names(std::span<const std::uint8_t> payload, status& st) {
  std::vector<std::string> names;
  notify_reader r(payload);
  message_view m;
  while (r.next(m))
    names.emplace_back(m.name());
  st = r.error();
  return names;
}

TEST(Notify, EncodeMatchesWorkedFrame) {
  const arg args[] = {{"method", typed_value::make_string("GET")},
                      {"path", typed_value::make_string("/api/v1")}};
  const notify_message msgs[] = {{"route", args}};
  std::string out;
  encode_notify(out, 1, 1, msgs);
  EXPECT_EQ(to_hex(out), to_hex(notify_golden));
}

TEST(Notify, DecodesWorkedFrame) {
  notify_reader r(payload_of(notify_golden));
  message_view m;
  ASSERT_TRUE(r.next(m));
  EXPECT_EQ(m.name(), "route");
  ASSERT_EQ(m.args().size(), 2u);
  EXPECT_EQ(m.args()[0].name, "method");
  EXPECT_EQ(m.string_arg("method"), "GET");
  EXPECT_EQ(m.string_arg("path"), "/api/v1");
  EXPECT_EQ(m.string_arg("user"), "");
  EXPECT_EQ(m.find("user"), nullptr);
  EXPECT_FALSE(r.next(m));
  EXPECT_EQ(r.error(), status::normal);
}

TEST(Notify, EmptyNotifyHasNoMessages) {
  std::string out;
  encode_notify(out, 3, 1, {});
  EXPECT_EQ(to_hex(out), "00 00 00 07 03 00 00 00 01 03 01");
  std::size_t count = 99;
  EXPECT_EQ(validate_notify(payload_of(out), &count), status::normal);
  EXPECT_EQ(count, 0u);
}

TEST(Notify, TwoMessagesNullAndUnnamedArgs) {
  const std::string w = wire(R"(00 00 00 28 03 00 00 00 01 05 02
      05 "route" 02  00 08 03 "GET"  04 "user" 00
      03 "log" 01  03 "src" 06 0a 00 00 01)");
  notify_reader r(payload_of(w));
  message_view m;
  ASSERT_TRUE(r.next(m));
  EXPECT_EQ(m.name(), "route");
  ASSERT_EQ(m.args().size(), 2u);
  EXPECT_EQ(m.args()[0].name, "");
  EXPECT_EQ(m.string_arg(""), "GET");
  ASSERT_NE(m.find("user"), nullptr);
  EXPECT_EQ(m.find("user")->type, data_type::null);
  EXPECT_EQ(m.string_arg("user"), "");
  ASSERT_TRUE(r.next(m));
  EXPECT_EQ(m.name(), "log");
  ASSERT_EQ(m.args().size(), 1u);
  EXPECT_EQ(m.find("src")->type, data_type::ipv4);
  EXPECT_EQ(m.find("src")->bytes, wire("0a 00 00 01"));
  EXPECT_FALSE(r.next(m));
  EXPECT_EQ(r.error(), status::normal);
}

TEST(Notify, ArgsBeyondCapacityAreSkippedCorrectly) {
  std::vector<std::string> names;
  for (int k = 0; k < 40; ++k)
    names.push_back("a" + std::to_string(k));
  std::vector<arg> args;
  for (int k = 0; k < 40; ++k)
    args.push_back({names[static_cast<std::size_t>(k)],
                    k % 2 ? typed_value::make_int64(-k) : typed_value::make_string(names[0])});
  const arg tail_args[] = {{"x", typed_value::make_bool(true)}};
  const notify_message msgs[] = {{"big", args}, {"tail", tail_args}};
  std::string out;
  encode_notify(out, 7, 1, msgs);
  notify_reader r(payload_of(out));
  message_view m;
  ASSERT_TRUE(r.next(m));
  EXPECT_EQ(m.args().size(), message_view::max_args);
  EXPECT_EQ(m.wire_arg_count(), 40u);
  EXPECT_EQ(m.args()[15].name, "a15");
  EXPECT_EQ(m.args()[15].value.i, -15);
  EXPECT_EQ(m.find("a20"), nullptr);
  ASSERT_TRUE(r.next(m));
  EXPECT_EQ(m.name(), "tail");
  EXPECT_TRUE(m.find("x")->boolean);
  EXPECT_FALSE(r.next(m));
  EXPECT_EQ(r.error(), status::normal);
}

TEST(Notify, TruncationAnywhereInsideAMessageIsInvalid) {
  const auto full = payload_of(notify_golden);
  for (std::size_t n = 1; n < full.size(); ++n) {
    status st = status::normal;
    message_names(full.first(n), st);
    EXPECT_EQ(st, status::invalid) << n;
    EXPECT_EQ(validate_notify(full.first(n)), status::invalid) << n;
  }
}

TEST(Notify, UnknownTypedDataIsInvalid) {
  const std::string p = wire(R"(05 "route" 01 01 "m" 0c)");
  EXPECT_EQ(validate_notify(bytes_of(p)), status::invalid);
}

// --- ACK ---

TEST(Ack, WorkedAckWithSid2091) {
  std::string out;
  ack_builder ack(out, 2091, 1, 16380);
  EXPECT_TRUE(ack.empty());
  EXPECT_TRUE(ack.set_var(scope::txn, "backend", "be_app"));
  EXPECT_TRUE(ack.set_var(scope::txn, "server", "srv2"));
  ack.finish();
  EXPECT_EQ(to_hex(out), to_hex(wire(R"(00 00 00 2b  67  00 00 00 01  fb 73 01
      01 03 02 07 "backend" 08 06 "be_app"
      01 03 02 06 "server"  08 04 "srv2")")));
}

TEST(Ack, MinimalAckCarriesNoop) {
  std::string out;
  ack_builder ack(out, 1, 1, 16380);
  ack.finish();
  ack.finish();  // idempotent
  EXPECT_EQ(to_hex(out),
            to_hex(wire(R"(00 00 00 0f  67  00 00 00 01  01 01  02 02 02 04 "noop")")));
}

TEST(Ack, IntegerAndUnsetAndScopes) {
  std::string out;
  ack_builder ack(out, 1, 2, 16380);
  EXPECT_TRUE(ack.set_var(scope::sess, "n", std::int64_t{-1}));
  EXPECT_TRUE(ack.unset_var(scope::res, "gone"));
  EXPECT_TRUE(ack.set_var(scope::req, "b", typed_value::make_bool(true)));
  ack.finish();
  const frame_result f = decode_frame(bytes_of(out), 16380);
  ASSERT_EQ(f.state, decode_state::frame);
  EXPECT_EQ(f.frame.frame_id, 2u);
  ack_reader r(f.frame.payload);
  action a;
  ASSERT_TRUE(r.next(a));
  EXPECT_EQ(a.type, action_type::set_var);
  EXPECT_EQ(a.var_scope, scope::sess);
  EXPECT_EQ(a.value.type, data_type::int64);
  EXPECT_EQ(a.value.i, -1);
  ASSERT_TRUE(r.next(a));
  EXPECT_EQ(a.type, action_type::unset_var);
  EXPECT_EQ(a.var_scope, scope::res);
  EXPECT_EQ(a.name, "gone");
  ASSERT_TRUE(r.next(a));
  EXPECT_TRUE(a.value.boolean);
  EXPECT_FALSE(r.next(a));
  EXPECT_EQ(r.error(), status::normal);
}

TEST(Ack, VariableNamesAreValidated) {
  EXPECT_TRUE(valid_var_name("backend"));
  EXPECT_TRUE(valid_var_name("a.b_C9"));
  EXPECT_TRUE(valid_var_name(std::string(40, 'x')));
  EXPECT_FALSE(valid_var_name(std::string(41, 'x')));
  EXPECT_FALSE(valid_var_name(""));
  EXPECT_FALSE(valid_var_name("has-dash"));
  EXPECT_FALSE(valid_var_name("sp ace"));
  EXPECT_FALSE(valid_var_name("caf\xc3\xa9"));
  std::string out;
  ack_builder ack(out, 1, 1, 16380);
  EXPECT_FALSE(ack.set_var(scope::txn, "bad-name", "v"));
  EXPECT_FALSE(ack.unset_var(scope::txn, std::string(41, 'x')));
  EXPECT_TRUE(ack.empty());
  EXPECT_EQ(ack.rejected(), 2u);
  ack.finish();
  EXPECT_EQ(out.size(), 0x0fu + 4);  // just the noop
}

TEST(Ack, ActionsThatDoNotFitAreDroppedFromTheEnd) {
  std::string out;
  ack_builder ack(out, 1, 1, 256);
  EXPECT_TRUE(ack.set_var(scope::txn, "backend", "synapse_room"));
  EXPECT_FALSE(ack.set_var(scope::txn, "big", std::string(300, 'x')));
  // Everything after a dropped action is dropped too, even if it would fit: order is priority.
  EXPECT_FALSE(ack.set_var(scope::txn, "server", "room1"));
  EXPECT_EQ(ack.action_count(), 1u);
  EXPECT_EQ(ack.dropped(), 2u);
  ack.finish();
  EXPECT_LE(out.size(), 256u + 4);
  const frame_result f = decode_frame(bytes_of(out), 256);
  ASSERT_EQ(f.state, decode_state::frame);
  ack_reader r(f.frame.payload);
  action a;
  ASSERT_TRUE(r.next(a));
  EXPECT_EQ(a.name, "backend");
  EXPECT_FALSE(r.next(a));
}

TEST(Ack, FillsFrameExactly) {
  // Header 7 bytes (sid 1, fid 1); set-var txn "v" STRING of n bytes takes 3+2+1+2+n (n ≥ 240).
  std::string out;
  ack_builder ack(out, 1, 1, 256);
  EXPECT_FALSE(ack.set_var(scope::txn, "v", std::string(256 - 7 - 8 + 1, 'x')));
  std::string out2;
  ack_builder ack2(out2, 1, 1, 256);
  EXPECT_TRUE(ack2.set_var(scope::txn, "v", std::string(256 - 7 - 8, 'x')));
  ack2.finish();
  EXPECT_EQ(out2.size(), 256u + 4);
}

TEST(Ack, FirstActionTooBigLeavesNoop) {
  std::string out;
  ack_builder ack(out, 1, 1, 256);
  EXPECT_FALSE(ack.set_var(scope::txn, "v", std::string(1000, 'x')));
  ack.finish();
  EXPECT_EQ(to_hex(out),
            to_hex(wire(R"(00 00 00 0f  67  00 00 00 01  01 01  02 02 02 04 "noop")")));
}

TEST(Ack, AbandonRemovesTheFrame) {
  std::string out = "prefix";
  ack_builder ack(out, 1, 1, 16380);
  ack.set_var(scope::txn, "a", "b");
  ack.abandon();
  EXPECT_EQ(out, "prefix");
}

TEST(Ack, ReaderIsStrict) {
  action a;
  {
    const std::string w = wire(R"(01 02 02 01 "a" 00)");  // set-var with 2 args
    ack_reader r(bytes_of(w));
    EXPECT_FALSE(r.next(a));
    EXPECT_EQ(r.error(), status::invalid);
  }
  {
    const std::string w = wire(R"(02 02 05 01 "a")");  // scope 5
    ack_reader r(bytes_of(w));
    EXPECT_FALSE(r.next(a));
    EXPECT_EQ(r.error(), status::invalid);
  }
}

}  // namespace
}  // namespace spoa::spop
