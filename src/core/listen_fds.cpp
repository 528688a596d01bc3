#include "core/listen_fds.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "iomux/activation.hpp"
#include "iomux/error.hpp"
#include "iomux/log.hpp"
#include "iomux/upgrade.hpp"

namespace iomux::detail {
namespace {

// A plain decimal number up to `max`; nullopt for anything else (empty, a sign, a space, a
// letter, too large). The variables come from whoever started us: nothing lenient.
std::optional<std::int64_t> parse_decimal(std::string_view text, std::int64_t max) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  std::int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
    if (value > max) return std::nullopt;
  }
  return value;
}

}  // namespace

std::optional<ListenFds> parse_listen_fds(const char* listen_pid, const char* listen_fds, const char* listen_fdnames,
                                          pid_t self, std::string& why) {
  why.clear();
  ListenFds out;
  if (!listen_pid || !listen_fds) return out;
  const auto pid = parse_decimal(listen_pid, INT_MAX);
  if (!pid || *pid == 0) {
    why = "LISTEN_PID is not a process id: '" + escape_bytes(listen_pid) + "'";
    return std::nullopt;
  }
  // Handed to another process (we inherited its environment): not ours to take.
  if (*pid != self) return out;
  const auto count = parse_decimal(listen_fds, INT_MAX - kFirstListenFd);
  if (!count) {
    why = "LISTEN_FDS is not a count of fds: '" + escape_bytes(listen_fds) + "'";
    return std::nullopt;
  }
  out.count = static_cast<int>(*count);
  if (!listen_fdnames || out.count == 0) return out;
  std::string_view names(listen_fdnames);
  // Counted before they are copied: the count bounds nothing until it is checked.
  const std::size_t given = static_cast<std::size_t>(std::count(names.begin(), names.end(), ':')) + 1;
  if (given != static_cast<std::size_t>(out.count)) {
    why = "LISTEN_FDNAMES names " + std::to_string(given) + " fd" + (given == 1 ? "" : "s") + " and LISTEN_FDS " +
          std::to_string(out.count) + ": '" + escape_bytes(listen_fdnames) + "'";
    return std::nullopt;
  }
  for (std::size_t from = 0;;) {
    const std::size_t colon = names.find(':', from);
    out.names.emplace_back(names.substr(from, colon == std::string_view::npos ? std::string_view::npos : colon - from));
    if (colon == std::string_view::npos) break;
    from = colon + 1;
  }
  return out;
}

}  // namespace iomux::detail

namespace iomux {

std::vector<InheritedListener> inherited_listeners() {
  std::string why;
  const std::optional<detail::ListenFds> parsed = detail::parse_listen_fds(
      std::getenv("LISTEN_PID"), std::getenv("LISTEN_FDS"), std::getenv("LISTEN_FDNAMES"), ::getpid(), why);
  // Whatever they said: a program this one starts must not take the sockets for its own.
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  if (!parsed) throw ServerError("socket activation: " + why);
  // Each fd checked before any memory is spent on the count: only open ones can be listeners.
  for (int i = 0; i < parsed->count; ++i) {
    const int fd = kFirstListenFd + i;
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0 || ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC) != 0)
      throw ServerError("socket activation: LISTEN_FDS=" + std::to_string(parsed->count) + " but fd " +
                        std::to_string(fd) + " cannot be used: " + std::strerror(errno));
  }
  std::vector<InheritedListener> out;
  out.reserve(static_cast<std::size_t>(parsed->count));
  for (int i = 0; i < parsed->count; ++i)
    out.push_back({kFirstListenFd + i, parsed->names.empty() ? std::string() : parsed->names[i]});
  return out;
}

// The names an upgrade gives the sockets it hands over (iomux/upgrade.hpp): here, beside the
// rest of socket activation, because make_server reads them (ServerContext::open_listeners).
namespace {
constexpr std::string_view kListenerNamePrefix = "iomux-listener-";
}  // namespace

std::string upgrade_listener_name(std::size_t i) {
  return std::string(kListenerNamePrefix) + std::to_string(i);
}

std::optional<std::size_t> upgrade_listener_index(std::string_view name) {
  if (name.size() <= kListenerNamePrefix.size() || name.substr(0, kListenerNamePrefix.size()) != kListenerNamePrefix)
    return std::nullopt;
  const std::string_view digits = name.substr(kListenerNamePrefix.size());
  if (digits.size() > 6 || (digits.size() > 1 && digits[0] == '0')) return std::nullopt;
  std::size_t i = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    i = i * 10 + static_cast<std::size_t>(c - '0');
  }
  return i;
}

}  // namespace iomux
