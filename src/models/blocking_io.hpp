// What the four models of the tutorial's sections 2-4 (blocking, threaded, nonblocking,
// timeout) share: a client Session that moves bytes between its socket and the protocol core,
// one accept() with the out-of-fds escape, and StopControl, which lets stop() wake a thread that
// sleeps inside accept(), recv() or send().
//
// The models differ only in how they wait, which is the lesson:
//   blocking, threaded   Session::serve_until_closed(): recv() sleeps until the client speaks.
//   nonblocking          Session::visit() on an O_NONBLOCK socket: recv() never sleeps; the
//                        loop sleeps after a pass that found nothing.
//   timeout              Session::visit() on a blocking socket with SO_RCVTIMEO/SO_SNDTIMEO:
//                        recv() and send() sleep at most one poll interval.
// (nonblocking and timeout also share their pass loop: visiting_server.hpp.)
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <span>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "iomux/endpoint.hpp"
#include "iomux/fd.hpp"
#include "iomux/stats.hpp"
#include "server/request_stream.hpp"
#include "server/server_context.hpp"

namespace iomux::detail {

using SteadyClock = std::chrono::steady_clock;

// Stopping a server whose threads sleep in accept(), recv() or send(). stop() shuts the sockets
// down, which on Linux wakes those calls: shutdown(2) on a listener makes a blocked accept()
// fail with EINVAL, SHUT_RD makes a blocked recv() return 0, SHUT_WR makes a blocked send()
// fail with EPIPE. Sockets are registered here and unregistered before they are closed, both
// under one mutex, so stop() never shuts down an fd number that was closed and reused.
class StopControl {
 public:
  enum class Level { running, draining, cut };

  explicit StopControl(std::chrono::milliseconds drain_timeout) noexcept
      : drain_timeout_(drain_timeout) {}

  // Any thread; holds the mutex only to shut the registered sockets down. A graceful request
  // after a cut, or a second graceful one, changes nothing.
  void request(StopMode mode) noexcept;
  [[nodiscard]] Level level() const noexcept { return level_.load(std::memory_order_acquire); }
  [[nodiscard]] bool requested() const noexcept { return level() != Level::running; }

  // Any thread. A listener is shut down by any stop; a client gets SHUT_RD on a graceful stop
  // (its thread finishes the request in hand, then sees EOF) and SHUT_RDWR when cut. A stop
  // requested earlier applies at once.
  void watch(int fd, bool listener);
  void unwatch(int fd) noexcept;

  // Sleeps up to `d`; returns early when stop is requested (or escalated) meanwhile.
  void sleep_for(std::chrono::milliseconds d);

  // For models whose threads may sleep in a blocking send() to a client that does not read:
  // after a graceful stop this thread waits drain_timeout, then cuts every watched socket.
  // It ends when the returned jthread is destroyed (at the end of run()).
  [[nodiscard]] std::jthread start_drain_watchdog(Logger& log);

 private:
  void apply_locked(int fd, bool listener) const noexcept;

  std::chrono::milliseconds drain_timeout_;
  std::atomic<Level> level_{Level::running};
  mutable std::mutex mutex_;
  std::condition_variable_any cv_;
  std::uint64_t generation_ = 0;            // bumped by each request(), for sleep_for()
  std::unordered_map<int, bool> watched_;   // fd -> is a listener
};

// One accept4() with the listener's own blocking behaviour, and the reactor's answer to EMFILE
// (see reactor/acceptor.cpp): a spare fd given up to accept and close the connection that
// cannot be served, so the queue does not stay full and the caller does not spin.
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
  UniqueFd spare_;
};

// One client connection: its socket, the bytes of an unfinished line (line mode only) and the
// replies the peer has not taken yet. Every step runs the bytes just read through the protocol
// core and sends the replies with one send(): the RequestStream that reactor/connection.cpp
// uses too.
// Constructing a Session counts the connection open and logs it; close() (or the destructor)
// releases it, logs the reason and closes the socket. One thread uses a Session at a time.
class Session {
 public:
  // The caller has admitted the connection (ServerContext::admit). `stop`, when given, gets the
  // socket registered so stop() can wake a thread blocked on it.
  Session(ServerContext& ctx, ThreadStats& stats, UniqueFd fd, const Endpoint& peer,
          StopControl* stop);
  Session(Session&&) = delete;
  ~Session();

  // Blocking socket: serve until the client closes, the idle timeout (SO_RCVTIMEO, set here)
  // passes, or stop. Replies are sent synchronously, so nothing is ever left pending: the
  // blocking send() is the back-pressure.
  void serve_until_closed(std::span<char> scratch);

  // One turn of a polling model: send pending output, then read and serve at most one chunk
  // (unless paused by back-pressure or draining), then enforce the idle timeout. Works on an
  // O_NONBLOCK socket (never sleeps) and on a blocking one with SO_RCVTIMEO/SO_SNDTIMEO (sleeps
  // at most those). True if something moved.
  bool visit(std::span<char> scratch, SteadyClock::time_point now);

  // Graceful stop: read no more; close once the owed replies are sent.
  void drain();
  void close(std::string_view why);

  [[nodiscard]] bool closed() const noexcept { return state_ == State::closed; }
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }

 private:
  enum class Read { data, eof, again, failed };
  enum class State : std::uint8_t {
    open,       // reading requests
    flushing,   // reading no more (peer half-closed, protocol error, drain): send, then close
    lingering,  // sent an error reply; discard input until the peer closes (bounded)
    closed,
  };

  Read read_some(std::span<char> scratch, SteadyClock::time_point now);
  bool process(const RequestStream::Chunk& chunk);
  bool flush_some();
  void after_output_change(std::size_t old_pending);
  void finish_or_linger(SteadyClock::time_point now);
  bool discard_input(std::span<char> scratch, SteadyClock::time_point now);  // true: moved

  ServerContext& ctx_;
  ThreadStats& stats_;
  StopControl* stop_;
  UniqueFd fd_;
  Endpoint peer_;
  RequestStream stream_;  // its unfinished line and unsent replies
  SteadyClock::time_point last_activity_;
  SteadyClock::time_point linger_until_;
  State state_ = State::open;
  bool paused_ = false;
  bool peer_closed_ = false;
  bool protocol_error_ = false;
  const char* close_reason_ = "";
};

// Stack space each serving thread reads into.
inline constexpr std::size_t kScratchSize = 64 * 1024;

}  // namespace iomux::detail
