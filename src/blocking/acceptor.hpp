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

  // For a thread that waits for connections (blocking, threaded): which listener to accept
  // from next. The thread sleeps in poll(2) on all of them (O_NONBLOCK) and on `stop_fd`
  // (StopControl::stop_fd()), and the next ready one after the last served is chosen, so a
  // busy listener cannot starve another. Not in accept(): only shutdown(2) would wake that,
  // and a listener may be shared with another process (socket activation, an upgrade's
  // successor), whose copy a shutdown would stop too. When stop_fd ends the wait, the accept
  // that follows finds nothing and the caller sees the stop.
  std::size_t wait_for_listener(const std::vector<SharedListener>& listeners, int stop_fd);

 private:
  ServerContext& ctx_;
  ThreadStats& stats_;
  int flags_;
  SpareFd spare_;
  std::vector<pollfd> waiting_;
  std::size_t last_ready_ = 0;
};

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
