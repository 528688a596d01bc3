// One accept() for the blocking family (blocking, threaded, nonblocking, timeout), with the
// listener's own blocking behaviour: what it failed with means the same as on every engine
// (ServerContext::accept_failed classifies, logs, counts and sheds out of fds).
#pragma once

#include <chrono>

#include "core/fd.hpp"
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
  Result accept(int listener);

 private:
  ServerContext& ctx_;
  ThreadStats& stats_;
  int flags_;
  SpareFd spare_;
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
