#include "iomux/endpoint.hpp"

#include <gtest/gtest.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

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

// ---- Unix domain sockets

constexpr socklen_t kPathOffset = offsetof(sockaddr_un, sun_path);

TEST(UnixEndpoint, PathParsesAndPrintsBack) {
  auto ep = Endpoint::parse_unix("unix:/run/iomux.sock");
  ASSERT_TRUE(ep);
  EXPECT_TRUE(ep->is_unix());
  EXPECT_FALSE(ep->is_abstract());
  EXPECT_EQ(ep->family(), AF_UNIX);
  EXPECT_EQ(ep->unix_path(), "/run/iomux.sock");
  EXPECT_EQ(ep->to_string(), "unix:/run/iomux.sock");
  EXPECT_EQ(ep->host_string(), "unix:/run/iomux.sock");
  // The path and its NUL, as the kernel reports a bound path.
  EXPECT_EQ(ep->sockaddr_len(), kPathOffset + std::string("/run/iomux.sock").size() + 1);
  auto relative = Endpoint::parse_unix("unix:run/x.sock");
  ASSERT_TRUE(relative);
  EXPECT_EQ(relative->to_string(), "unix:run/x.sock");
}

TEST(UnixEndpoint, AbstractNameCountsNoTrailingNul) {
  auto ep = Endpoint::parse_unix("unix:@iomux");
  ASSERT_TRUE(ep);
  EXPECT_TRUE(ep->is_abstract());
  EXPECT_EQ(ep->unix_path(), "");  // no file to make or remove
  EXPECT_EQ(ep->to_string(), "unix:@iomux");
  // The leading NUL and the five bytes of the name: a NUL after them would be part of it.
  EXPECT_EQ(ep->sockaddr_len(), kPathOffset + 1 + 5);
  EXPECT_EQ(ep->sockaddr_ptr()->sa_family, AF_UNIX);
  EXPECT_FALSE(*ep == *Endpoint::parse_unix("unix:@iomu"));
  EXPECT_FALSE(*ep == *Endpoint::parse_unix("unix:iomux"));
  EXPECT_TRUE(*ep == *Endpoint::parse_unix("unix:@iomux"));
}

TEST(UnixEndpoint, HasNoPort) {
  Endpoint ep = *Endpoint::parse_unix("unix:/x");
  EXPECT_EQ(ep.port(), 0);
  ep.set_port(80);
  EXPECT_EQ(ep.port(), 0);
  EXPECT_EQ(ep.to_string(), "unix:/x");
}

TEST(UnixEndpoint, LongestPathFitsOneMoreIsAClearError) {
  const std::string longest(107, 'p');
  auto ep = Endpoint::parse_unix("unix:" + longest);
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->unix_path(), longest);
  EXPECT_EQ(ep->sockaddr_len(), sizeof(sockaddr_un));
  std::string why;
  EXPECT_FALSE(Endpoint::parse_unix("unix:" + longest + "p", &why));
  EXPECT_NE(why.find("longer than 107 bytes"), std::string::npos) << why;
  EXPECT_TRUE(Endpoint::parse_unix("unix:@" + longest));
  EXPECT_FALSE(Endpoint::parse_unix("unix:@" + longest + "p", &why));
  EXPECT_NE(why.find("longer than 107 bytes"), std::string::npos) << why;
}

TEST(UnixEndpoint, RejectsMalformedWithAReason) {
  for (const std::string& bad : std::vector<std::string>{"unix:", "unix:@", "unix", "Unix:/x", "/x", "unix:/a\nb",
                                                         "unix:@a\tb", std::string("unix:/a\0b", 10)}) {
    std::string why;
    EXPECT_FALSE(Endpoint::parse_unix(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
}

TEST(UnixEndpoint, ResolveOneNeedsNoResolver) {
  EXPECT_EQ(resolve_one("unix:/tmp/x.sock"), *Endpoint::parse_unix("unix:/tmp/x.sock"));
  EXPECT_EQ(resolve_one("unix:@x"), *Endpoint::parse_unix("unix:@x"));
  try {
    resolve_one("unix:");
    ADD_FAILURE() << "an empty path resolved";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("empty path"), std::string::npos) << e.what();
  }
}

// A named Unix address is held on the heap: copies own theirs, a move hands it over.
TEST(UnixEndpoint, CopiesAndMovesOwnTheirNames) {
  const Endpoint original = *Endpoint::parse_unix("unix:/run/original.sock");
  Endpoint copy = original;
  EXPECT_EQ(copy, original);
  EXPECT_NE(copy.sockaddr_ptr(), original.sockaddr_ptr());
  Endpoint assigned = Endpoint::loopback_v4(1);
  assigned = original;
  EXPECT_EQ(assigned.to_string(), "unix:/run/original.sock");
  const Endpoint& same = assigned;
  assigned = same;  // self-assignment keeps it
  EXPECT_EQ(assigned, original);
  Endpoint moved = std::move(copy);
  EXPECT_EQ(moved, original);
  EXPECT_EQ(copy.family(), AF_UNSPEC);  // NOLINT(bugprone-use-after-move): what a move leaves
  assigned = Endpoint::loopback_v4(2);  // frees the name it held
  EXPECT_EQ(assigned.to_string(), "127.0.0.1:2");
  std::vector<Endpoint> many(100, original);
  many.insert(many.begin(), *Endpoint::parse_unix("unix:@first"));
  EXPECT_EQ(many.front().to_string(), "unix:@first");
  EXPECT_EQ(many.back(), original);
  EXPECT_LE(sizeof(Endpoint), 32u);  // what every connection keeps of its peer
}

TEST(UnixEndpoint, FromTheKernelsAddresses) {
  // A client that did not bind: only the family.
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  Endpoint unnamed = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&sa), sizeof(sa_family_t));
  EXPECT_TRUE(unnamed.is_unix());
  EXPECT_EQ(unnamed.to_string(), "unix:(unnamed)");
  EXPECT_EQ(unnamed.sockaddr_len(), kPathOffset);
  // A path, with the NUL the kernel counts, and without it.
  std::string path = "/run/a.sock";
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  Endpoint with_nul = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&sa), kPathOffset + path.size() + 1);
  Endpoint without = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&sa), kPathOffset + path.size());
  EXPECT_EQ(with_nul, *Endpoint::parse_unix("unix:" + path));
  EXPECT_EQ(without, with_nul);
  // A client's abstract name is its own choice of bytes: never printed raw.
  sockaddr_un abs{};
  abs.sun_family = AF_UNIX;
  const char name[] = "\0ev\nil\x1b";
  std::memcpy(abs.sun_path, name, sizeof name - 1);
  Endpoint evil = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&abs), kPathOffset + sizeof name - 1);
  EXPECT_TRUE(evil.is_abstract());
  EXPECT_EQ(evil.to_string(), "unix:@ev\\x0ail\\x1b");
  EXPECT_EQ(evil.sockaddr_len(), kPathOffset + sizeof name - 1);
  // Longer than a sockaddr_un: not an address.
  EXPECT_EQ(Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&sa), sizeof(sockaddr_un) + 1).family(), AF_UNSPEC);
}

}  // namespace
}  // namespace iomux
