// Thin socket helpers. Each returns a std::error_code built from errno saved at once, so a
// caller can log the reason; none retries anything but EINTR. Only open_outbound_socket throws:
// it serves Loop::connect, whose caller has no connection yet to hear a failure on.
#pragma once

#include <chrono>
#include <cstddef>
#include <system_error>

#include "core/fd.hpp"
#include "iomux/endpoint.hpp"

namespace iomux::detail {

inline std::error_code last_error() noexcept {
  return {errno, std::generic_category()};
}

struct ListenOptions {
  int backlog = 4096;       // the kernel caps it at net.core.somaxconn
  bool reuse_port = false;  // SO_REUSEPORT: one listener per event-loop thread
  bool non_blocking = true;
  bool v6_only = false;  // for [::] listeners; false = dual stack
};

// socket + SO_REUSEADDR (+ SO_REUSEPORT) + bind + listen, close-on-exec.
UniqueFd listen_tcp(const Endpoint& ep, const ListenOptions& opts, std::error_code& ec);

// Blocking connect with an optional timeout (zero = none). The socket is left blocking.
UniqueFd connect_tcp(const Endpoint& ep, std::chrono::milliseconds timeout, std::error_code& ec);

// Non-blocking connect: returns at once; ec is empty on success or EINPROGRESS-in-flight.
UniqueFd connect_tcp_nonblocking(const Endpoint& ep, std::error_code& ec);

// The socket Loop::connect opens, close-on-exec, for `to`'s family (TCP or Unix stream); every
// engine connects it its own way. Throws ServerError when there is no socket (EMFILE, ENOBUFS).
UniqueFd open_outbound_socket(const Endpoint& to, bool non_blocking);

std::error_code set_non_blocking(int fd, bool on = true) noexcept;
std::error_code set_no_delay(int fd, bool on = true) noexcept;
std::error_code set_recv_timeout(int fd, std::chrono::microseconds timeout) noexcept;
std::error_code set_send_timeout(int fd, std::chrono::microseconds timeout) noexcept;
// SO_LINGER {1, 0}: close() sends RST. Used by tests that simulate abrupt resets.
std::error_code set_linger_reset(int fd) noexcept;

Endpoint local_endpoint(int fd);
Endpoint peer_endpoint(int fd);

// Pending socket error (SO_ERROR), e.g. after a non-blocking connect.
std::error_code socket_error(int fd) noexcept;

// Writes all of `data` on a blocking socket (MSG_NOSIGNAL: a reset never raises SIGPIPE).
std::error_code send_all(int fd, const void* data, std::size_t len) noexcept;

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
long raise_fd_limit() noexcept;

}  // namespace iomux::detail
