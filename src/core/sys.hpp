// The socket calls of the request path, made without glibc's wrappers.
//
// In a multi-threaded process glibc wraps every cancellation point (recv, send, sendmsg, readv,
// epoll_wait) in __pthread_enable_asynccancel / __pthread_disable_asynccancel: about 60
// user-space instructions per call, 120 of the ~490 a small request cost the epoll model
// (callgrind on the 64 B ack path; docs/benchmarks.md has the run). iomux never cancels a thread, so it enters the
// kernel itself: an inline `syscall` instruction on x86-64 and arm64 (as liburing does for io_uring_enter), glibc's
// syscall() elsewhere, which is not a cancellation point either. Same results, same errno
// convention (-1 with errno set; errno is only written on failure); EINTR is retried.
#pragma once

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

namespace iomux::detail::sys {

// A raw system call: the kernel's return value, -errno on failure.
inline long raw(long nr, long a, long b, long c, long d = 0, long e = 0, long f = 0) noexcept {
#if defined(__x86_64__)
  long ret;
  register long r10 asm("r10") = d;
  register long r8 asm("r8") = e;
  register long r9 asm("r9") = f;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
               : "rcx", "r11", "memory");
  return ret;
#elif defined(__aarch64__)
  register long x8 asm("x8") = nr;
  register long x0 asm("x0") = a;
  register long x1 asm("x1") = b;
  register long x2 asm("x2") = c;
  register long x3 asm("x3") = d;
  register long x4 asm("x4") = e;
  register long x5 asm("x5") = f;
  asm volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return x0;
#else
  const long ret = ::syscall(nr, a, b, c, d, e, f);
  return ret < 0 ? -errno : ret;
#endif
}

// The result of `raw` in the libc convention, retrying EINTR.
template <typename Call>
inline ssize_t retrying(Call call) noexcept {
  long r;
  do r = call();
  while (r == -EINTR);
  if (r < 0) [[unlikely]] {
    errno = static_cast<int>(-r);
    return -1;
  }
  return r;
}

inline ssize_t recv(int fd, void* buf, std::size_t len) noexcept {
  return retrying([&] { return raw(SYS_recvfrom, fd, reinterpret_cast<long>(buf), static_cast<long>(len), 0, 0, 0); });
}

inline ssize_t readv(int fd, const iovec* iov, int count) noexcept {
  return retrying([&] { return raw(SYS_readv, fd, reinterpret_cast<long>(iov), count); });
}

// MSG_NOSIGNAL: a peer that vanished is an EPIPE, never a SIGPIPE.
inline ssize_t send(int fd, const void* buf, std::size_t len) noexcept {
  return retrying(
      [&] { return raw(SYS_sendto, fd, reinterpret_cast<long>(buf), static_cast<long>(len), MSG_NOSIGNAL, 0, 0); });
}

inline ssize_t sendv(int fd, const iovec* iov, std::size_t count) noexcept {
  if (count == 1) return send(fd, iov[0].iov_base, iov[0].iov_len);
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov);
  msg.msg_iovlen = count;
  return retrying([&] { return raw(SYS_sendmsg, fd, reinterpret_cast<long>(&msg), MSG_NOSIGNAL); });
}

// Not retried on EINTR: the caller's loop decides (a signal may be the reason to look around).
// epoll_pwait with no mask: the call every architecture has (arm64 lacks plain epoll_wait).
inline int epoll_wait(int epfd, epoll_event* events, int max, int timeout_ms) noexcept {
  const long r = raw(SYS_epoll_pwait, epfd, reinterpret_cast<long>(events), max, timeout_ms, 0, 8);
  if (r < 0) {
    errno = static_cast<int>(-r);
    return -1;
  }
  return static_cast<int>(r);
}

}  // namespace iomux::detail::sys
