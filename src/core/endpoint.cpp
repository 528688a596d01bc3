#include "iomux/endpoint.hpp"

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>

#include "iomux/error.hpp"

namespace iomux {
namespace {

constexpr std::string_view kUnixPrefix = "unix:";
constexpr socklen_t kUnixPathOffset = offsetof(sockaddr_un, sun_path);
// A path keeps its terminating NUL inside sun_path; an abstract name uses sun_path[0] for
// its leading NUL. Either way, 107 bytes of name.
constexpr std::size_t kMaxUnixName = sizeof(sockaddr_un::sun_path) - 1;

bool is_control(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

}  // namespace

std::optional<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

std::optional<HostPort> parse_host_port(std::string_view text, std::string* why) {
  auto fail = [&](const char* reason) -> std::optional<HostPort> {
    if (why) *why = reason;
    return std::nullopt;
  };
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return fail("missing ']' after IPv6 address");
    host = text.substr(1, close - 1);
    auto rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return fail("expected ':PORT' after ']'");
    port = rest.substr(1);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail("expected HOST:PORT");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return fail("IPv6 addresses need brackets: [ADDR]:PORT");
  }
  if (host.empty()) return fail("empty host");
  auto p = parse_port(port);
  if (!p) return fail("port must be a number from 0 to 65535");
  return HostPort{std::string(host), *p};
}

Endpoint::Endpoint() noexcept {
  std::memset(&addr_, 0, sizeof addr_);
}

std::optional<Endpoint> Endpoint::from_numeric(std::string_view host, std::uint16_t port) {
  // inet_pton stops at a NUL: "1.2.3.4\0junk" must not pass for 1.2.3.4.
  if (host.find('\0') != std::string_view::npos) return std::nullopt;
  std::string h(host);
  Endpoint ep;
  if (inet_pton(AF_INET, h.c_str(), &ep.addr_.v4.sin_addr) == 1) {
    ep.addr_.v4.sin_family = AF_INET;
  } else if (inet_pton(AF_INET6, h.c_str(), &ep.addr_.v6.sin6_addr) == 1) {
    ep.addr_.v6.sin6_family = AF_INET6;
  } else {
    return std::nullopt;
  }
  ep.set_port(port);
  return ep;
}

Endpoint::Endpoint(const Endpoint& other) : Endpoint() {
  *this = other;
}

Endpoint::Endpoint(Endpoint&& other) noexcept : Endpoint() {
  *this = std::move(other);
}

Endpoint& Endpoint::operator=(const Endpoint& other) {
  if (this == &other) return *this;
  if (other.is_unix() && other.addr_.un.named) {
    auto* copy = new sockaddr_un(*other.addr_.un.named);
    clear();
    addr_.un = {AF_UNIX, other.addr_.un.len, copy};
    return *this;
  }
  clear();
  std::memcpy(&addr_, &other.addr_, sizeof addr_);
  return *this;
}

Endpoint& Endpoint::operator=(Endpoint&& other) noexcept {
  if (this == &other) return *this;
  clear();
  std::memcpy(&addr_, &other.addr_, sizeof addr_);
  std::memset(&other.addr_, 0, sizeof other.addr_);  // the moved-from one owns nothing
  return *this;
}

Endpoint::~Endpoint() {
  clear();
}

void Endpoint::clear() noexcept {
  if (is_unix()) delete addr_.un.named;
  std::memset(&addr_, 0, sizeof addr_);
}

Endpoint Endpoint::named_unix(const sockaddr_un& un, socklen_t len) {
  Endpoint ep;
  auto* copy = new sockaddr_un(un);
  copy->sun_family = AF_UNIX;
  ep.addr_.un = {AF_UNIX, len, copy};
  return ep;
}

std::optional<Endpoint> Endpoint::parse_unix(std::string_view text, std::string* why) {
  auto fail = [&](const char* reason) -> std::optional<Endpoint> {
    if (why) *why = reason;
    return std::nullopt;
  };
  if (text.substr(0, kUnixPrefix.size()) != kUnixPrefix) return fail("expected unix:PATH or unix:@NAME");
  std::string_view name = text.substr(kUnixPrefix.size());
  const bool abstract = !name.empty() && name.front() == '@';
  if (abstract) name.remove_prefix(1);
  if (name.empty()) return fail(abstract ? "empty abstract socket name after unix:@" : "empty path after unix:");
  if (name.size() > kMaxUnixName)
    return fail(abstract ? "abstract socket name longer than 107 bytes" : "socket path longer than 107 bytes");
  if (std::any_of(name.begin(), name.end(), is_control)) return fail("control character in a socket path");
  sockaddr_un un{};
  std::memcpy(un.sun_path + (abstract ? 1 : 0), name.data(), name.size());
  return named_unix(un, static_cast<socklen_t>(kUnixPathOffset + 1 + name.size()));
}

Endpoint Endpoint::from_sockaddr(const sockaddr* sa, socklen_t len) {
  Endpoint ep;
  if (!sa || len < sizeof(sa_family_t)) return ep;
  if (sa->sa_family == AF_UNIX) {
    if (len > sizeof(sockaddr_un)) return ep;
    sockaddr_un un{};
    std::memcpy(&un, sa, len);
    std::size_t room = len - kUnixPathOffset;
    // A path ends at its NUL (counted once, as parse_unix does); a full sun_path may have none.
    if (room > 0 && un.sun_path[0] != '\0') room = std::min(strnlen(un.sun_path, room) + 1, sizeof un.sun_path);
    if (room <= 1) {  // nothing, "" or a bare NUL: unnamed
      ep.addr_.un = {AF_UNIX, kUnixPathOffset, nullptr};
      return ep;
    }
    // What follows a path's NUL is not part of the address (nor compared).
    if (un.sun_path[0] != '\0') std::memset(un.sun_path + room, 0, sizeof un.sun_path - room);
    return named_unix(un, static_cast<socklen_t>(kUnixPathOffset + room));
  }
  if (len <= sizeof(sockaddr_in6) && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6))
    std::memcpy(&ep.addr_, sa, len);
  return ep;
}

Endpoint Endpoint::loopback_v4(std::uint16_t port) noexcept {
  Endpoint ep;
  ep.addr_.v4.sin_family = AF_INET;
  ep.addr_.v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ep.set_port(port);
  return ep;
}

bool Endpoint::is_abstract() const noexcept {
  return is_unix() && addr_.un.named && addr_.un.named->sun_path[0] == '\0';
}

std::string Endpoint::unix_path() const {
  if (!is_unix() || is_abstract()) return {};
  return std::string(unix_name());
}

std::string_view Endpoint::unix_name() const noexcept {
  if (!is_unix() || !addr_.un.named) return {};
  const char* path = addr_.un.named->sun_path;
  const std::size_t room = addr_.un.len - kUnixPathOffset;
  if (path[0] == '\0') return {path + 1, room - 1};
  return {path, strnlen(path, room)};
}

std::uint16_t Endpoint::port() const noexcept {
  if (family() == AF_INET) return ntohs(addr_.v4.sin_port);
  if (family() == AF_INET6) return ntohs(addr_.v6.sin6_port);
  return 0;
}

void Endpoint::set_port(std::uint16_t port) noexcept {
  if (family() == AF_INET) addr_.v4.sin_port = htons(port);
  if (family() == AF_INET6) addr_.v6.sin6_port = htons(port);
}

socklen_t Endpoint::sockaddr_len() const noexcept {
  if (is_unix()) return addr_.un.len;
  return family() == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

std::string Endpoint::host_string() const {
  if (is_unix()) return to_string();
  char text[INET6_ADDRSTRLEN] = "?";
  if (family() == AF_INET) inet_ntop(AF_INET, &addr_.v4.sin_addr, text, sizeof text);
  if (family() == AF_INET6) inet_ntop(AF_INET6, &addr_.v6.sin6_addr, text, sizeof text);
  return text;
}

std::string Endpoint::to_string() const {
  if (is_unix()) {
    if (!addr_.un.named) return "unix:(unnamed)";
    std::string out(kUnixPrefix);
    const std::string_view name = unix_name();
    if (is_abstract()) {
      out += '@';
    } else {
      // "unix:@x" is an abstract name: a relative path that starts with '@' is the same file as
      // "./@x" (parse_unix reads a path only from something written that way).
      if (name.front() == '@') out += "./";
    }
    // Only a name the kernel reported can hold these (parse_unix refuses them): a client
    // chose it, and it must not reach a log raw.
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : name) {
      if (!is_control(c)) {
        out += c;
        continue;
      }
      const auto u = static_cast<unsigned char>(c);
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
    return out;
  }
  if (family() != AF_INET6 && family() != AF_INET) return "(unspecified)";
  // Appended piece by piece: GCC 12 warns (-Wrestrict, a known false positive) on "[" + s.
  std::string out;
  if (family() == AF_INET6) out += '[';
  out += host_string();
  if (family() == AF_INET6) out += ']';
  out += ':';
  out += std::to_string(port());
  return out;
}

bool operator==(const Endpoint& a, const Endpoint& b) noexcept {
  if (a.family() != b.family()) return false;
  if (a.family() == AF_INET)
    return a.addr_.v4.sin_port == b.addr_.v4.sin_port && a.addr_.v4.sin_addr.s_addr == b.addr_.v4.sin_addr.s_addr;
  if (a.family() == AF_INET6)
    return a.addr_.v6.sin6_port == b.addr_.v6.sin6_port &&
           std::memcmp(&a.addr_.v6.sin6_addr, &b.addr_.v6.sin6_addr, sizeof(in6_addr)) == 0;
  if (a.is_unix())
    return a.addr_.un.len == b.addr_.un.len && a.is_abstract() == b.is_abstract() && a.unix_name() == b.unix_name();
  return true;
}

std::vector<Endpoint> resolve(const HostPort& hp, std::error_code& ec) {
  ec.clear();
  if (auto numeric = Endpoint::from_numeric(hp.host, hp.port)) return {*numeric};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  int rc = getaddrinfo(hp.host.c_str(), nullptr, &hints, &list);
  if (rc != 0) {
    ec = std::make_error_code(std::errc::host_unreachable);
    return {};
  }
  std::vector<Endpoint> v4;
  std::vector<Endpoint> v6;
  for (auto* ai = list; ai; ai = ai->ai_next) {
    Endpoint ep = Endpoint::from_sockaddr(ai->ai_addr, ai->ai_addrlen);
    ep.set_port(hp.port);
    auto& bucket = ep.family() == AF_INET ? v4 : v6;
    if (ep.family() != AF_UNSPEC && std::find(bucket.begin(), bucket.end(), ep) == bucket.end()) bucket.push_back(ep);
  }
  freeaddrinfo(list);
  v4.insert(v4.end(), v6.begin(), v6.end());
  if (v4.empty()) ec = std::make_error_code(std::errc::host_unreachable);
  return v4;
}

Endpoint resolve_one(std::string_view host, std::uint16_t port) {
  std::error_code ec;
  auto all = resolve(HostPort{std::string(host), port}, ec);
  if (all.empty()) throw ServerError("cannot resolve host '" + std::string(host) + "'");
  return all.front();
}

Endpoint resolve_one(std::string_view text) {
  std::string why;
  if (text.substr(0, kUnixPrefix.size()) == kUnixPrefix) {
    auto ep = Endpoint::parse_unix(text, &why);
    if (!ep) throw ServerError("invalid address '" + std::string(text) + "': " + why);
    return *ep;
  }
  auto hp = parse_host_port(text, &why);
  if (!hp) throw ServerError("invalid address '" + std::string(text) + "': " + why);
  return resolve_one(hp->host, hp->port);
}

}  // namespace iomux
