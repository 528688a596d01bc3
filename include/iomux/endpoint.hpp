// A TCP endpoint (address + port) for IPv4, IPv6 and host names: parsing, resolving, printing.
//
//   127.0.0.1:7890     [::1]:7890     localhost:7890     0.0.0.0:0
//
// Parsing is IO-free; resolve() is the only function that may consult the resolver.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace iomux {

// A host and port as the user wrote them, before any name resolution.
struct HostPort {
  std::string host;  // without brackets for IPv6 literals
  std::uint16_t port = 0;
};

// Splits "host:port", "[v6]:port" into parts. Returns nullopt (and `why`) for malformed text:
// empty host, missing or non-numeric port, port above 65535, unbalanced brackets.
std::optional<HostPort> parse_host_port(std::string_view text, std::string* why = nullptr);

// Parses a port number 0..65535 with nothing else around it.
std::optional<std::uint16_t> parse_port(std::string_view text);

// A resolved socket address (IPv4 or IPv6). Small and copyable.
class Endpoint {
 public:
  Endpoint() noexcept;
  // From a numeric IPv4/IPv6 literal; nullopt for anything else (no resolver involved).
  static std::optional<Endpoint> from_numeric(std::string_view host, std::uint16_t port);
  static Endpoint from_sockaddr(const sockaddr* sa, socklen_t len) noexcept;
  static Endpoint loopback_v4(std::uint16_t port) noexcept;

  [[nodiscard]] int family() const noexcept { return addr_.sa.sa_family; }
  [[nodiscard]] std::uint16_t port() const noexcept;
  void set_port(std::uint16_t port) noexcept;
  [[nodiscard]] const sockaddr* sockaddr_ptr() const noexcept { return &addr_.sa; }
  [[nodiscard]] socklen_t sockaddr_len() const noexcept;
  [[nodiscard]] bool is_v6() const noexcept { return family() == AF_INET6; }

  // "127.0.0.1:7890" or "[::1]:7890".
  [[nodiscard]] std::string to_string() const;
  [[nodiscard]] std::string host_string() const;

  friend bool operator==(const Endpoint& a, const Endpoint& b) noexcept;

 private:
  union {
    sockaddr sa;
    sockaddr_in v4;
    sockaddr_in6 v6;
  } addr_;
};

// Numeric literals resolve without a lookup; names go through getaddrinfo (AF_UNSPEC,
// SOCK_STREAM). Returns every address, IPv4 first in the order the resolver gave.
std::vector<Endpoint> resolve(const HostPort& hp, std::error_code& ec);

// Convenience: parse + resolve, first address. Throws ServerError with a clear message.
Endpoint resolve_one(std::string_view text);
Endpoint resolve_one(std::string_view host, std::uint16_t port);

}  // namespace iomux
