// classify() must not allocate: the project's counting operator new (support/alloc_counter.hpp)
// counts every allocation in this test binary, and the count must not move across classifications
// of a realistic mix.

#include <gtest/gtest.h>

#include <string>

#include "routing_fixture.hpp"
#include "support/alloc_counter.hpp"

namespace spoa::routing::test {
namespace {

TEST(NoAllocation, TheCounterSeesAllocations) {
  const auto before = spoa::test::allocations();
  auto* p = new std::string(100, 'x');
  delete p;
  EXPECT_GE(spoa::test::allocations() - before, 1u);
}

TEST(NoAllocation, ClassifyDoesNotAllocate) {
  const route_table& t = default_table();  // compiled (and allocated) before counting
  const std::string long_room = "/_matrix/client/v3/rooms/!" + std::string(2000, 'a') + "/messages";
  const request requests[] = {
      {"GET", "/_matrix/client/v3/sync?since=s1&timeout=30000", "", "u", ""},
      {"PUT", "/_matrix/client/v3/rooms/%21abc%3Aexample.org/send/m.room.message/1", "", "u", ""},
      {"PUT", "/_matrix/client/v3/rooms/!abc%3Aexample.org/typing/%40a%3Ab", "", "u", ""},
      {"GET", "/_matrix/federation/v1/state_ids/%21abc%3Aexample.org", "event_id=%24e", "", "o"},
      {"PUT", "/_matrix/federation/v1/send/170", "", "", "o"},
      {"GET", "/_matrix/client/v1/media/download/s/m", "", "u", ""},
      {"POST", "/_matrix/client/v3/join/%23a%3Ab", "", "u", ""},
      {"PATCH", "/nothing/here", "", "", ""},
      {"GET", long_room, "", "u", ""},
  };
  key_buffer buf;
  const auto before = spoa::test::allocations();
  int matched = 0;
  for (int round = 0; round < 100; ++round) {
    for (const request& r : requests)
      matched += t.classify(r, buf).rule >= 0;
  }
  const auto after = spoa::test::allocations();
  EXPECT_EQ(after - before, 0u);
  EXPECT_EQ(matched, 100 * static_cast<int>(std::size(requests)));
}

}  // namespace
}  // namespace spoa::routing::test
