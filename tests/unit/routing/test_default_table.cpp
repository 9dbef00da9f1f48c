// The embedded table as a whole: it compiles, its order is the documented one, its Markdown
// rendering is stable, and deployments reshape it without code (effective_rules).

#include <gtest/gtest.h>

#include <algorithm>

#include "routing_fixture.hpp"

namespace spoa::routing::test {
namespace {

std::ptrdiff_t index_of(const std::vector<rule_spec>& rules, std::string_view name) {
  const auto it =
      std::find_if(rules.begin(), rules.end(), [&](const rule_spec& r) { return r.name == name; });
  return it == rules.end() ? -1 : it - rules.begin();
}

TEST(DefaultTable, CompilesOverTheReferencePoolsAndNeedsThemAll) {
  EXPECT_FALSE(default_table().rules().empty());
  auto c = route_table::compile(default_rules(), {"main", "room", "federation_reader", "media"});
  ASSERT_TRUE(std::holds_alternative<compile_error>(c));
  EXPECT_EQ(std::get<compile_error>(c).message,
            "rule 'typing' (default): unknown pool 'client_sync'");
}

TEST(DefaultTable, EveryRuleIsFromDefaultAndNamesAreUnique) {
  const auto rules = default_rules();
  for (const rule_spec& r : rules) {
    EXPECT_EQ(r.source, "default") << r.name;
    EXPECT_EQ(index_of(rules, r.name), &r - rules.data()) << r.name;
  }
}

TEST(DefaultTable, LastRuleIsTheCatchAllToMain) {
  const auto rules = default_rules();
  ASSERT_FALSE(rules.empty());
  EXPECT_EQ(rules.back().name, "fallback");
  EXPECT_EQ(rules.back().methods, "*");
  EXPECT_EQ(rules.back().pattern, "/**");
  EXPECT_EQ(rules.back().pool, "main");
}

// "Order is explicit and tested": writer and main-only rules win over room rules.
TEST(DefaultTable, WritersAndMainOnlyRulesComeBeforeRoomRules) {
  const auto rules = default_rules();
  std::ptrdiff_t first_room = -1;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    if (rules[i].pool == "room") {
      first_room = static_cast<std::ptrdiff_t>(i);
      break;
    }
  }
  ASSERT_GE(first_room, 0);
  for (const char* name : {"push_rules_write",
                           "push_rules_read",
                           "room_forget",
                           "room_upgrade",
                           "room_report",
                           "directory_list",
                           "sso_redirect",
                           "synapse_client",
                           "typing",
                           "receipts",
                           "read_markers",
                           "to_device",
                           "presence",
                           "account_data",
                           "room_account_data",
                           "room_tags",
                           "user_directory_search",
                           "sync",
                           "events",
                           "initial_sync",
                           "room_initial_sync",
                           "media",
                           "client_media",
                           "federation_media",
                           "admin_room_media"}) {
    const std::ptrdiff_t i = index_of(rules, name);
    ASSERT_GE(i, 0) << name;
    EXPECT_LT(i, first_room) << name;
  }
  // The broad admin rule comes after the worker-capable and media admin endpoints it contains.
  EXPECT_LT(index_of(rules, "admin_room_details"), index_of(rules, "admin"));
  EXPECT_LT(index_of(rules, "admin_media"), index_of(rules, "admin"));
}

// What goes wrong when the order is wrong (synapse-routing.md §9.1), shown with an operator rule
// placed before the defaults: a broad "anything under rooms/{room}" rule captures typing.
TEST(DefaultTable, ABroadRoomRuleBeforeTheWritersStealsTyping) {
  auto rules = effective_rules(
      {make_rule("all_rooms", "*", "/_matrix/client/v3/rooms/{room}/**", "room", key_kind::room)},
      {}, false);
  ASSERT_TRUE(std::holds_alternative<std::vector<rule_spec>>(rules));
  auto c =
      route_table::compile(std::get<std::vector<rule_spec>>(std::move(rules)), reference_pools());
  ASSERT_TRUE(std::holds_alternative<route_table>(c));
  const route_table& t = std::get<route_table>(c);
  EXPECT_EQ(classify(t, "PUT", "/_matrix/client/v3/rooms/!r:s/typing/@u:s").rule, "all_rooms");
  EXPECT_EQ(classify(default_table(), "PUT", "/_matrix/client/v3/rooms/!r:s/typing/@u:s").rule,
            "typing");
}

TEST(Markdown, GoldenLines) {
  const std::string md = default_table().to_markdown();
  EXPECT_EQ(md.substr(0, md.find('\n', md.find('\n') + 1) + 1),
            "| # | name | methods | pattern | pool | key |\n"
            "|---|---|---|---|---|---|\n");
  const auto rules = default_rules();
  auto row = [&](std::string_view name) {
    const std::string needle = " | " + std::string(name) + " | ";
    const std::size_t at = md.find(needle);
    if (at == std::string::npos) return std::string("<missing>");
    const std::size_t begin = md.rfind('\n', at) + 1;
    return md.substr(begin, md.find('\n', at) - begin);
  };
  auto num = [&](std::string_view name) { return std::to_string(index_of(rules, name) + 1); };
  EXPECT_EQ(row("push_rules_write"),
            "| " + num("push_rules_write") +
                " | push_rules_write | PUT\\|DELETE | "
                "`/_matrix/client/{api/v1\\|r0\\|v3\\|unstable}/pushrules/**` | main | none |");
  EXPECT_EQ(row("typing"), "| " + num("typing") +
                               " | typing | * | `/_matrix/client/{api/v1\\|r0\\|v3\\|unstable}/"
                               "rooms/*/typing/**` | client_sync | user |");
  EXPECT_EQ(row("room_messages"),
            "| " + num("room_messages") +
                " | room_messages | * | `/_matrix/client/{api/v1\\|r0\\|v3\\|unstable}/rooms/"
                "{room}/messages` | room | room |");
  EXPECT_EQ(row("fed_send"), "| " + num("fed_send") +
                                 " | fed_send | * | `/_matrix/federation/v1/send/**` | "
                                 "federation_reader | origin |");
  EXPECT_EQ(row("fallback"), "| " + num("fallback") + " | fallback | * | `/**` | main | none |");
  EXPECT_EQ(static_cast<std::size_t>(std::count(md.begin(), md.end(), '\n')), rules.size() + 2);
}

TEST(Markdown, QueryConditionAndOverriddenDefaultsAreShown) {
  rule_spec initial = make_rule("initial_sync_pool", "GET", "/_matrix/client/{r0|v3}/sync",
                                "initial", key_kind::user, "spoa.yaml:30");
  initial.if_query_absent = "since";
  rule_spec pushw = make_rule("my_push", "PUT|DELETE",
                              "/_matrix/client/{api/v1|r0|v3|unstable}/"
                              "pushrules/**",
                              "main", key_kind::none, "spoa.yaml:35");
  auto rules = effective_rules({initial, pushw}, {}, false);
  auto pools = reference_pools();
  pools.push_back("initial");
  auto c = route_table::compile(std::get<std::vector<rule_spec>>(std::move(rules)), pools);
  ASSERT_TRUE(std::holds_alternative<route_table>(c)) << std::get<compile_error>(c).message;
  const std::string md = std::get<route_table>(c).to_markdown();
  EXPECT_NE(md.find("| 1 | initial_sync_pool | GET | `/_matrix/client/{r0\\|v3}/sync` without "
                    "`?since` | initial | user |\n"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| 3 | push_rules_write | PUT\\|DELETE | `/_matrix/client/{api/v1\\|r0\\|v3\\|"
                    "unstable}/pushrules/**` (overridden by #2) | main | none |\n"),
            std::string::npos)
      << md;
}

// --- effective_rules: "configurable without code" ------------------------------------------

std::vector<std::string> big_pools() {
  auto p = reference_pools();
  p.insert(p.end(), {"sync", "initial_sync", "event_senders", "push_writer"});
  return p;
}

TEST(EffectiveRules, PrependRetargetAndCompileADifferentTopology) {
  // Several sync workers keyed by user, initial syncs in their own pool, a dedicated
  // event-sending pool keyed by room, and a push_rules writer.
  rule_spec initial = make_rule("initial_sync", "*", "/_matrix/client/{r0|v3}/sync", "initial_sync",
                                key_kind::user, "spoa.yaml:40");
  initial.if_query_absent = "since";
  rule_spec send =
      make_rule("event_send", "PUT|POST",
                "/_matrix/client/{api/v1|r0|v3|unstable}/rooms/{room}/{send|redact}/**",
                "event_senders", key_kind::room, "spoa.yaml:44");
  auto rules = effective_rules({initial, send},
                               {{"sync", "sync"},
                                {"events", "sync"},
                                {"push_rules_write", "push_writer"},
                                {"push_rules_read", "push_writer"}},
                               false);
  ASSERT_TRUE(std::holds_alternative<std::vector<rule_spec>>(rules))
      << std::get<compile_error>(rules).message;
  // The prepended rule named initial_sync collides with the default of the same name.
  auto dup = route_table::compile(std::get<std::vector<rule_spec>>(rules), big_pools());
  ASSERT_TRUE(std::holds_alternative<compile_error>(dup));
  EXPECT_EQ(std::get<compile_error>(dup).message,
            "rule 'initial_sync' (default): duplicate name (first used at spoa.yaml:40)");

  initial.name = "initial_sync_pool";
  rules = effective_rules({initial, send}, {{"sync", "sync"}, {"push_rules_write", "push_writer"}},
                          false);
  auto c = route_table::compile(std::get<std::vector<rule_spec>>(std::move(rules)), big_pools());
  ASSERT_TRUE(std::holds_alternative<route_table>(c)) << std::get<compile_error>(c).message;
  const route_table& t = std::get<route_table>(c);
  EXPECT_EQ(t.rules()[0].name, "initial_sync_pool");
  const outcome first = classify(t, "GET", "/_matrix/client/v3/sync?timeout=0");
  EXPECT_EQ(first.pool, "initial_sync");
  EXPECT_EQ(first.key, corpus_user);
  EXPECT_EQ(classify(t, "GET", "/_matrix/client/v3/sync?since=s1").pool, "sync");
  const outcome sent = classify(t, "PUT", "/_matrix/client/v3/rooms/!r%3As/send/m.room.message/1");
  EXPECT_EQ(sent.pool, "event_senders");
  EXPECT_EQ(sent.key, "!r:s");
  EXPECT_EQ(classify(t, "GET", "/_matrix/client/v3/rooms/!r:s/messages").pool, "room");
  EXPECT_EQ(classify(t, "PUT", "/_matrix/client/v3/pushrules/global/override/x").pool,
            "push_writer");
  EXPECT_EQ(classify(t, "GET", "/_matrix/client/v3/pushrules/").pool, "main");
}

TEST(EffectiveRules, UnknownRetargetIsAnError) {
  auto rules = effective_rules({}, {{"typnig", "main"}}, false);
  ASSERT_TRUE(std::holds_alternative<compile_error>(rules));
  EXPECT_EQ(std::get<compile_error>(rules).message, "retarget: no rule named 'typnig'");
}

TEST(EffectiveRules, RetargetToAnUnknownPoolFailsAtCompile) {
  auto rules = effective_rules({}, {{"typing", "typing_writer"}}, false);
  ASSERT_TRUE(std::holds_alternative<std::vector<rule_spec>>(rules));
  auto c =
      route_table::compile(std::get<std::vector<rule_spec>>(std::move(rules)), reference_pools());
  ASSERT_TRUE(std::holds_alternative<compile_error>(c));
  EXPECT_EQ(std::get<compile_error>(c).message,
            "rule 'typing' (default): unknown pool 'typing_writer'");
}

TEST(EffectiveRules, ReplaceDefaultsKeepsOnlyTheOperatorRules) {
  std::vector<rule_spec> mine = {make_rule("rooms", "*", "/_matrix/client/v3/rooms/{room}/**",
                                           "room", key_kind::room, "s.yaml:2"),
                                 make_rule("rest", "*", "/**", "main", key_kind::none, "s.yaml:3")};
  auto rules = effective_rules(mine, {{"rest", "media"}}, true);
  ASSERT_TRUE(std::holds_alternative<std::vector<rule_spec>>(rules));
  const auto& list = std::get<std::vector<rule_spec>>(rules);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[1].pool, "media");
  // With replace_defaults the default names are not there to retarget.
  auto bad = effective_rules(mine, {{"typing", "main"}}, true);
  ASSERT_TRUE(std::holds_alternative<compile_error>(bad));
  EXPECT_EQ(std::get<compile_error>(bad).message, "retarget: no rule named 'typing'");
}

TEST(EffectiveRules, OperatorRuleShadowedByAnEarlierOperatorRuleIsAnError) {
  auto rules = effective_rules({make_rule("rooms", "*", "/_matrix/client/v3/rooms/{room}/**",
                                          "room", key_kind::room, "s.yaml:2"),
                                make_rule("send", "PUT", "/_matrix/client/v3/rooms/{room}/send/**",
                                          "main", key_kind::none, "s.yaml:8")},
                               {}, false);
  auto c =
      route_table::compile(std::get<std::vector<rule_spec>>(std::move(rules)), reference_pools());
  ASSERT_TRUE(std::holds_alternative<compile_error>(c));
  EXPECT_EQ(std::get<compile_error>(c).message,
            "rule 'send' (s.yaml:8) can never match: rule 'rooms' (s.yaml:2) before it matches "
            "every request it matches");
}

TEST(EffectiveRules, DefaultsOverriddenByAnOperatorRuleAreNotAnError) {
  // A prepended catch-all overrides every default: allowed, they are marked overridden.
  auto rules = effective_rules({make_rule("everything", "*", "/**", "main")}, {}, false);
  auto c =
      route_table::compile(std::get<std::vector<rule_spec>>(std::move(rules)), reference_pools());
  ASSERT_TRUE(std::holds_alternative<route_table>(c));
  const route_table& t = std::get<route_table>(c);
  EXPECT_EQ(classify(t, "GET", "/_matrix/client/v3/sync").rule, "everything");
  const std::string md = t.to_markdown();
  EXPECT_NE(md.find("`/**` (overridden by #1) | main | none |"), std::string::npos);
}

}  // namespace
}  // namespace spoa::routing::test
