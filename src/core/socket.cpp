#include "core/socket.hpp"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>

#include "iomux/error.hpp"

namespace iomux::detail {
namespace {

std::error_code set_int_option(int fd, int level, int name, int value) noexcept {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0) return last_error();
  return {};
}

std::error_code set_timeval_option(int fd, int name, std::chrono::microseconds t) noexcept {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count() / 1'000'000);
  tv.tv_usec = static_cast<suseconds_t>(t.count() % 1'000'000);
  if (::setsockopt(fd, SOL_SOCKET, name, &tv, sizeof tv) != 0) return last_error();
  return {};
}

}  // namespace

UniqueFd listen_tcp(const Endpoint& ep, const ListenOptions& opts, std::error_code& ec) {
  int type = SOCK_STREAM | SOCK_CLOEXEC | (opts.non_blocking ? SOCK_NONBLOCK : 0);
  UniqueFd fd(::socket(ep.family(), type, 0));
  if (!fd) {
    ec = last_error();
    return {};
  }
  if ((ec = set_int_option(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1))) return {};
  if (opts.reuse_port && (ec = set_int_option(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1))) return {};
  if (ep.is_v6() && (ec = set_int_option(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, opts.v6_only ? 1 : 0))) return {};
  if (::bind(fd.get(), ep.sockaddr_ptr(), ep.sockaddr_len()) != 0 || ::listen(fd.get(), opts.backlog) != 0) {
    ec = last_error();
    return {};
  }
  ec.clear();
  return fd;
}

UniqueFd connect_tcp_nonblocking(const Endpoint& ep, std::error_code& ec) {
  UniqueFd fd(::socket(ep.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) {
    ec = last_error();
    return {};
  }
  ec.clear();
  if (::connect(fd.get(), ep.sockaddr_ptr(), ep.sockaddr_len()) != 0 && errno != EINPROGRESS) {
    ec = last_error();
    return {};
  }
  return fd;
}

UniqueFd connect_tcp(const Endpoint& ep, std::chrono::milliseconds timeout, std::error_code& ec) {
  UniqueFd fd = connect_tcp_nonblocking(ep, ec);
  if (!fd) return {};
  pollfd p{fd.get(), POLLOUT, 0};
  int wait_ms = timeout.count() > 0 ? static_cast<int>(timeout.count()) : -1;
  int rc;
  do rc = ::poll(&p, 1, wait_ms);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    ec = last_error();
    return {};
  }
  if (rc == 0) {
    ec = std::make_error_code(std::errc::timed_out);
    return {};
  }
  if ((ec = socket_error(fd.get()))) return {};
  if ((ec = set_non_blocking(fd.get(), false))) return {};
  return fd;
}

UniqueFd open_outbound_socket(const Endpoint& to, bool non_blocking) {
  UniqueFd fd(::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC | (non_blocking ? SOCK_NONBLOCK : 0), 0));
  if (!fd) throw ServerError("Loop::connect: cannot open a socket: " + last_error().message());
  return fd;
}

std::error_code set_non_blocking(int fd, bool on) noexcept {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return last_error();
  int wanted = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (wanted != flags && ::fcntl(fd, F_SETFL, wanted) != 0) return last_error();
  return {};
}

std::error_code set_no_delay(int fd, bool on) noexcept {
  return set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0);
}

std::error_code set_recv_timeout(int fd, std::chrono::microseconds t) noexcept {
  return set_timeval_option(fd, SO_RCVTIMEO, t);
}

std::error_code set_send_timeout(int fd, std::chrono::microseconds t) noexcept {
  return set_timeval_option(fd, SO_SNDTIMEO, t);
}

std::error_code set_linger_reset(int fd) noexcept {
  linger l{1, 0};
  if (::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0) return last_error();
  return {};
}

Endpoint local_endpoint(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

Endpoint peer_endpoint(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

std::error_code socket_error(int fd) noexcept {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return last_error();
  return err ? std::error_code(err, std::generic_category()) : std::error_code();
}

std::error_code send_all(int fd, const void* data, std::size_t len) noexcept {
  auto* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = ::send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    p += n;
    len -= static_cast<std::size_t>(n);
  }
  return {};
}

long raise_fd_limit() noexcept {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  return static_cast<long>(rl.rlim_cur);
}

}  // namespace iomux::detail
