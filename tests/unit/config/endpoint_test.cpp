#include "config/endpoint.hpp"

#include <gtest/gtest.h>

namespace spoa::config {
namespace {

TEST(parse_endpoint, ipv4_ipv6_and_names) {
  EXPECT_EQ(parse_endpoint("127.0.0.1:12345"), (endpoint{"127.0.0.1", 12345}));
  EXPECT_EQ(parse_endpoint("0.0.0.0:0"), (endpoint{"0.0.0.0", 0}));  // port 0: any free port
  EXPECT_EQ(parse_endpoint("[::1]:12345"), (endpoint{"::1", 12345}));
  EXPECT_EQ(parse_endpoint("[::]:65535"), (endpoint{"::", 65535}));
  EXPECT_EQ(parse_endpoint("[2001:db8::1]:80"), (endpoint{"2001:db8::1", 80}));
  EXPECT_EQ(parse_endpoint("localhost:9464"), (endpoint{"localhost", 9464}));
  EXPECT_EQ(parse_endpoint("synapse_main-1.example.org:8008"),
            (endpoint{"synapse_main-1.example.org", 8008}));
}

TEST(parse_endpoint, rejects) {
  for (const char* s : {"",
                        ":12345",
                        "127.0.0.1",
                        "127.0.0.1:",
                        "127.0.0.1:65536",
                        "127.0.0.1:123456",
                        "127.0.0.1:-1",
                        "127.0.0.1:+1",
                        "127.0.0.1:1a",
                        "::1:12345",
                        "[::1]",
                        "[::1]12345",
                        "[::1:12345",
                        "[]:1",
                        "[127.0.0.1]:1",
                        "[zz::1]:1",
                        "999.0.0.1:1",
                        "1.2.3:1",
                        "-host:1",
                        "host-:1",
                        "a..b:1",
                        "host name:1",
                        "host:1:2",
                        "http://host:1"}) {
    EXPECT_EQ(parse_endpoint(s), std::nullopt) << s;
  }
}

TEST(parse_http_url, accepted_forms) {
  EXPECT_EQ(parse_http_url("http://127.0.0.1:9100/metrics"),
            (http_url{"127.0.0.1", 9100, "/metrics"}));
  EXPECT_EQ(parse_http_url("HTTP://Host:9100/_synapse/metrics"),
            (http_url{"Host", 9100, "/_synapse/metrics"}));
  EXPECT_EQ(parse_http_url("http://[::1]:9100/metrics?name[]=x"),
            (http_url{"::1", 9100, "/metrics?name[]=x"}));
  EXPECT_EQ(parse_http_url("http://worker1/metrics"), (http_url{"worker1", 80, "/metrics"}));
  EXPECT_EQ(parse_http_url("http://worker1:9000"), (http_url{"worker1", 9000, "/"}));
  EXPECT_EQ(parse_http_url("http://worker1?x=1"), (http_url{"worker1", 80, "/?x=1"}));
  EXPECT_EQ(parse_http_url("http://[::1]/"), (http_url{"::1", 80, "/"}));
}

TEST(parse_http_url, rejects) {
  for (const char* s :
       {"", "http://", "http:///metrics", "https://h:1/metrics", "ftp://h/x", "h:1/metrics",
        "http://h:0/metrics", "http://h:65536/metrics", "http://h:/metrics",
        "http://user@h:1/metrics", "http://h:1/met rics", "http://h:1/metrics#frag",
        "http://h:1/m\x01", "http://::1:9100/metrics", "http://[::1]x/", "http://h:1:2/"}) {
    EXPECT_EQ(parse_http_url(s), std::nullopt) << s;
  }
}

TEST(is_address_or_cidr, addresses_and_prefixes) {
  for (const char* s : {"10.0.0.1", "10.0.0.0/8", "0.0.0.0/0", "192.168.1.0/32", "::1", "fd00::/8",
                        "::/0", "2001:db8::/128"}) {
    EXPECT_TRUE(is_address_or_cidr(s)) << s;
  }
  for (const char* s : {"", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8/8",
                        "localhost", "10.0.0", "[::1]", "10.0.0.0/0008"}) {
    EXPECT_FALSE(is_address_or_cidr(s)) << s;
  }
}

}  // namespace
}  // namespace spoa::config

namespace spoa::config {
namespace {

TEST(RedisUrl, AcceptsHostPortAndDb) {
  auto u = parse_redis_url("redis://127.0.0.1:6379");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->address.host, "127.0.0.1");
  EXPECT_EQ(u->address.port, 6379);
  EXPECT_EQ(u->db, 0);
  u = parse_redis_url("redis://redis:6380/15");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->address.host, "redis");
  EXPECT_EQ(u->db, 15);
}

TEST(RedisUrl, RefusesWhatItCannotUse) {
  for (const char* bad : {"", "redis://", "redis://host", "redis://host:0", "redis://host:6379/",
                          "redis://host:6379/16", "redis://host:6379/x", "rediss://host:6379",
                          "redis://user:pw@host:6379", "http://host:6379"}) {
    EXPECT_FALSE(parse_redis_url(bad)) << bad;
  }
}

}  // namespace
}  // namespace spoa::config
