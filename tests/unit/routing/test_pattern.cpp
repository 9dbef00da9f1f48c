// Pattern syntax, matching semantics and compile errors (exact messages), on small tables.

#include <gtest/gtest.h>

#include "routing/pattern.hpp"
#include "routing_fixture.hpp"

namespace spoa::routing::test {
namespace {

std::vector<std::string> pools() {
  return {"main", "a", "b"};
}

route_table must_compile(std::vector<rule_spec> rules) {
  auto c = route_table::compile(std::move(rules), pools());
  if (auto* e = std::get_if<compile_error>(&c)) {
    ADD_FAILURE() << e->message;
    return std::get<route_table>(route_table::compile({}, pools()));
  }
  return std::get<route_table>(std::move(c));
}

std::string error_of(std::vector<rule_spec> rules, std::vector<std::string> p = pools()) {
  auto c = route_table::compile(std::move(rules), std::move(p));
  if (auto* e = std::get_if<compile_error>(&c)) return e->message;
  return "<compiled>";
}

std::string pattern_error_of(std::string pattern) {
  return error_of({make_rule("r", "*", std::move(pattern), "a")});
}

TEST(PatternErrors, ExactMessages) {
  EXPECT_EQ(pattern_error_of("a/b"),
            "rule 'r' (test.yaml:1): malformed pattern 'a/b': must start with '/' at column 1");
  EXPECT_EQ(pattern_error_of(""),
            "rule 'r' (test.yaml:1): malformed pattern '': must start with '/' at column 1");
  EXPECT_EQ(pattern_error_of("/a/{r0|v3"),
            "rule 'r' (test.yaml:1): malformed pattern '/a/{r0|v3': unterminated '{' at column 4");
  EXPECT_EQ(pattern_error_of("/a/{roomid}"),
            "rule 'r' (test.yaml:1): malformed pattern '/a/{roomid}': unknown capture '{roomid}' "
            "(room, alias, user, event, room_or_alias; or a|b) at column 4");
  EXPECT_EQ(pattern_error_of("/a/{r0||v3}"),
            "rule 'r' (test.yaml:1): malformed pattern '/a/{r0||v3}': empty alternative at column "
            "8");
  EXPECT_EQ(pattern_error_of("/a/{r0|api//v1}"),
            "rule 'r' (test.yaml:1): malformed pattern '/a/{r0|api//v1}': empty segment in "
            "alternative at column 12");
  EXPECT_EQ(pattern_error_of("/a/**/b"),
            "rule 'r' (test.yaml:1): malformed pattern '/a/**/b': '**' must be the last segment "
            "at column 4");
  EXPECT_EQ(pattern_error_of("/a//b"),
            "rule 'r' (test.yaml:1): malformed pattern '/a//b': empty segment at column 4");
  EXPECT_EQ(pattern_error_of("/a/b*"),
            "rule 'r' (test.yaml:1): malformed pattern '/a/b*': bad character '*' at column 5");
  EXPECT_EQ(pattern_error_of("/a/{r0|v3}x"),
            "rule 'r' (test.yaml:1): malformed pattern '/a/{r0|v3}x': '{...}' must be a whole "
            "segment at column 11");
  EXPECT_EQ(pattern_error_of("/a/{r0|{v3}}"),
            "rule 'r' (test.yaml:1): malformed pattern '/a/{r0|{v3}}': nested '{' at column 8");
  EXPECT_EQ(pattern_error_of("/a/b?x=1"),
            "rule 'r' (test.yaml:1): malformed pattern '/a/b?x=1': bad character '?' at column 5");
  EXPECT_EQ(pattern_error_of("/a/{room}/{room_or_alias}"),
            "rule 'r' (test.yaml:1): malformed pattern '/a/{room}/{room_or_alias}': more than one "
            "room capture");
  EXPECT_EQ(pattern_error_of("/{a|b}/{a|b}/{a|b}/{a|b}/{a|b}/{a|b}/{a|b}"),
            "rule 'r' (test.yaml:1): malformed pattern '/{a|b}/{a|b}/{a|b}/{a|b}/{a|b}/{a|b}/"
            "{a|b}': more than 64 alternative expansions at column 1");
}

TEST(CompileErrors, UnknownPool) {
  EXPECT_EQ(error_of({make_rule("events", "*", "/x", "event_senders", key_kind::none,
                                "/etc/spoa.yaml:42")}),
            "rule 'events' (/etc/spoa.yaml:42): unknown pool 'event_senders'");
}

TEST(CompileErrors, MalformedMethods) {
  EXPECT_EQ(error_of({make_rule("r", "GET||PUT", "/x", "a")}),
            "rule 'r' (test.yaml:1): malformed methods 'GET||PUT': empty method token");
  EXPECT_EQ(error_of({make_rule("r", "GET PUT", "/x", "a")}),
            "rule 'r' (test.yaml:1): malformed methods 'GET PUT': bad character ' ' in method "
            "'GET PUT'");
  EXPECT_EQ(error_of({make_rule("r", "", "/x", "a")}),
            "rule 'r' (test.yaml:1): malformed methods '': empty");
}

TEST(CompileErrors, RoomKeyNeedsARoomCapture) {
  EXPECT_EQ(error_of({make_rule("r", "*", "/rooms/*/send", "a", key_kind::room)}),
            "rule 'r' (test.yaml:1): key room needs a {room} or {room_or_alias} capture in every "
            "alternative");
  EXPECT_EQ(error_of({make_rule("r", "*", "/{x/{room}|y}", "a", key_kind::room)}),
            "rule 'r' (test.yaml:1): malformed pattern '/{x/{room}|y}': nested '{' at column 5");
}

TEST(CompileErrors, DuplicateName) {
  EXPECT_EQ(error_of({make_rule("r", "*", "/x", "a", key_kind::none, "f.yaml:3"),
                      make_rule("r", "*", "/y", "a", key_kind::none, "f.yaml:9")}),
            "rule 'r' (f.yaml:9): duplicate name (first used at f.yaml:3)");
}

TEST(CompileErrors, ShadowedRuleNamesBothRules) {
  EXPECT_EQ(error_of({make_rule("all_rooms", "*", "/rooms/*/**", "a", key_kind::none, "f.yaml:3"),
                      make_rule("typing", "PUT", "/rooms/{room}/typing/{user}", "b", key_kind::none,
                                "f.yaml:7")}),
            "rule 'typing' (f.yaml:7) can never match: rule 'all_rooms' (f.yaml:3) before it "
            "matches every request it matches");
}

struct shadow_case {
  const char* a_methods;
  const char* a;
  const char* b_methods;
  const char* b;
  bool shadowed;
};

TEST(Shadow, SegmentWiseSubsumption) {
  const shadow_case cases[] = {
      {"*", "/x/**", "*", "/x", true},  // ** matches nothing too
      {"*", "/x/**", "*", "/x/y/**", true},
      {"*", "/x/*", "*", "/x/y", true},
      {"*", "/x/*", "*", "/x/{room}", true},
      {"*", "/x/{room_or_alias}", "*", "/x/{alias}", true},
      {"*", "/x/{room}", "*", "/x/{alias}", false},  // disjoint sigils
      {"*", "/x/{room}", "*", "/x/*", false},
      {"*", "/x/{room}", "*", "/x/!literal", true},  // the literal is a room ID
      {"*", "/x/{room}", "*", "/x/%21literal", true},
      {"*", "/x/*", "*", "/x/", false},  // '*' needs a non-empty segment
      {"*", "/x/y", "*", "/x/**", false},
      {"*", "/x/{a|b}", "*", "/x/a", true},
      {"*", "/x/a", "*", "/x/{a|b}", false},  // only one alternative covered
      {"*", "/{a|b}/**", "*", "/{b|a}/c", true},
      {"*", "/{api/v1|v3}/x", "*", "/api/v1/x", true},
      {"*", "/x", "*", "/x/", false},
      {"GET", "/x", "GET|HEAD", "/x", false},  // methods must be a superset
      {"GET|HEAD", "/x", "HEAD", "/x", true},
      {"GET", "/x", "*", "/x", false},
      {"*", "/x", "GET", "/x", true},
  };
  for (const shadow_case& c : cases) {
    const std::string msg =
        error_of({make_rule("a", c.a_methods, c.a, "a"), make_rule("b", c.b_methods, c.b, "b")});
    EXPECT_EQ(msg.find("can never match") != std::string::npos, c.shadowed)
        << c.a_methods << " " << c.a << " vs " << c.b_methods << " " << c.b << ": " << msg;
  }
}

TEST(Shadow, RuleWithQueryConditionShadowsNothing) {
  rule_spec initial = make_rule("initial", "*", "/sync", "a");
  initial.if_query_absent = "since";
  EXPECT_EQ(error_of({initial, make_rule("sync", "*", "/sync", "b")}), "<compiled>");
}

TEST(Matching, SegmentsTrailingSlashAndRest) {
  const route_table t = must_compile({
      make_rule("exact", "*", "/a/b", "a"),
      make_rule("slash", "*", "/a/c/", "a"),
      make_rule("prefix", "*", "/p/**", "a"),
      make_rule("one", "*", "/o/*", "a"),
      make_rule("all", "*", "/**", "main"),
  });
  EXPECT_EQ(classify(t, "GET", "/a/b").rule, "exact");
  EXPECT_EQ(classify(t, "GET", "/a/b/").rule, "all");
  EXPECT_EQ(classify(t, "GET", "/a/b/c").rule, "all");
  EXPECT_EQ(classify(t, "GET", "/a/c/").rule, "slash");
  EXPECT_EQ(classify(t, "GET", "/a/c").rule, "all");
  EXPECT_EQ(classify(t, "GET", "/p").rule, "prefix");
  EXPECT_EQ(classify(t, "GET", "/p/").rule, "prefix");
  EXPECT_EQ(classify(t, "GET", "/p/x/y/z").rule, "prefix");
  EXPECT_EQ(classify(t, "GET", "/px").rule, "all");
  EXPECT_EQ(classify(t, "GET", "/o/x").rule, "one");
  EXPECT_EQ(classify(t, "GET", "/o/").rule, "all");  // '*' needs a non-empty segment
  EXPECT_EQ(classify(t, "GET", "/o/x/y").rule, "all");
  EXPECT_EQ(classify(t, "GET", "").rule, "all");
  EXPECT_EQ(classify(t, "GET", "*").rule, "all");
  EXPECT_EQ(classify(t, "GET", "a/b").rule, "exact");  // no leading '/': split the same way
}

TEST(Matching, AlternativesSpanSegments) {
  const route_table t = must_compile({make_rule("s", "*", "/c/{api/v1|r0|v3}/sync", "a")});
  EXPECT_EQ(classify(t, "GET", "/c/api/v1/sync").rule, "s");
  EXPECT_EQ(classify(t, "GET", "/c/r0/sync").rule, "s");
  EXPECT_EQ(classify(t, "GET", "/c/v3/sync").rule, "s");
  EXPECT_EQ(classify(t, "GET", "/c/api/sync").rule, "");
  EXPECT_EQ(classify(t, "GET", "/c/v1/sync").rule, "");
  EXPECT_EQ(classify(t, "GET", "/c/V3/sync").rule, "");  // literals are case-sensitive
}

TEST(Matching, FirstRuleWinsAcrossBranches) {
  // The literal branch ("b") is deeper than the wildcard one, but the wildcard rule is earlier.
  const route_table t = must_compile({
      make_rule("wild_first", "*", "/a/*/x", "a"),
      make_rule("literal", "*", "/a/b/**", "b"),
  });
  EXPECT_EQ(classify(t, "GET", "/a/b/x").rule, "wild_first");
  EXPECT_EQ(classify(t, "GET", "/a/b/y").rule, "literal");
  const route_table u = must_compile({
      make_rule("literal", "*", "/a/b/x", "b"),
      make_rule("wild", "*", "/a/*/x", "a"),
  });
  EXPECT_EQ(classify(u, "GET", "/a/b/x").rule, "literal");
  EXPECT_EQ(classify(u, "GET", "/a/c/x").rule, "wild");
}

TEST(Matching, MethodsAreExactTokens) {
  const route_table t = must_compile({
      make_rule("get", "GET", "/x", "a"),
      make_rule("write", "PUT|DELETE", "/x", "b"),
      make_rule("any", "*", "/x", "main"),
  });
  EXPECT_EQ(classify(t, "GET", "/x").rule, "get");
  EXPECT_EQ(classify(t, "HEAD", "/x").rule, "any");  // HEAD is not implied by GET
  EXPECT_EQ(classify(t, "get", "/x").rule, "any");   // case-sensitive
  EXPECT_EQ(classify(t, "PUT", "/x").rule, "write");
  EXPECT_EQ(classify(t, "DELETE", "/x").rule, "write");
  EXPECT_EQ(classify(t, "PATCH", "/x").rule, "any");  // a method no rule names
  EXPECT_EQ(classify(t, "", "/x").rule, "any");
}

TEST(Matching, IfQueryAbsent) {
  rule_spec initial = make_rule("initial", "GET", "/sync", "a", key_kind::user);
  initial.if_query_absent = "since";
  const route_table t = must_compile({initial, make_rule("sync", "*", "/sync", "b")});
  EXPECT_EQ(classify(t, "GET", "/sync").rule, "initial");
  EXPECT_EQ(classify(t, "GET", "/sync?timeout=0").rule, "initial");
  EXPECT_EQ(classify(t, "GET", "/sync?since_x=1").rule, "initial");
  EXPECT_EQ(classify(t, "GET", "/sync?xsince=1").rule, "initial");
  EXPECT_EQ(classify(t, "GET", "/sync?since=s1").rule, "sync");
  EXPECT_EQ(classify(t, "GET", "/sync?timeout=0&since=s1").rule, "sync");
  EXPECT_EQ(classify(t, "GET", "/sync?since=").rule, "sync");
  EXPECT_EQ(classify(t, "GET", "/sync?since").rule, "sync");
  // request::query wins over the path's own query when it is given.
  EXPECT_EQ(classify(t, "GET", "/sync", "u", "o", "since=s1").rule, "sync");
  EXPECT_EQ(classify(t, "GET", "/sync?since=s1", "u", "o", "timeout=1").rule, "initial");
  EXPECT_EQ(classify(t, "POST", "/sync").rule, "sync");
}

TEST(Matching, TypedCapturesAndRoomOrAliasKey) {
  const route_table t = must_compile({
      make_rule("by_room", "*", "/r/{room}", "a", key_kind::room),
      make_rule("by_alias", "*", "/r/{alias}", "b"),
      make_rule("user", "*", "/u/{user}", "a", key_kind::user),
      make_rule("event", "*", "/e/{event}", "a"),
      make_rule("either", "*", "/j/{room_or_alias}", "a", key_kind::room),
  });
  EXPECT_EQ(classify(t, "GET", "/r/!x:y").rule, "by_room");
  EXPECT_EQ(classify(t, "GET", "/r/%21x%3Ay").key, "!x:y");
  EXPECT_EQ(classify(t, "GET", "/r/%23x%3Ay").rule, "by_alias");
  EXPECT_EQ(classify(t, "GET", "/r/x:y").rule, "");
  EXPECT_EQ(classify(t, "GET", "/u/%40a%3Ab").rule, "user");
  EXPECT_EQ(classify(t, "GET", "/u/@a:b", "the-user").key, "the-user");
  EXPECT_EQ(classify(t, "GET", "/u/a").rule, "");
  EXPECT_EQ(classify(t, "GET", "/e/%24ev").rule, "event");
  const outcome room = classify(t, "GET", "/j/%21x%3Ay");
  EXPECT_EQ(room.rule, "either");
  EXPECT_EQ(room.key, "!x:y");
  const outcome alias = classify(t, "GET", "/j/%23x%3Ay");
  EXPECT_EQ(alias.rule, "either");
  EXPECT_EQ(alias.key, "");
  EXPECT_EQ(alias.kind, key_kind::room);
}

TEST(Matching, OverlongCaptureRoutesWithoutKey) {
  const route_table t = must_compile({make_rule("r", "*", "/r/{room}", "a", key_kind::room)});
  const std::string fits = "!" + std::string(767, 'a');
  EXPECT_EQ(classify(t, "GET", "/r/" + fits).key, fits);
  const std::string too_long = "!" + std::string(768, 'a');
  const outcome o = classify(t, "GET", "/r/" + too_long);
  EXPECT_EQ(o.rule, "r");
  EXPECT_EQ(o.key, "");
  // Escapes shrink: 768 decoded bytes written as 2304 raw bytes still fit.
  std::string escaped = "%21";
  for (int i = 0; i < 767; ++i)
    escaped += "%61";
  EXPECT_EQ(classify(t, "GET", "/r/" + escaped).key, fits);
}

TEST(Matching, DeepPathsAndManySegmentsAreHarmless) {
  const route_table t = must_compile({make_rule("r", "*", "/a/**", "a")});
  std::string deep = "/a";
  for (int i = 0; i < 10000; ++i)
    deep += "/x";
  EXPECT_EQ(classify(t, "GET", deep).rule, "r");
  std::string other = "/b";
  for (int i = 0; i < 10000; ++i)
    other += "/";
  EXPECT_EQ(classify(t, "GET", other).rule, "");
}

TEST(Matching, EmptyTableMatchesNothing) {
  const route_table t = must_compile({});
  const outcome o = classify(t, "GET", "/x");
  EXPECT_EQ(o.rule, "");
  EXPECT_EQ(o.pool, "");
}

TEST(PatternParse, ExpandsAlternatives) {
  auto parsed = parse_pattern("/_matrix/client/{api/v1|r0}/rooms/{room}/**");
  ASSERT_TRUE(std::holds_alternative<std::vector<segment_sequence>>(parsed));
  const auto& seqs = std::get<std::vector<segment_sequence>>(parsed);
  ASSERT_EQ(seqs.size(), 2u);
  EXPECT_EQ(seqs[0].size(), 7u);
  EXPECT_EQ(seqs[1].size(), 6u);
  EXPECT_EQ(room_capture_index(seqs[0]), 5);
  EXPECT_EQ(room_capture_index(seqs[1]), 4);
  EXPECT_EQ(seqs[0].back().kind, segment_kind::rest);
}

}  // namespace
}  // namespace spoa::routing::test
