// What the four models of the tutorial's sections 2-4 (blocking, threaded, nonblocking,
// timeout) share: a client BlockingTransport that drives a ConnectionCore over one socket with
// synchronous calls, the Executor of a thread of theirs (BlockingLoop, blocking_loop.hpp), and one accept()
// (acceptor.hpp).
//
// The models differ only in how they wait, which is the lesson:
//   blocking, threaded   BlockingTransport::serve(): recv() sleeps until the client speaks. A connection
//                        that other threads or timers may reach (the handler took a handle,
//                        deferred a reply, started a timer) sleeps in poll() on its socket and
//                        its thread's wake-up eventfd instead.
//   nonblocking          BlockingTransport::visit() on an O_NONBLOCK socket: recv() never sleeps; the
//                        loop sleeps after a pass that found nothing.
//   timeout              BlockingTransport::visit() on a blocking socket with SO_RCVTIMEO/SO_SNDTIMEO:
//                        recv() and send() sleep at most one poll interval.
// (nonblocking and timeout also share their pass loop: visiting_server.hpp.)
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

#include "blocking/blocking_loop.hpp"
#include "blocking/stop_control.hpp"
#include "core/connection_core.hpp"
#include "core/fd.hpp"
#include "core/sync_io.hpp"
#include "iomux/endpoint.hpp"
#include "iomux/handler.hpp"

namespace iomux::detail::blocking {

using SteadyClock = std::chrono::steady_clock;

// One client connection of a blocking-family thread: its socket and its ConnectionCore.
// Constructing a BlockingTransport counts the connection open, logs it and calls the handler's on_open;
// the core's close (or the destructor) releases it. One thread uses a BlockingTransport at a time.
class BlockingTransport final : public Transport {
 public:
  // The caller has admitted the connection (ServerContext::admit) and made its handler; `local`
  // is the listener's endpoint (ConnectionCore). `stop`,
  // when given, gets the socket registered so stop() can wake a thread blocked on it.
  // `blocking_sends`: the socket blocks (serve()), so a send goes on until everything is sent
  // or the peer takes nothing for send_timeout (SO_SNDTIMEO; the connection then closes).
  BlockingTransport(BlockingLoop& executor, UniqueFd fd, const Endpoint& peer, const Endpoint& local,
                    std::unique_ptr<Handler> handler, StopControl* stop, bool blocking_sends);
  // An outbound connection (Loop::connect) of a visiting model: `fd` is O_NONBLOCK with its
  // connect() to `to` under way, or failed at once (`failed`, its errno). Each visit() looks
  // whether it is done (poll, SO_ERROR, getpeername); then the socket is made blocking if
  // `blocking_after` (the timeout model's: its SO_RCVTIMEO/SO_SNDTIMEO are set already) and
  // the core opens. `timeout`: ConnectOptions::timeout.
  struct Outbound {
    int failed = 0;
    bool blocking_after = false;
    std::chrono::milliseconds timeout{0};
  };
  BlockingTransport(BlockingLoop& executor, UniqueFd fd, const Endpoint& to, std::unique_ptr<Handler> handler,
                    StopControl* stop, Outbound outbound);
  BlockingTransport(BlockingTransport&&) = delete;
  ~BlockingTransport();

  // Blocking socket: serve until the client closes, the idle timeout passes, or stop. Replies
  // are sent synchronously, so nothing is left pending: the blocking send() is the
  // back-pressure.
  void serve(std::span<char> scratch);

  // One turn of a polling model: send what is owed, then read and serve at most one chunk
  // (unless paused or flushing). Works on an O_NONBLOCK socket (never sleeps) and on a blocking
  // one with SO_RCVTIMEO/SO_SNDTIMEO (sleeps at most those). True if something moved. (The
  // idle timeout is a timer of the loop's: the constructor starts it.)
  bool visit(std::span<char> scratch);

  // Graceful stop: read no more; close once the owed replies are sent.
  // With a StopControl (blocking, threaded, timeout), the stop shuts the socket's reading side
  // to wake the thread: nothing more can be read, so the handler is not offered to finish;
  // except in a hand-over (StopControl::handing_over), which shuts nothing down.
  void drain() { core_.drain(/*may_keep_reading=*/stop_ == nullptr || stop_->handing_over()); }
  void close(std::string_view why) { core_.close(CloseReason::server_stopped, 0, why); }

  [[nodiscard]] bool is_closed() const noexcept { return core_.state() == ConnectionCore::State::closed; }
  [[nodiscard]] ConnectionCore& core() noexcept { return core_; }

  // Transport.
  void settle() override;
  void shutdown_write() override;
  void release_socket() override;

 private:
  int send() { return blocking_ ? send_owed<true>(core_, fd_.get()) : send_owed<false>(core_, fd_.get()); }
  void on_eof();
  void wait_and_serve(std::span<char> scratch);
  // Outbound, while connecting: true once the connect is done (open, or failed and closed).
  bool visit_connecting();
  // blocking, threaded, once this thread's client opened connections of its own (companions):
  // one poll() over the client (when `with_client`), the mailbox and every companion, then a
  // turn for each that is ready.
  void wait_with_companions(std::span<char> scratch, bool with_client);
  // The client has closed: serve its companions until they close too (or the server stops).
  void serve_companions(std::span<char> scratch);
  void drain_companions();
  // What poll() waits for on a companion's socket.
  [[nodiscard]] short companion_events() noexcept;
  // A turn for each companion `ready(index)` picks, then the closed ones go.
  template <typename Ready>
  void visit_companions(std::span<char> scratch, Ready&& ready);
  // poll()'s timeout, in ms from `now`: the loop's next timer, the client's idle timeout (when
  // `with_client` and it reads) and, with `tick_for_stop`, 100 ms, whichever comes first; at
  // most a minute; -1 (no timeout) when there is none of them.
  [[nodiscard]] int poll_timeout(SteadyClock::time_point now, bool with_client, bool tick_for_stop);
  // The idle timeout, for a client that reads: a poll() that timed out does not say which.
  void close_if_idle(SteadyClock::time_point now);

  // What only an outbound connection needs: on the heap, one pointer in an accepted one.
  struct Connecting {
    Endpoint local;  // the address the kernel bound (Connection::local())
    int failed = 0;
    bool blocking_after = false;
    TimerId timer = kNoTimer;  // the connect timeout
  };

  BlockingLoop& executor_;
  StopControl* stop_;
  UniqueFd fd_;
  bool blocking_;
  bool companions_drained_ = false;
  std::unique_ptr<Connecting> outbound_;  // before core_, which refers to its `local`
  ConnectionCore core_;
};

// Stack space each serving thread reads into.
inline constexpr std::size_t kScratchSize = 64 * 1024;

}  // namespace iomux::detail::blocking
