// The SPOP listener's allow-list entries (spop.allow_from).

#include <gtest/gtest.h>

#include "agent/spop_server.hpp"

namespace {

using spoa::agent::parse_address_range;
namespace ip = boost::asio::ip;

bool allows(std::string_view range, std::string_view peer) {
  const auto r = parse_address_range(range);
  EXPECT_TRUE(r.has_value()) << range;
  return r && r->contains(ip::make_address(std::string(peer)));
}

TEST(AddressRange, SingleAddresses) {
  EXPECT_TRUE(allows("127.0.0.1", "127.0.0.1"));
  EXPECT_FALSE(allows("127.0.0.1", "127.0.0.2"));
  EXPECT_TRUE(allows("::1", "::1"));
  EXPECT_FALSE(allows("::1", "::2"));
}

TEST(AddressRange, Cidr) {
  EXPECT_TRUE(allows("10.0.0.0/8", "10.255.1.2"));
  EXPECT_FALSE(allows("10.0.0.0/8", "11.0.0.1"));
  EXPECT_TRUE(allows("10.1.2.3/8", "10.9.9.9"));  // host bits under the mask are ignored
  EXPECT_TRUE(allows("0.0.0.0/0", "192.0.2.1"));
  EXPECT_TRUE(allows("fd00::/8", "fd12::1"));
  EXPECT_FALSE(allows("fd00::/8", "fe80::1"));
  EXPECT_TRUE(allows("172.16.0.0/12", "172.31.255.255"));
  EXPECT_FALSE(allows("172.16.0.0/12", "172.32.0.0"));
}

TEST(AddressRange, V4EntriesMatchV4MappedPeers) {
  EXPECT_TRUE(allows("192.0.2.0/24", "::ffff:192.0.2.7"));
  EXPECT_FALSE(allows("192.0.2.0/24", "::ffff:198.51.100.7"));
}

TEST(AddressRange, RejectsWhatIsNotAnAddressOrCidr) {
  for (const char* bad : {"", "localhost", "10.0.0.0/33", "::/129", "10.0.0.0/", "/8",
                          "10.0.0.0/8/8", "10.0.0.0/-1", "10.0.0.0/ 8", "1.2.3", "10.0.0.0/08x"}) {
    EXPECT_FALSE(parse_address_range(bad).has_value()) << bad;
  }
}

}  // namespace
