// One regression test per pitfall of published proxy configs (synapse-routing.md §9) and per key
// extraction rule of the issue ("keys done right").

#include <gtest/gtest.h>

#include "routing_fixture.hpp"

namespace spoa::routing::test {
namespace {

constexpr std::string_view room = "!abc:example.org";

// §9.1: a broad "path contains a room ID" rule before the writers sent typing to room workers,
// which answer 500 (not the typing writer).
TEST(Pitfall, TypingWithRoomIdGoesToTheWriterNotARoomWorker) {
  const route_table& t = default_table();
  for (const char* path : {
           "/_matrix/client/v3/rooms/!abc:example.org/typing/@alice:example.org",
           "/_matrix/client/v3/rooms/!abc%3Aexample.org/typing/%40alice%3Aexample.org",
           "/_matrix/client/v3/rooms/%21abc%3Aexample.org/typing/%40alice%3Aexample.org",
       }) {
    const outcome o = classify(t, "PUT", path);
    EXPECT_EQ(o.pool, "client_sync") << path;
    EXPECT_EQ(o.rule, "typing") << path;
  }
}

TEST(Pitfall, ReceiptsReadMarkersAndRoomAccountDataGoToTheWriter) {
  const route_table& t = default_table();
  EXPECT_EQ(classify(t, "POST", "/_matrix/client/v3/rooms/!abc:example.org/receipt/m.read/$e").pool,
            "client_sync");
  EXPECT_EQ(classify(t, "POST", "/_matrix/client/v3/rooms/!abc:example.org/read_markers").pool,
            "client_sync");
  EXPECT_EQ(classify(t, "PUT",
                     "/_matrix/client/v3/user/@a:example.org/rooms/!abc:example.org/account_data/x")
                .pool,
            "client_sync");
  EXPECT_EQ(
      classify(t, "PUT", "/_matrix/client/v3/user/@a:example.org/rooms/!abc:example.org/tags/t")
          .pool,
      "client_sync");
}

// §9.2: a greedy regex capture up to the last ':' made the key room + user.
TEST(Pitfall, GreedyCaptureKeyIsTheRoomOnly) {
  const route_table& t = default_table();
  EXPECT_EQ(
      classify(t, "PUT", "/_matrix/client/v3/rooms/!abc:example.org/state/m.room.member/@u:s").key,
      room);
  EXPECT_EQ(classify(t, "PUT",
                     "/_matrix/client/v3/rooms/%21abc%3Aexample.org/state/m.room.member/%40u%3As")
                .key,
            room);
  EXPECT_EQ(
      classify(t, "GET", "/_matrix/federation/v1/make_join/%21abc%3Aexample.org/%40u%3Ao").key,
      room);
  EXPECT_EQ(
      classify(t, "PUT", "/_matrix/federation/v2/send_join/%21abc%3Aexample.org/%24e%3Ao").key,
      room);
}

// §9.3: maps requiring ':' after the localpart missed room v12 IDs (no server part).
TEST(Pitfall, RoomVersion12IdsKeepRoomAffinity) {
  const route_table& t = default_table();
  constexpr std::string_view v12 = "!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM";
  for (const char* path : {
           "/_matrix/client/v3/rooms/!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM/messages",
           "/_matrix/client/v3/rooms/%2131hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM/messages",
           "/_matrix/federation/v1/state_ids/%2131hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM",
           "/_matrix/client/v1/rooms/!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM/hierarchy",
       }) {
    const outcome o = classify(t, "GET", path);
    EXPECT_EQ(o.pool, "room") << path;
    EXPECT_EQ(o.key, v12) << path;
  }
}

// §9.4 and §7: every mix of '!'/'%21' and ':'/'%3A'/'%3a' yields the same key.
TEST(Pitfall, EncodedColonAndBangGiveOneKey) {
  const route_table& t = default_table();
  for (const char* id : {"!abc:example.org", "%21abc%3Aexample.org", "!abc%3Aexample.org",
                         "%21abc:example.org", "!abc%3aexample.org", "%21abc%3aexample.org"}) {
    const std::string path = std::string("/_matrix/client/v3/rooms/") + id + "/messages";
    const outcome o = classify(t, "GET", path);
    EXPECT_EQ(o.pool, "room") << path;
    EXPECT_EQ(o.key, room) << path;
  }
}

// §9.5: proxy addresses as keys. Federation /send is keyed by the X-Matrix origin, never by a
// source address; with no origin the key is empty (placement balances by load).
TEST(Pitfall, FederationSendIsKeyedByOriginNotAddress) {
  const route_table& t = default_table();
  const outcome with = classify(t, "PUT", "/_matrix/federation/v1/send/1", "", "remote.example");
  EXPECT_EQ(with.key, "remote.example");
  EXPECT_EQ(with.kind, key_kind::origin);
  const outcome without = classify(t, "PUT", "/_matrix/federation/v1/send/1", "", "");
  EXPECT_EQ(without.pool, "federation_reader");
  EXPECT_EQ(without.key, "");
  EXPECT_EQ(without.kind, key_kind::origin);
}

// §9.6: only upload and the versioned client/federation media prefixes went to media.
TEST(Pitfall, LegacyMediaPathsGoToMedia) {
  const route_table& t = default_table();
  for (const char* path : {"/_matrix/media/v3/config", "/_matrix/media/v3/preview_url?url=x",
                           "/_matrix/media/v3/download/s/m", "/_matrix/media/v3/thumbnail/s/m",
                           "/_matrix/media/v1/create", "/_matrix/media/r0/download/s/m/f.png"}) {
    EXPECT_EQ(classify(t, "GET", path).pool, "media") << path;
  }
}

TEST(Keys, EncodedSlashInsideAnIdIsNotASeparator) {
  const outcome o =
      classify(default_table(), "GET", "/_matrix/client/v3/rooms/!a%2Fb%3Aexample.org/messages");
  EXPECT_EQ(o.rule, "room_messages");
  EXPECT_EQ(o.key, "!a/b:example.org");
}

TEST(Keys, ServerNamesWithPortsAndBracketedIpv6) {
  const route_table& t = default_table();
  EXPECT_EQ(classify(t, "GET", "/_matrix/client/v3/rooms/!abc:example.org:8448/state").key,
            "!abc:example.org:8448");
  EXPECT_EQ(classify(t, "GET", "/_matrix/client/v3/rooms/!abc:[1234:5678::abcd]:8448/state").key,
            "!abc:[1234:5678::abcd]:8448");
  EXPECT_EQ(classify(t, "GET",
                     "/_matrix/federation/v1/state_ids/%21abc%3A%5B1234%3A5678%3A%3Aabcd%5D%3A8448")
                .key,
            "!abc:[1234:5678::abcd]:8448");
}

TEST(Keys, EventIdsWithSlashAfterEventAndContext) {
  const route_table& t = default_table();
  const outcome fed =
      classify(t, "GET", "/_matrix/federation/v1/event/$acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7X");
  EXPECT_EQ(fed.rule, "fed_event");
  const outcome ctx = classify(
      t, "GET", "/_matrix/client/v3/rooms/!abc:example.org/context/$acR1l0raoZnm60CBwAVgqb/mYU8");
  EXPECT_EQ(ctx.rule, "room_context");
  EXPECT_EQ(ctx.key, room);
  const outcome ev = classify(
      t, "GET", "/_matrix/client/v3/rooms/!abc:example.org/event/$acR1l0raoZnm60CBwAVgqb/mYU8");
  EXPECT_EQ(ev.rule, "room_event");
  EXPECT_EQ(ev.key, room);
}

TEST(Keys, JoinAndKnockByAliasHaveNoRoomKey) {
  const route_table& t = default_table();
  const outcome alias = classify(t, "POST", "/_matrix/client/v3/join/%23matrix%3Amatrix.org");
  EXPECT_EQ(alias.pool, "main");
  EXPECT_EQ(alias.key, "");
  const outcome knock = classify(t, "POST", "/_matrix/client/v3/knock/%23room%3Aexample.org");
  EXPECT_EQ(knock.pool, "main");
  EXPECT_EQ(knock.key, "");
  const outcome by_id = classify(t, "POST", "/_matrix/client/v3/join/!abc%3Aexample.org?via=x");
  EXPECT_EQ(by_id.pool, "room");
  EXPECT_EQ(by_id.key, room);
}

TEST(Keys, QueryStringIsStrippedEvenWhenItContainsSlashes) {
  const route_table& t = default_table();
  const outcome o =
      classify(t, "GET", "/_matrix/client/v3/rooms/!abc:example.org/messages?from=a/b/c&dir=b");
  EXPECT_EQ(o.rule, "room_messages");
  EXPECT_EQ(o.key, room);
  EXPECT_EQ(classify(t, "GET", "/_matrix/client/v3/sync?next=/_matrix/media/v3/config").rule,
            "sync");
}

TEST(Keys, MethodAwareGetOnlyGroup) {
  const route_table& t = default_table();
  EXPECT_EQ(classify(t, "GET", "/_matrix/client/v3/pushrules/global/").rule, "push_rules_read");
  EXPECT_EQ(classify(t, "PUT", "/_matrix/client/v3/pushrules/global/override/x").rule,
            "push_rules_write");
  EXPECT_EQ(classify(t, "DELETE", "/_matrix/client/v3/pushrules/global/override/x").rule,
            "push_rules_write");
  EXPECT_EQ(classify(t, "GET", "/_matrix/client/v3/user/@a:b/account_data/x").pool, "client_sync");
  EXPECT_EQ(classify(t, "PUT", "/_matrix/client/v3/user/@a:b/account_data/x").pool, "client_sync");
  EXPECT_EQ(classify(t, "GET", "/_matrix/client/v3/presence/@a:b/status").pool, "client_sync");
  EXPECT_EQ(classify(t, "PUT", "/_matrix/client/v3/presence/@a:b/status").pool, "client_sync");
}

TEST(Keys, AdminRoomDetailsIsWorkerCapableOtherAdminIsMain) {
  const route_table& t = default_table();
  EXPECT_EQ(classify(t, "GET", "/_synapse/admin/v1/rooms/!abc:example.org").pool, "room");
  EXPECT_EQ(classify(t, "GET", "/_synapse/admin/v1/rooms/!abc:example.org/state").pool, "main");
  EXPECT_EQ(classify(t, "GET", "/_synapse/admin/v2/users/@a:b").pool, "main");
  EXPECT_EQ(classify(t, "GET", "/_synapse/admin/v1/media/s/m").pool, "media");
}

}  // namespace
}  // namespace spoa::routing::test
