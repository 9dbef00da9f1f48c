// Golden placement vectors: two agents of different versions place a new key on the same worker
// (ARCHITECTURE.md §7: the shared store relies on it). golden_placement_vectors.txt was generated
// once from the code of its commit; every value is recomputed here and compared exactly, and
// nothing in this test derives an expectation from the code under test. A failure means the
// placement function changed: a release that mixes old and new agents would split rooms.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "routing/placement.hpp"
#include "routing/rendezvous.hpp"
#include "routing/siphash.hpp"

#ifndef SPOA_GOLDEN_PLACEMENT_VECTORS
#error "SPOA_GOLDEN_PLACEMENT_VECTORS (path of golden_placement_vectors.txt) must be defined"
#endif

namespace spoa::routing {
namespace {

// The data file's string encoding: %XX for a byte, "" for the empty string.
std::string decode(const std::string& field) {
  if (field == "\"\"") return {};
  std::string out;
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '%' && i + 2 < field.size()) {
      out.push_back(static_cast<char>(std::stoi(field.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

std::uint64_t parse_hex(const std::string& s) {
  EXPECT_EQ(s.size(), 16u) << s;
  return std::stoull(s, nullptr, 16);
}

double parse_double(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);  // decimal weights and C99 hex-float scores
  EXPECT_EQ(*end, '\0') << s;
  return v;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, sep))
    out.push_back(part);
  return out;
}

struct worker_def {
  std::string name;
  double weight = 1.0;
};
struct key_vector {
  std::string key;
  std::uint64_t key_hash = 0;
  std::string first;
  std::vector<std::string> ranking;
  int line = 0;
};
struct pool_set {
  std::string hash_key, pool;
  std::vector<worker_def> workers;
  std::vector<key_vector> keys;
  int line = 0;
};
struct line_of {
  std::vector<std::string> fields;
  int line = 0;
};
struct golden {
  std::vector<line_of> sipkeys, siphashes, seeds, scores;
  std::vector<pool_set> sets;
};

const golden& vectors() {
  static const golden g = [] {
    golden out;
    std::ifstream in(SPOA_GOLDEN_PLACEMENT_VECTORS);
    if (!in) ADD_FAILURE() << "cannot open " << SPOA_GOLDEN_PLACEMENT_VECTORS;
    std::string text;
    int n = 0;
    while (std::getline(in, text)) {
      ++n;
      if (text.empty() || text[0] == '#') continue;
      std::vector<std::string> f = split(text, ' ');
      const std::string kind = f[0];
      f.erase(f.begin());
      if (kind == "sipkey") {
        out.sipkeys.push_back({f, n});
      } else if (kind == "siphash") {
        out.siphashes.push_back({f, n});
      } else if (kind == "seed") {
        out.seeds.push_back({f, n});
      } else if (kind == "score") {
        out.scores.push_back({f, n});
      } else if (kind == "set") {
        pool_set s;
        s.hash_key = decode(f.at(0));
        s.pool = decode(f.at(1));
        s.line = n;
        for (std::size_t i = 2; i < f.size(); ++i) {
          const auto nw = split(f[i], ':');
          s.workers.push_back({decode(nw.at(0)), parse_double(nw.at(1))});
        }
        out.sets.push_back(std::move(s));
      } else if (kind == "key") {
        if (out.sets.empty()) {
          ADD_FAILURE() << "line " << n << ": key before any set";
          continue;
        }
        key_vector k;
        k.key = decode(f.at(0));
        k.key_hash = parse_hex(f.at(1));
        k.first = decode(f.at(2));
        for (const auto& name : split(f.at(3), ','))
          k.ranking.push_back(decode(name));
        k.line = n;
        out.sets.back().keys.push_back(std::move(k));
      } else {
        ADD_FAILURE() << "line " << n << ": unknown record " << kind;
      }
    }
    return out;
  }();
  return g;
}

std::string hex(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// The file itself: a truncated or emptied file must not pass as "nothing differs".
TEST(GoldenPlacement, TheFileCoversWhatItPromises) {
  const golden& g = vectors();
  std::size_t keys = 0;
  std::set<std::size_t> sizes;
  std::set<std::string> hash_keys;
  bool empty_key = false, non_ascii_key = false, mixed_weights = false;
  for (const auto& s : g.sets) {
    keys += s.keys.size();
    sizes.insert(s.workers.size());
    hash_keys.insert(s.hash_key);
    for (const auto& w : s.workers)
      mixed_weights |= w.weight != s.workers.front().weight;
    for (const auto& k : s.keys)
      for (unsigned char c : k.key)
        non_ascii_key |= c >= 0x80;
    empty_key |= s.hash_key.empty();
  }
  EXPECT_GE(keys, 100u);
  EXPECT_EQ(sizes, (std::set<std::size_t>{1, 2, 4, 16}));
  EXPECT_TRUE(empty_key) << "the empty hash_key";
  EXPECT_TRUE(std::any_of(hash_keys.begin(), hash_keys.end(), [](const std::string& h) {
    return std::any_of(h.begin(), h.end(),
                       [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
  })) << "a non-ASCII hash_key";
  EXPECT_TRUE(non_ascii_key);
  EXPECT_TRUE(mixed_weights);
  EXPECT_GE(g.sipkeys.size(), 4u);
  EXPECT_GE(g.siphashes.size(), 8u);
  EXPECT_GE(g.seeds.size(), 8u);
  EXPECT_GE(g.scores.size(), 4u);
}

TEST(GoldenPlacement, DerivedSipKeys) {
  for (const auto& l : vectors().sipkeys) {
    const sip_key k = derive_sip_key(decode(l.fields.at(0)));
    EXPECT_EQ(hex(k.k0), l.fields.at(1)) << "line " << l.line;
    EXPECT_EQ(hex(k.k1), l.fields.at(2)) << "line " << l.line;
  }
}

TEST(GoldenPlacement, SipHash24) {
  for (const auto& l : vectors().siphashes) {
    const sip_key k = derive_sip_key(decode(l.fields.at(0)));
    EXPECT_EQ(hex(siphash24(k, decode(l.fields.at(1)))), l.fields.at(2)) << "line " << l.line;
  }
}

TEST(GoldenPlacement, WorkerSeeds) {
  for (const auto& l : vectors().seeds) {
    const sip_key k = derive_sip_key(decode(l.fields.at(0)));
    EXPECT_EQ(hex(worker_seed(k, decode(l.fields.at(1)))), l.fields.at(2)) << "line " << l.line;
  }
}

TEST(GoldenPlacement, RendezvousScoresBitForBit) {
  for (const auto& l : vectors().scores) {
    const double s = rendezvous_score(parse_hex(l.fields.at(0)), parse_hex(l.fields.at(1)),
                                      parse_double(l.fields.at(2)));
    EXPECT_EQ(s, parse_double(l.fields.at(3))) << "line " << l.line;
  }
}

// The ranking, from the rendezvous primitives: rendezvous_rank, rendezvous_first, and the
// definition itself (rendezvous_score ordered by ranks_before).
TEST(GoldenPlacement, Rankings) {
  for (const auto& s : vectors().sets) {
    const sip_key k = derive_sip_key(s.hash_key);
    std::vector<rendezvous_node> nodes;
    for (const auto& w : s.workers)
      nodes.push_back({worker_seed(k, w.name), w.weight, w.name});
    for (const auto& v : s.keys) {
      SCOPED_TRACE("line " + std::to_string(v.line));
      const std::uint64_t kh = siphash24(k, v.key);
      ASSERT_EQ(hex(kh), hex(v.key_hash));
      ASSERT_EQ(v.ranking.size(), nodes.size());
      std::vector<int> order(nodes.size());
      rendezvous_rank(kh, nodes, order);
      std::vector<std::string> names;
      for (int i : order)
        names.push_back(s.workers[static_cast<std::size_t>(i)].name);
      EXPECT_EQ(names, v.ranking);
      const int first = rendezvous_first(kh, nodes);
      ASSERT_GE(first, 0);
      EXPECT_EQ(s.workers[static_cast<std::size_t>(first)].name, v.first);
      for (std::size_t r = 1; r < order.size(); ++r) {
        const auto& a = nodes[static_cast<std::size_t>(order[r - 1])];
        const auto& b = nodes[static_cast<std::size_t>(order[r])];
        EXPECT_TRUE(ranks_before(rendezvous_score(kh, a.seed, a.weight), a.name,
                                 rendezvous_score(kh, b.seed, b.weight), b.name))
            << a.name << " before " << b.name;
      }
    }
  }
}

// placement::place() for a new key on a fresh placement (no load view: every worker healthy at
// nominal capacity) picks ranking[0], and its second choice (HAProxy's server2) is ranking[1].
TEST(GoldenPlacement, PlaceOnAFreshPlacement) {
  for (const auto& s : vectors().sets) {
    std::vector<pool_spec> pools(1);
    pools[0].name = s.pool;
    pools[0].keyed = true;
    std::vector<worker_spec> workers;
    for (const auto& w : s.workers) {
      worker_spec ws;
      ws.name = w.name;
      ws.server = w.name;
      ws.pool = 0;
      ws.weight = w.weight;
      workers.push_back(ws);
    }
    placement_options opts;
    opts.hash_key = s.hash_key;
    for (const auto& v : s.keys) {
      SCOPED_TRACE("line " + std::to_string(v.line));
      placement p(pools, workers, opts);  // fresh per key: no load from earlier keys
      EXPECT_EQ(hex(p.key_hash(v.key)), hex(v.key_hash));
      const decision d = p.place(0, v.key, 1'000);
      ASSERT_GE(d.worker, 0);
      EXPECT_EQ(s.workers[static_cast<std::size_t>(d.worker)].name, v.first);
      EXPECT_EQ(v.first, v.ranking.front());
      EXPECT_EQ(d.why, reason::new_key);
      EXPECT_EQ(d.rank, 0);
      EXPECT_EQ(hex(d.key_hash), hex(v.key_hash));
      if (s.workers.size() >= 2) {
        ASSERT_GE(d.second, 0);
        EXPECT_EQ(s.workers[static_cast<std::size_t>(d.second)].name, v.ranking[1]);
      } else {
        EXPECT_EQ(d.second, -1);
      }
    }
  }
}

}  // namespace
}  // namespace spoa::routing
