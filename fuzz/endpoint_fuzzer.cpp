// libFuzzer target for endpoint parsing and printing (src/core/endpoint.cpp).
//
// Whatever the bytes, these must not crash, and:
//   - parse_port() accepts exactly 1 to 5 ASCII digits worth at most 65535;
//   - parse_host_port() either fails with a reason, or its host and port put back together
//     give the text again;
//   - an Endpoint made from a numeric literal (or from raw sockaddr bytes) prints as text that
//     parses back to an equal Endpoint which prints the same;
//   - Endpoint::parse_unix() either fails with a reason, or gives an AF_UNIX endpoint whose
//     to_string() is the text itself, whose sockaddr_len() counts the name (and a path's NUL,
//     never an abstract name's), and that resolve_one() gives too, without a resolver;
//   - a Unix address from raw sockaddr bytes prints without a control byte, and as text that
//     parses back to an equal endpoint whenever the name could have been written.
// resolve() is never called: the fuzzer must not depend on, or wait for, a name server.
//
//   build: make fuzz (clang, build-fuzz/)      run one input: build-fuzz/fuzz/endpoint_fuzzer FILE
#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "iomux/endpoint.hpp"
#include "iomux/error.hpp"

namespace {

void require(bool ok) {
  if (!ok) __builtin_trap();
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// The obvious definition of a port: 1-5 decimal digits, nothing else, value 0..65535.
std::optional<std::uint16_t> reference_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (char c : text) {
    if (!is_digit(c)) return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

void check_parse_port(std::string_view text) {
  require(iomux::parse_port(text) == reference_port(text));
}

void check_parse_host_port(std::string_view text) {
  std::string why;
  auto hp = iomux::parse_host_port(text, &why);
  if (!hp) {
    require(!why.empty());
    return;
  }
  require(!hp->host.empty());
  // Put the parts back together: the text must come out, the port as the user spelled it.
  std::string_view port_text;
  if (text.front() == '[') {
    const std::string prefix = "[" + hp->host + "]:";
    require(text.substr(0, prefix.size()) == prefix);
    require(hp->host.find(']') == std::string::npos);
    port_text = text.substr(prefix.size());
  } else {
    const std::string prefix = hp->host + ":";
    require(text.substr(0, prefix.size()) == prefix);
    require(hp->host.find(':') == std::string::npos);
    port_text = text.substr(prefix.size());
  }
  require(reference_port(port_text) == hp->port);
}

// A numeric endpoint printed and parsed again is the same endpoint, and prints the same.
void check_round_trip(const iomux::Endpoint& ep) {
  require(ep.family() == AF_INET || ep.family() == AF_INET6);
  require(ep.sockaddr_len() == (ep.is_v6() ? sizeof(sockaddr_in6) : sizeof(sockaddr_in)));
  const std::string text = ep.to_string();
  std::string why;
  auto hp = iomux::parse_host_port(text, &why);
  require(hp.has_value());
  require(hp->port == ep.port());
  require(hp->host == ep.host_string());
  auto again = iomux::Endpoint::from_numeric(hp->host, hp->port);
  require(again.has_value());
  require(*again == ep);
  require(again->to_string() == text);
}

void check_from_numeric(std::string_view host, std::uint16_t port) {
  auto ep = iomux::Endpoint::from_numeric(host, port);
  if (!ep) return;
  require(ep->port() == port);
  check_round_trip(*ep);
  iomux::Endpoint moved = *ep;
  moved.set_port(static_cast<std::uint16_t>(port + 1));
  require(moved.port() == static_cast<std::uint16_t>(port + 1));
  require(!(moved == *ep));
  // Note: the host goes to inet_pton() as a C string, so a NUL ends it ("1.2.3.4\0junk"
  // parses as 1.2.3.4). The round trip still holds; that leniency is not asserted here.
}

constexpr std::size_t kPathOffset = offsetof(sockaddr_un, sun_path);

bool has_control(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  return false;
}

void check_parse_unix(std::string_view text) {
  std::string why;
  auto ep = iomux::Endpoint::parse_unix(text, &why);
  if (!ep) {
    require(!why.empty());
    return;
  }
  require(text.substr(0, 5) == "unix:");
  require(ep->is_unix() && ep->port() == 0);
  const std::string_view rest = text.substr(5);
  const bool abstract = rest.front() == '@';
  require(ep->is_abstract() == abstract);
  const std::size_t name_size = abstract ? rest.size() - 1 : rest.size();
  require(name_size >= 1 && name_size <= 107 && !has_control(rest));
  // A path's terminating NUL is counted; an abstract name's leading NUL, and nothing after it.
  require(ep->sockaddr_len() == kPathOffset + 1 + name_size);
  require(ep->unix_path() == (abstract ? std::string() : std::string(rest)));
  require(ep->to_string() == text);
  auto again = iomux::Endpoint::parse_unix(ep->to_string());
  require(again.has_value() && *again == *ep);
  try {
    require(iomux::resolve_one(text) == *ep);
  } catch (const iomux::ServerError&) {
    require(false);
  }
}

void check_unix_from_sockaddr(const iomux::Endpoint& ep) {
  require(ep.sockaddr_len() >= kPathOffset && ep.sockaddr_len() <= sizeof(sockaddr_un));
  require(ep.port() == 0);
  const std::string text = ep.to_string();
  require(text.substr(0, 5) == "unix:");
  require(!has_control(text));
  if (ep.sockaddr_len() == kPathOffset) {
    require(text == "unix:(unnamed)");
    return;
  }
  const auto* un = reinterpret_cast<const sockaddr_un*>(ep.sockaddr_ptr());
  std::string_view name(un->sun_path, ep.sockaddr_len() - kPathOffset);
  if (ep.is_abstract()) {
    name.remove_prefix(1);
  } else {
    name = name.substr(0, name.find('\0'));
  }
  // "./" goes before a path that starts with '@' (else it would read as an abstract name).
  const std::size_t written = name.size() + (!ep.is_abstract() && name.front() == '@' ? 2 : 0);
  if (has_control(name) || written > 107) return;  // printed escaped, or too long to write
  auto again = iomux::Endpoint::parse_unix(text);
  require(again.has_value());
  require(again->is_abstract() == ep.is_abstract());
  if (!ep.is_abstract() && name.front() == '@') {
    require(text == "unix:./" + std::string(name));  // the same file, not an abstract name
    return;
  }
  require(*again == ep);
  require(again->to_string() == text);
}

void check_from_sockaddr(const std::uint8_t* data, std::size_t size) {
  sockaddr_storage storage{};
  const std::size_t n = std::min(size, sizeof storage);
  std::memcpy(&storage, data, n);
  auto ep = iomux::Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&storage), static_cast<socklen_t>(size));
  if (ep.family() == AF_INET || ep.family() == AF_INET6) {
    check_round_trip(ep);
  } else if (ep.family() == AF_UNIX) {
    check_unix_from_sockaddr(ep);
  } else {
    require(ep.family() == AF_UNSPEC);
    require(ep.port() == 0);
    require(ep.to_string() == "(unspecified)");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_parse_port(text);
  check_parse_host_port(text);
  check_parse_unix(text);
  if (auto hp = iomux::parse_host_port(text)) check_from_numeric(hp->host, hp->port);
  // The whole text as a host, with a port taken from its length.
  check_from_numeric(text, static_cast<std::uint16_t>(size * 2654435761u));
  check_from_sockaddr(data, size);
  return 0;
}
