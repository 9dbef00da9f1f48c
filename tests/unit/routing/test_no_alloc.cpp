// classify() must not allocate: a replaced global operator new counts every allocation in this
// test binary, and the count must not move across classifications of a realistic mix.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "routing_fixture.hpp"

// GCC pairs our malloc-based operator new with free() and flags the (correct) replacement.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {
std::atomic<long> allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}

namespace spoa::routing::test {
namespace {

TEST(NoAllocation, TheCounterSeesAllocations) {
  const long before = allocations.load();
  auto* p = new std::string(100, 'x');
  delete p;
  EXPECT_GE(allocations.load() - before, 1);
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
  const long before = allocations.load();
  int matched = 0;
  for (int round = 0; round < 100; ++round) {
    for (const request& r : requests)
      matched += t.classify(r, buf).rule >= 0;
  }
  const long after = allocations.load();
  EXPECT_EQ(after - before, 0);
  EXPECT_EQ(matched, 100 * static_cast<int>(std::size(requests)));
}

}  // namespace
}  // namespace spoa::routing::test
