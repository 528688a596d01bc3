// What the four models of the tutorial's sections 2-4 (blocking, threaded, nonblocking,
// timeout) share: a client Session that drives a ConnectionCore over one socket with
// synchronous calls, the Executor of a thread of theirs (ThreadExecutor), and one accept() with
// the out-of-fds escape.
//
// The models differ only in how they wait, which is the lesson:
//   blocking, threaded   Session::serve(): recv() sleeps until the client speaks. A connection
//                        that other threads or timers may reach (the handler took a handle,
//                        deferred a reply, started a timer) sleeps in poll() on its socket and
//                        its thread's wake-up eventfd instead.
//   nonblocking          Session::visit() on an O_NONBLOCK socket: recv() never sleeps; the
//                        loop sleeps after a pass that found nothing.
//   timeout              Session::visit() on a blocking socket with SO_RCVTIMEO/SO_SNDTIMEO:
//                        recv() and send() sleep at most one poll interval.
// (nonblocking and timeout also share their pass loop: visiting_server.hpp.)
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "blocking/stop_control.hpp"
#include "core/connection_core.hpp"
#include "core/executor.hpp"
#include "core/fd.hpp"
#include "core/send_batch.hpp"
#include "core/server_context.hpp"
#include "core/spare_fd.hpp"
#include "core/sync_io.hpp"
#include "core/thread_stats.hpp"
#include "core/timer_queue.hpp"
#include "iomux/endpoint.hpp"
#include "iomux/stats.hpp"

namespace iomux::detail::blocking {

using SteadyClock = std::chrono::steady_clock;

// One accept4() with the listener's own blocking behaviour, and the shared answer to EMFILE
// (core/spare_fd.hpp).
class AcceptOne {
 public:
  struct Result {
    UniqueFd fd;
    Endpoint peer;
    int error = 0;  // when !fd: EAGAIN (none waiting / SO_RCVTIMEO), EINVAL (listener shut
                    // down by stop), EINTR (try again), or a failure already logged
  };

  AcceptOne(ServerContext& ctx, ThreadStats& stats, int accept_flags);
  Result operator()(int listener);

 private:
  ServerContext& ctx_;
  ThreadStats& stats_;
  int flags_;
  SpareFd spare_;
};

// The Executor of one thread of a blocking model: a TimerQueue run between its blocking calls,
// and a mailbox whose wake-up is an eventfd (made when first needed; serve() polls it) or, for
// the visiting models, a nudge of their back-off sleep.
class ThreadExecutor final : public Executor {
 public:
  enum class Wake { eventfd, nudge };
  ThreadExecutor(ServerContext& ctx, ThreadStats& stats, StopControl* stop, Wake wake);
  ~ThreadExecutor() override;

  TimerId start_timer(Clock::time_point when, std::function<void()> callback) override;
  bool cancel_timer(TimerId id) override;

  // Owner thread: the time is now; runs due timers and the mail.
  void run_due();
  [[nodiscard]] std::optional<Clock::time_point> next_deadline() { return timers_.next_deadline(); }
  // Owner thread: the eventfd that mail makes readable (created on first call).
  int wake_fd();
  void drain_wake_fd() noexcept;

 private:
  void wake() noexcept;

  SendBatch batch_;
  TimerQueue timers_;
  StopControl* stop_;
  Wake wake_mode_;
  std::atomic<int> wake_fd_{-1};
};

// One client connection of a blocking-family thread: its socket and its ConnectionCore.
// Constructing a Session counts the connection open, logs it and calls the handler's on_open;
// the core's close (or the destructor) releases it. One thread uses a Session at a time.
class Session final : public Transport {
 public:
  // The caller has admitted the connection (ServerContext::admit) and made its handler. `stop`,
  // when given, gets the socket registered so stop() can wake a thread blocked on it.
  // `blocking_sends`: the socket blocks (serve()), so a send goes on until everything is sent
  // or the peer takes nothing for send_timeout (SO_SNDTIMEO; the connection then closes).
  Session(ThreadExecutor& executor, UniqueFd fd, const Endpoint& peer, std::unique_ptr<Handler> handler,
          StopControl* stop, bool blocking_sends);
  Session(Session&&) = delete;
  ~Session();

  // Blocking socket: serve until the client closes, the idle timeout passes, or stop. Replies
  // are sent synchronously, so nothing is left pending: the blocking send() is the
  // back-pressure.
  void serve(std::span<char> scratch);

  // One turn of a polling model: send what is owed, then read and serve at most one chunk
  // (unless paused or flushing), then enforce the idle timeout. Works on an O_NONBLOCK socket
  // (never sleeps) and on a blocking one with SO_RCVTIMEO/SO_SNDTIMEO (sleeps at most those).
  // True if something moved.
  bool visit(std::span<char> scratch, SteadyClock::time_point now);

  // Graceful stop: read no more; close once the owed replies are sent.
  void drain() { core_.drain(); }
  void close(std::string_view why) { core_.close(CloseReason::server_stopped, 0, why); }

  [[nodiscard]] bool is_closed() const noexcept { return core_.state() == ConnectionCore::State::closed; }

  // Transport.
  void settle() override;
  void shutdown_write() override;
  void release_socket() override;

 private:
  int send() { return send_owed(core_, fd_.get(), blocking_); }
  void on_eof();
  void wait_and_serve(std::span<char> scratch);

  ThreadExecutor& executor_;
  StopControl* stop_;
  UniqueFd fd_;
  bool blocking_;
  ConnectionCore core_;
};

// Stack space each serving thread reads into.
inline constexpr std::size_t kScratchSize = 64 * 1024;
// After an accept() failure other than "try again" (e.g. out of fds): a pause, so a lasting
// failure does not spin the thread.
inline constexpr std::chrono::milliseconds kAcceptBackoff{10};
// Connections one pass of a visiting model may accept: enough for a burst, few enough that the
// connected clients still get their turn during a connection storm.
inline constexpr int kAcceptBurst = 64;

// The handler for a new connection from the server's factory, or null when the factory failed
// (the connection is then refused: released, counted and logged).
std::unique_ptr<Handler> make_handler_or_refuse(ServerContext& ctx, ThreadStats& stats, const Endpoint& peer);

}  // namespace iomux::detail::blocking
