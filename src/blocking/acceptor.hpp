// One accept() for the blocking family (blocking, threaded, nonblocking, timeout), with the
// listener's own blocking behaviour: what it failed with means the same as on every engine
// (ServerContext::accept_failed classifies, logs, counts and sheds out of fds).
#pragma once

#include <poll.h>

#include <chrono>
#include <cstddef>
#include <vector>

#include "core/fd.hpp"
#include "core/listener.hpp"
#include "core/server_context.hpp"
#include "core/spare_fd.hpp"
#include "core/thread_stats.hpp"
#include "iomux/endpoint.hpp"

namespace iomux::detail::blocking {

class Acceptor {
 public:
  struct Result {
    UniqueFd fd;
    Endpoint peer;
    AcceptFailure failure = AcceptFailure::none_waiting;  // when !fd
  };

  // `accept_flags`: accept4()'s for the new sockets (SOCK_NONBLOCK for the nonblocking model).
  Acceptor(ServerContext& ctx, ThreadStats& stats, int accept_flags);
  Result accept(const ListenSocket& listener);

  // For a thread that sleeps in accept() (blocking, threaded): which listener to accept from
  // next. One listener of its own: it (accept() itself waits). Several, or an inherited one
  // (opened O_NONBLOCK: accepts_through_poll()): the thread sleeps in poll(2) on all of them,
  // the only way one thread can wait for several sockets, and the next ready one after the last
  // served is chosen, so a busy listener cannot starve another. stop() shuts the server's own
  // listeners down, which ends the poll (POLLHUP) as it ends an accept(); an inherited one is
  // not shut down (another process may hold it), so `stop_fd` (StopControl::stop_fd(), -1 when
  // there is no inherited listener) is polled as well: when it ends the wait, the accept that
  // follows finds nothing and the caller sees the stop.
  std::size_t wait_for_listener(const std::vector<SharedListener>& listeners, int stop_fd = -1);

 private:
  ServerContext& ctx_;
  ThreadStats& stats_;
  int flags_;
  SpareFd spare_;
  std::vector<pollfd> waiting_;
  std::size_t last_ready_ = 0;
};

// Whether a thread that would sleep in accept() must sleep in poll(2) instead, with every
// listener O_NONBLOCK (Acceptor::wait_for_listener).
inline bool accepts_through_poll(const ServerContext& ctx) noexcept {
  return ctx.listener_count() > 1 || ctx.has_inherited();
}

// Whether an accept that failed this way will fail again at once (out of fds, ENOBUFS): the
// thread pauses before the next, instead of spinning.
inline bool lasting(AcceptFailure f) noexcept {
  return f == AcceptFailure::out_of_fds || f == AcceptFailure::transient;
}

// After an accept() that failed for a lasting reason (out of fds, ENOBUFS): a pause, so the
// failure does not spin the thread.
inline constexpr std::chrono::milliseconds kAcceptBackoff{10};
// Connections one pass of a visiting model may accept: enough for a burst, few enough that the
// connected clients still get their turn during a connection storm.
inline constexpr int kAcceptBurst = 64;

}  // namespace iomux::detail::blocking
