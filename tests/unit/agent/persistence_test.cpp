// Affinity snapshots: round trip, and every way a file can be bad (missing, truncated at every
// byte, random garbage, another version, another hash key) is ignored with a status, never fatal.
#include "routing/snapshot.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <msgpack.hpp>
#include <random>
#include <string>

#include "agent/persistence.hpp"
#include "routing/placement.hpp"

namespace spoa::routing {
namespace {

constexpr std::uint64_t t0 = 5'000'000;
constexpr std::uint64_t unix0 = 1'700'000'000'000;

std::string room(int i) {
  return "!room" + std::to_string(i) + ":example.org";
}

std::vector<worker_spec> workers(std::initializer_list<const char*> names) {
  std::vector<worker_spec> ws;
  for (const char* n : names)
    ws.push_back({n, n, 0, 1.0, false});
  return ws;
}

placement_options options(std::string key = "snapshot-test-key") {
  placement_options o;
  o.hash_key = std::move(key);
  return o;
}

class SnapshotFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("spoa-placement-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "affinity.msgpack").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(std::string_view bytes) {
    std::ofstream(path_, std::ios::binary | std::ios::trunc)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::string read() {
    std::string out;
    if (FILE* f = std::fopen(path_.c_str(), "rb")) {
      char buf[4096];
      std::size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
        out.append(buf, n);
      std::fclose(f);
    }
    return out;
  }
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(SnapshotFile, RoundTripRestoresEveryKeyOnItsWorker) {
  placement a({{"room", true}}, workers({"room1", "room2", "room3", "room4"}), options());
  std::vector<int> first(1000);
  for (int i = 0; i < 1000; ++i)
    first[static_cast<std::size_t>(i)] =
        a.place(0, room(i), t0 + static_cast<std::uint64_t>(i)).worker;
  std::string err;
  ASSERT_TRUE(spoa::agent::save_snapshot(a, path_, t0 + 1000, unix0, &err)) << err;
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));

  // Another process: different steady clock, same wall clock 10 s later, workers listed in
  // another order (the snapshot maps by name).
  placement b({{"room", true}}, workers({"room4", "room3", "room2", "room1"}), options());
  EXPECT_EQ(spoa::agent::load_snapshot(b, path_, 42'000, unix0 + 10'000), "restored 1000 keys");
  for (int i = 0; i < 1000; ++i) {
    const decision d = b.place(0, room(i), 42'001);
    ASSERT_EQ(d.why, reason::affinity_hit);
    ASSERT_EQ(b.workers()[static_cast<std::size_t>(d.worker)].name,
              a.workers()[static_cast<std::size_t>(first[static_cast<std::size_t>(i)])].name);
    ASSERT_EQ(d.rank, -1);  // restored entries do not know their rank
  }
}

TEST_F(SnapshotFile, FileHasTheDocumentedLayout) {
  placement a({{"room", true}}, workers({"room1", "room2"}), options());
  a.place(0, room(1), t0);
  a.place(0, room(2), t0 + 500);
  ASSERT_TRUE(spoa::agent::save_snapshot(a, path_, t0 + 1000, unix0, nullptr));
  const std::string bytes = read();
  msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size());
  std::map<std::string, msgpack::object> m;
  oh.get().convert(m);
  EXPECT_EQ(m.at("format").as<std::string>(), "synapse-spoa-affinity");
  EXPECT_EQ(m.at("version").as<int>(), 1);
  EXPECT_EQ(m.at("hash_key_id").as<std::uint64_t>(),
            key_fingerprint(derive_sip_key("snapshot-test-key")));
  EXPECT_EQ(m.at("workers").as<std::vector<std::string>>(),
            (std::vector<std::string>{"room1", "room2"}));
  const auto entries = m.at("entries").as<std::vector<std::vector<std::uint64_t>>>();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0][2], unix0 - 1000);  // oldest first, ages carried as Unix times
  EXPECT_EQ(entries[1][2], unix0 - 500);
}

TEST_F(SnapshotFile, MissingFileIsReported) {
  placement p({{"room", true}}, workers({"room1"}), options());
  EXPECT_EQ(spoa::agent::load_snapshot(p, path_, t0, unix0), "missing");
}

TEST_F(SnapshotFile, AnotherHashKeyIsIgnored) {
  placement a({{"room", true}}, workers({"room1", "room2"}), options("key-a"));
  for (int i = 0; i < 10; ++i)
    a.place(0, room(i), t0);
  ASSERT_TRUE(spoa::agent::save_snapshot(a, path_, t0, unix0, nullptr));
  placement b({{"room", true}}, workers({"room1", "room2"}), options("key-b"));
  EXPECT_EQ(spoa::agent::load_snapshot(b, path_, t0, unix0),
            "ignored: written with another hash_key");
  EXPECT_EQ(b.counters().entries, 0u);
}

TEST_F(SnapshotFile, AnotherVersionIsIgnored) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(5);
  pk.pack(std::string("format"));
  pk.pack(std::string("synapse-spoa-affinity"));
  pk.pack(std::string("version"));
  pk.pack(7);
  pk.pack(std::string("hash_key_id"));
  pk.pack(key_fingerprint(derive_sip_key("snapshot-test-key")));
  pk.pack(std::string("workers"));
  pk.pack_array(0);
  pk.pack(std::string("entries"));
  pk.pack_array(0);
  write(std::string_view(buf.data(), buf.size()));
  placement p({{"room", true}}, workers({"room1"}), options());
  EXPECT_EQ(spoa::agent::load_snapshot(p, path_, t0, unix0), "ignored: version 7 != 1");
}

TEST_F(SnapshotFile, ForeignDocumentIsIgnored) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, std::map<std::string, int>{{"format", 1}});
  write(std::string_view(buf.data(), buf.size()));
  placement p({{"room", true}}, workers({"room1"}), options());
  EXPECT_EQ(spoa::agent::load_snapshot(p, path_, t0, unix0),
            "ignored: malformed: expected a string");
  msgpack::sbuffer buf2;
  msgpack::pack(buf2, std::map<std::string, std::string>{{"format", "something-else"}});
  write(std::string_view(buf2.data(), buf2.size()));
  EXPECT_EQ(spoa::agent::load_snapshot(p, path_, t0, unix0), "ignored: not an affinity snapshot");
}

TEST_F(SnapshotFile, TruncatedAtEveryByteIsIgnored) {
  placement a({{"room", true}}, workers({"room1", "room2", "room3"}), options());
  for (int i = 0; i < 20; ++i)
    a.place(0, room(i), t0);
  ASSERT_TRUE(spoa::agent::save_snapshot(a, path_, t0, unix0, nullptr));
  const std::string bytes = read();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const auto r = snapshot::decode(std::string_view(bytes).substr(0, n), 1000, 100);
    ASSERT_FALSE(r.ok) << n;
    ASSERT_EQ(r.error, "truncated") << n;
  }
  // Through the file too, for a sample of cuts (each one is a file write).
  for (std::size_t n = 0; n < bytes.size(); n += 7) {
    write(std::string_view(bytes).substr(0, n));
    placement p({{"room", true}}, workers({"room1", "room2", "room3"}), options());
    ASSERT_EQ(spoa::agent::load_snapshot(p, path_, t0, unix0), "ignored: truncated") << n;
    ASSERT_EQ(p.counters().entries, 0u);
  }
  write(bytes + "x");
  placement p({{"room", true}}, workers({"room1", "room2", "room3"}), options());
  EXPECT_EQ(spoa::agent::load_snapshot(p, path_, t0, unix0),
            "ignored: malformed: trailing bytes after the snapshot");
}

TEST_F(SnapshotFile, RandomGarbageAndBitFlipsNeverCrash) {
  std::mt19937_64 rng(1234567);
  for (int round = 0; round < 2000; ++round) {
    std::string junk(rng() % 300, '\0');
    for (char& c : junk)
      c = static_cast<char>(rng());
    const auto r = snapshot::decode(junk, 1000, 100);
    EXPECT_FALSE(r.ok && r.doc.entries.size() > 1000);
  }
  placement a({{"room", true}}, workers({"room1", "room2"}), options());
  for (int i = 0; i < 20; ++i)
    a.place(0, room(i), t0);
  ASSERT_TRUE(spoa::agent::save_snapshot(a, path_, t0, unix0, nullptr));
  const std::string good = read();
  for (int round = 0; round < 500; ++round) {
    std::string bad = good;
    for (int k = 0; k < 3; ++k)
      bad[rng() % bad.size()] = static_cast<char>(rng());
    const auto r = snapshot::decode(bad, 1000, 100);
    if (!r.ok) continue;
    // Still a document: it must load (or be ignored) without harm.
    EXPECT_LE(r.doc.entries.size(), 1000u);
    write(bad);
    placement p({{"room", true}}, workers({"room1", "room2"}), options());
    const std::string status = spoa::agent::load_snapshot(p, path_, t0, unix0);
    EXPECT_FALSE(status.empty());
    EXPECT_LE(p.counters().entries, 20u);
    for (int i = 0; i < 20; ++i)
      EXPECT_GE(p.place(0, room(i), t0).worker, 0);
  }
  write("\xdd\xff\xff\xff\xff");  // an array header claiming 4 billion items
  placement p({{"room", true}}, workers({"room1", "room2"}), options());
  EXPECT_EQ(spoa::agent::load_snapshot(p, path_, t0, unix0), "ignored: malformed: expected a map");
}

TEST_F(SnapshotFile, HugeCountsAreRejectedBeforeAllocating) {
  // map{format, version, hash_key_id, workers, entries: array32 of 2^32-1} with no items.
  std::string doc = "\x85";
  auto str = [&](std::string_view s) {
    doc.push_back(static_cast<char>(0xa0 | s.size()));
    doc.append(s);
  };
  str("format");
  doc.push_back('\xb5');
  doc.append("synapse-spoa-affinity");
  str("version");
  doc.push_back('\x01');
  str("hash_key_id");
  doc.push_back('\x00');
  str("workers");
  doc.push_back('\x90');
  str("entries");
  doc.append("\xdd\xff\xff\xff\xff");
  const auto r = snapshot::decode(doc, 1'000'000, 100);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "truncated");
}

TEST_F(SnapshotFile, BoundsAreApplied) {
  placement a({{"room", true}}, workers({"room1", "room2", "gone"}), options());
  for (int i = 0; i < 100; ++i)
    a.place(0, room(i), t0 + static_cast<std::uint64_t>(i) * 10);
  ASSERT_TRUE(spoa::agent::save_snapshot(a, path_, t0 + 1000, unix0, nullptr));
  // Fewer slots than entries: the newest are kept. A worker that no longer exists: skipped.
  placement_options o = options();
  o.max_keys = 30;
  placement b({{"room", true}}, workers({"room1", "room2"}), o);
  std::size_t gone = 0;
  std::vector<std::string> was(100);
  for (int i = 70; i < 100; ++i) {
    was[static_cast<std::size_t>(i)] =
        a.workers()[static_cast<std::size_t>(a.place(0, room(i), t0 + 1001).worker)].name;
    gone += was[static_cast<std::size_t>(i)] == "gone";
  }
  ASSERT_GT(gone, 0u);
  EXPECT_EQ(
      spoa::agent::load_snapshot(b, path_, t0, unix0),
      "restored " + std::to_string(30 - gone) + " keys (" + std::to_string(gone) + " skipped)");
  EXPECT_EQ(b.counters().entries, 30 - gone);
  for (int i = 70; i < 100; ++i) {
    const decision d = b.place(0, room(i), t0 + 1);
    if (was[static_cast<std::size_t>(i)] == "gone") {
      EXPECT_NE(d.why, reason::affinity_hit);
    } else {
      EXPECT_EQ(d.why, reason::affinity_hit) << i;
    }
  }
}

TEST_F(SnapshotFile, EntriesOlderThanTheTtlAreDropped) {
  placement_options o = options();
  o.affinity_ttl = std::chrono::milliseconds{60'000};
  placement a({{"room", true}}, workers({"room1", "room2"}), o);
  a.place(0, room(1), t0);
  a.place(0, room(2), t0 + 30'000);
  ASSERT_TRUE(spoa::agent::save_snapshot(a, path_, t0 + 30'000, unix0, nullptr));
  placement b({{"room", true}}, workers({"room1", "room2"}), o);
  // 40 s later: room 1 is 70 s idle (dropped), room 2 is 40 s idle (kept, 20 s left).
  EXPECT_EQ(spoa::agent::load_snapshot(b, path_, 100, unix0 + 40'000),
            "restored 1 keys (1 skipped)");
  EXPECT_EQ(b.place(0, room(2), 100 + 19'999).why, reason::affinity_hit);
}

TEST_F(SnapshotFile, SaveReportsAnUnwritableDirectory) {
  placement a({{"room", true}}, workers({"room1"}), options());
  std::string err;
  EXPECT_FALSE(
      spoa::agent::save_snapshot(a, (dir_ / "no/such/dir/file").string(), t0, unix0, &err));
  EXPECT_NE(err.find("open"), std::string::npos) << err;
}

}  // namespace
}  // namespace spoa::routing
