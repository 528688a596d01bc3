// An endpoint: a TCP address (IPv4, IPv6, a host name to resolve, with a port) or a Unix domain
// socket (a path in the file system, or a name in Linux's abstract namespace): parsing,
// resolving, printing.
//
//   127.0.0.1:7890     [::1]:7890     localhost:7890     0.0.0.0:0
//   unix:/run/iomux.sock   unix:relative/path.sock   unix:@iomux (abstract: no file)
//
// Parsing is IO-free; resolve() is the only function that may consult the resolver.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

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

// A resolved socket address: IPv4, IPv6 or Unix (AF_UNIX). Copyable; 32 bytes, and only a
// Unix address with a name allocates (its sockaddr_un, 110 bytes, is kept on the heap: every
// connection holds its peer's Endpoint, and most are TCP or unnamed Unix clients).
class Endpoint {
 public:
  Endpoint() noexcept;
  Endpoint(const Endpoint& other);
  Endpoint(Endpoint&& other) noexcept;
  Endpoint& operator=(const Endpoint& other);
  Endpoint& operator=(Endpoint&& other) noexcept;
  ~Endpoint();
  // From a numeric IPv4/IPv6 literal; nullopt for anything else (no resolver involved).
  static std::optional<Endpoint> from_numeric(std::string_view host, std::uint16_t port);
  // From "unix:PATH" or "unix:@NAME" (abstract). nullopt (and `why`) for anything else: no
  // "unix:" prefix, an empty path or name, one too long for sun_path (107 bytes: a path keeps
  // its terminating NUL), or a control character in it (they could not be printed back).
  static std::optional<Endpoint> parse_unix(std::string_view text, std::string* why = nullptr);
  // AF_INET, AF_INET6 or AF_UNIX (an unnamed Unix socket, a client's usually, included);
  // anything else gives the unspecified endpoint.
  static Endpoint from_sockaddr(const sockaddr* sa, socklen_t len);
  static Endpoint loopback_v4(std::uint16_t port) noexcept;

  [[nodiscard]] int family() const noexcept { return addr_.sa.sa_family; }
  // A Unix endpoint has no port: port() is 0 and set_port() does nothing.
  [[nodiscard]] std::uint16_t port() const noexcept;
  void set_port(std::uint16_t port) noexcept;
  [[nodiscard]] const sockaddr* sockaddr_ptr() const noexcept {
    return is_unix() && addr_.un.named ? reinterpret_cast<const sockaddr*>(addr_.un.named) : &addr_.sa;
  }
  // For an abstract name, exactly the name's bytes: no NUL is counted (it would be part of it).
  [[nodiscard]] socklen_t sockaddr_len() const noexcept;
  [[nodiscard]] bool is_v6() const noexcept { return family() == AF_INET6; }
  [[nodiscard]] bool is_unix() const noexcept { return family() == AF_UNIX; }
  // A Unix endpoint in the abstract namespace (no file, gone with the last socket).
  [[nodiscard]] bool is_abstract() const noexcept;
  // The file-system path of a Unix endpoint ("" for an abstract or unnamed one, or not Unix):
  // what a listener creates and removes.
  [[nodiscard]] std::string unix_path() const;

  // "127.0.0.1:7890", "[::1]:7890", "unix:/path", "unix:@name"; what parse_unix() and
  // parse_host_port() read back. Control bytes of a Unix name (possible only in one the kernel
  // reported, e.g. a client's abstract name) print as \xNN; an unnamed Unix socket (a
  // client's that did not bind) prints as "unix:(unnamed)"; a relative path that starts with
  // '@' (which "unix:@" would make abstract) as "unix:./@...".
  [[nodiscard]] std::string to_string() const;
  // The address without the port; for a Unix endpoint, the same as to_string().
  [[nodiscard]] std::string host_string() const;

  friend bool operator==(const Endpoint& a, const Endpoint& b) noexcept;

 private:
  struct UnixAddress {
    sa_family_t family;  // AF_UNIX, where sockaddr has its sa_family (a common initial sequence)
    socklen_t len;       // the whole sockaddr's (an abstract name is not NUL-ended)
    sockaddr_un* named;  // owned; null for an unnamed socket
  };
  // A Unix endpoint with a name: a copy of `un`, whose first `len` bytes count.
  static Endpoint named_unix(const sockaddr_un& un, socklen_t len);
  // The name's bytes: a path without its NUL, an abstract name without its leading NUL.
  [[nodiscard]] std::string_view unix_name() const noexcept;
  // Frees a Unix name; leaves the unspecified endpoint.
  void clear() noexcept;

  union {
    sockaddr sa;
    sockaddr_in v4;
    sockaddr_in6 v6;
    UnixAddress un;
  } addr_;
};

// Numeric literals resolve without a lookup; names go through getaddrinfo (AF_UNSPEC,
// SOCK_STREAM). Returns every address, IPv4 first in the order the resolver gave.
std::vector<Endpoint> resolve(const HostPort& hp, std::error_code& ec);

// Convenience: parse + resolve, first address ("unix:..." needs no resolver). Throws
// ServerError with a clear message.
Endpoint resolve_one(std::string_view text);
Endpoint resolve_one(std::string_view host, std::uint16_t port);

}  // namespace iomux
