// Route table classification speed over a realistic, weighted request mix (one classification per
// iteration, so "Time" is ns per classification), next to a naive baseline that tries one
// std::regex per rule in order, as nginx-style configs do.
//
//   bench_classify --benchmark_repetitions=5 --benchmark_display_aggregates_only=true
//
// Target (issue 3): <= 200 ns median per request on the project's machines, no allocation (the
// no-allocation property is a unit test: tests/unit/routing/test_no_alloc.cpp).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "routing/route_table.hpp"

namespace {

using namespace spoa::routing;

struct weighted {
  int weight;  // out of ~100: rough shape of a busy homeserver's traffic
  const char* method;
  const char* path;
  const char* user;
  const char* origin;
};

const weighted mix[] = {
    {20, "GET", "/_matrix/client/v3/sync?since=s72594_4483_1934&timeout=30000", "YWxpY2U", ""},
    {3, "GET", "/_matrix/client/r0/sync?filter=0&timeout=0", "Ym9i", ""},
    {2, "GET", "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync?pos=12", "Y2Fyb2w", ""},
    {8, "PUT", "/_matrix/federation/v1/send/1700000000000", "", "matrix.org"},
    {6, "PUT", "/_matrix/client/v3/rooms/!OGEhHVWSdvArJzumhm%3Amatrix.org/send/m.room.message/m17",
     "YWxpY2U", ""},
    {5, "GET", "/_matrix/client/v3/rooms/!OGEhHVWSdvArJzumhm:matrix.org/messages?dir=b&limit=30",
     "Ym9i", ""},
    {3, "PUT", "/_matrix/client/v3/rooms/!abc%3Aexample.org/typing/%40alice%3Aexample.org",
     "YWxpY2U", ""},
    {4, "POST", "/_matrix/client/v3/rooms/!abc:example.org/receipt/m.read/$Rqnc-F-dvnEYJTyHq_iKx",
     "YWxpY2U", ""},
    {2, "POST", "/_matrix/client/v3/rooms/%21abc%3Aexample.org/read_markers", "YWxpY2U", ""},
    {2, "PUT", "/_matrix/client/v3/sendToDevice/m.room.encrypted/txn1", "YWxpY2U", ""},
    {2, "PUT", "/_matrix/client/v3/presence/%40alice%3Aexample.org/status", "YWxpY2U", ""},
    {2, "PUT",
     "/_matrix/client/v3/user/%40alice%3Aexample.org/rooms/!abc%3Aexample.org/account_data/m.fu",
     "YWxpY2U", ""},
    {4, "GET", "/_matrix/federation/v1/state_ids/%21abc%3Aexample.org?event_id=%24ev", "",
     "matrix.org"},
    {2, "GET", "/_matrix/federation/v1/backfill/%21abc%3Aexample.org?v=%24ev&limit=100", "",
     "matrix.org"},
    {1, "GET", "/_matrix/federation/v1/make_join/%21abc%3Aexample.org/%40bob%3Aother.org?ver=10",
     "", "other.org"},
    {2, "GET", "/_matrix/federation/v1/event/%24Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92", "", "matrix.org"},
    {2, "GET", "/_matrix/key/v2/query/example.org", "", "matrix.org"},
    {1, "GET", "/_matrix/federation/v1/query/profile?user_id=%40a%3Ab", "", "matrix.org"},
    {4, "GET", "/_matrix/client/v1/media/thumbnail/example.org/AbCdEf?width=64&height=64",
     "YWxpY2U", ""},
    {3, "GET", "/_matrix/client/v1/media/download/example.org/AbCdEf", "YWxpY2U", ""},
    {1, "POST", "/_matrix/media/v3/upload?filename=a.png", "YWxpY2U", ""},
    {3, "POST", "/_matrix/client/v3/keys/query", "YWxpY2U", ""},
    {1, "GET", "/_matrix/client/versions", "", ""},
    {1, "GET", "/_matrix/client/v3/pushrules/", "YWxpY2U", ""},
    {1, "GET", "/_matrix/client/v3/rooms/!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM/state",
     "YWxpY2U", ""},
    {1, "GET", "/_matrix/client/v3/rooms/!abc:example.org/context/$acR1l0raoZnm60/mYU8?limit=10",
     "YWxpY2U", ""},
    {1, "POST", "/_matrix/client/v3/join/%23matrix%3Amatrix.org", "YWxpY2U", ""},
    {1, "GET", "/_matrix/client/v3/profile/%40bob%3Aexample.org", "YWxpY2U", ""},
    {1, "GET", "/_synapse/admin/v1/rooms/!abc:example.org", "", ""},
    {1, "GET", "/.well-known/matrix/client", "", ""},
};

std::vector<request> build_mix() {
  std::vector<request> out;
  for (const weighted& w : mix) {
    for (int i = 0; i < w.weight; ++i)
      out.push_back({w.method, w.path, {}, w.user, w.origin});
  }
  std::mt19937 rng(20260712);  // seeded: the same order every run
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

std::vector<std::string> pools() {
  return {"main", "client_sync", "room", "federation_reader", "media"};
}

const route_table& table() {
  static const route_table t = [] {
    auto c = route_table::compile(default_rules(), pools());
    if (auto* e = std::get_if<compile_error>(&c)) {
      std::fprintf(stderr, "%s\n", e->message.c_str());
      std::abort();
    }
    return std::get<route_table>(std::move(c));
  }();
  return t;
}

void BM_classify_mix(benchmark::State& state) {
  const route_table& t = table();
  const std::vector<request> reqs = build_mix();
  key_buffer buf;
  std::size_t i = 0;
  for (auto _ : state) {
    const classification c = t.classify(reqs[i], buf);
    benchmark::DoNotOptimize(c);
    if (++i == reqs.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_classify_mix);

// Single shapes: the cheapest, a deep room path, the catch-all.
void BM_classify_one(benchmark::State& state, const char* method, const char* path) {
  const route_table& t = table();
  const request r{method, path, {}, "YWxpY2U", "matrix.org"};
  key_buffer buf;
  for (auto _ : state) {
    const classification c = t.classify(r, buf);
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK_CAPTURE(BM_classify_one, sync, "GET", "/_matrix/client/v3/sync?since=s1");
BENCHMARK_CAPTURE(BM_classify_one, room_send, "PUT",
                  "/_matrix/client/v3/rooms/%21OGEhHVWSdvArJzumhm%3Amatrix.org/send/m.room.message/"
                  "m1700000000000.0");
BENCHMARK_CAPTURE(BM_classify_one, fallback, "GET", "/.well-known/matrix/client");

// --- baseline: one std::regex per rule, tried in order --------------------------------------

std::string to_regex(const std::string& pattern) {
  std::string re = "^";
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (pattern.compare(i, 3, "/**") == 0 && i + 3 == pattern.size()) {
      re += "(?:/.*)?";
      break;
    }
    if (c == '{') {
      const std::size_t close = pattern.find('}', i);
      const std::string body = pattern.substr(i + 1, close - i - 1);
      if (body == "room")
        re += "(?:!|%21)[^/]*";
      else if (body == "alias")
        re += "(?:#|%23)[^/]*";
      else if (body == "user")
        re += "(?:@|%40)[^/]*";
      else if (body == "event")
        re += "(?:\\$|%24)[^/]*";
      else if (body == "room_or_alias")
        re += "(?:!|%21|#|%23)[^/]*";
      else {
        re += "(?:";
        for (char b : body) {
          if (b == '.')
            re += "\\.";
          else
            re += b;
        }
        re += ")";
      }
      i = close;
    } else if (c == '*') {
      re += "[^/]+";
    } else if (c == '.' || c == '$' || c == '+' || c == '(' || c == ')' || c == '[' || c == ']') {
      re += '\\';
      re += c;
    } else {
      re += c;
    }
  }
  return re + "$";
}

struct regex_rule {
  std::vector<std::string> methods;  // empty = any
  std::regex re;
};

std::vector<regex_rule> regex_table() {
  std::vector<regex_rule> out;
  for (const rule_spec& r : default_rules()) {
    regex_rule rr;
    if (r.methods != "*") {
      std::size_t b = 0;
      while (true) {
        const std::size_t bar = r.methods.find('|', b);
        rr.methods.push_back(r.methods.substr(b, bar == std::string::npos ? bar : bar - b));
        if (bar == std::string::npos) break;
        b = bar + 1;
      }
    }
    rr.re = std::regex(to_regex(r.pattern), std::regex::ECMAScript | std::regex::optimize);
    out.push_back(std::move(rr));
  }
  return out;
}

void BM_regex_list_mix(benchmark::State& state) {
  const std::vector<regex_rule> rules = regex_table();
  const std::vector<request> reqs = build_mix();
  std::size_t i = 0;
  for (auto _ : state) {
    const request& r = reqs[i];
    const std::string_view path = r.path.substr(0, r.path.find('?'));
    int matched = -1;
    for (std::size_t k = 0; k < rules.size(); ++k) {
      const auto& m = rules[k].methods;
      if (!m.empty() && std::find(m.begin(), m.end(), r.method) == m.end()) continue;
      if (std::regex_match(path.begin(), path.end(), rules[k].re)) {
        matched = static_cast<int>(k);
        break;
      }
    }
    benchmark::DoNotOptimize(matched);
    if (++i == reqs.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_regex_list_mix);

}  // namespace

BENCHMARK_MAIN();
