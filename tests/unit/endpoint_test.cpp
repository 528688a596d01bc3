#include "iomux/endpoint.hpp"

#include <gtest/gtest.h>

namespace iomux {
namespace {

TEST(ParseHostPort, Ipv4) {
  auto hp = parse_host_port("127.0.0.1:7890");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, 7890);
}

TEST(ParseHostPort, Ipv6InBrackets) {
  auto hp = parse_host_port("[::1]:7890");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->host, "::1");
  EXPECT_EQ(hp->port, 7890);
}

TEST(ParseHostPort, HostName) {
  auto hp = parse_host_port("localhost:0");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->host, "localhost");
  EXPECT_EQ(hp->port, 0);
}

TEST(ParseHostPort, RejectsMalformedWithAReason) {
  for (const char* bad : {"", "7890", "127.0.0.1", "127.0.0.1:", ":7890", "host:65536", "host:-1", "host:12a",
                          "::1:7890", "[::1]7890", "[::1:7890", "host: 80", "[]:80"}) {
    std::string why;
    EXPECT_FALSE(parse_host_port(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
}

TEST(ParsePort, Bounds) {
  EXPECT_EQ(parse_port("0"), 0);
  EXPECT_EQ(parse_port("65535"), 65535);
  EXPECT_FALSE(parse_port("65536"));
  EXPECT_FALSE(parse_port(""));
  EXPECT_FALSE(parse_port("+1"));
  EXPECT_FALSE(parse_port("123456"));
}

TEST(Endpoint, NumericRoundTripsToString) {
  auto v4 = Endpoint::from_numeric("10.1.2.3", 80);
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->to_string(), "10.1.2.3:80");
  auto v6 = Endpoint::from_numeric("::1", 7890);
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->is_v6());
  EXPECT_EQ(v6->to_string(), "[::1]:7890");
  EXPECT_FALSE(Endpoint::from_numeric("localhost", 1));
  EXPECT_FALSE(Endpoint::from_numeric("1.2.3.256", 1));
  EXPECT_FALSE(Endpoint::from_numeric(std::string_view("1.2.3.4\0junk", 12), 1));  // found by the fuzzer
}

TEST(Endpoint, SetPortAndEquality) {
  auto a = *Endpoint::from_numeric("127.0.0.1", 1);
  auto b = Endpoint::loopback_v4(2);
  EXPECT_FALSE(a == b);
  a.set_port(2);
  EXPECT_TRUE(a == b);
}

TEST(Resolve, NumericNeedsNoResolver) {
  auto ep = resolve_one("[::1]:5");
  EXPECT_EQ(ep.to_string(), "[::1]:5");
}

TEST(Resolve, LocalhostResolves) {
  auto ep = resolve_one("localhost:7890");
  EXPECT_EQ(ep.port(), 7890);
  EXPECT_TRUE(ep.host_string() == "127.0.0.1" || ep.host_string() == "::1");
}

TEST(Resolve, BadTextThrowsWithReason) {
  EXPECT_THROW(resolve_one("nonsense"), std::runtime_error);
  EXPECT_THROW(resolve_one("host.invalid:1"), std::runtime_error);
}

}  // namespace
}  // namespace iomux
