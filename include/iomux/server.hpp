// The one server API every IO model implements.
//
//   iomux::ServerOptions opts;
//   opts.model = "epoll";
//   opts.listeners = {iomux::resolve_one("127.0.0.1:0"), iomux::resolve_one("unix:/tmp/x.sock")};
//   auto server = iomux::make_server(opts, iomux::line_protocol());  // or your HandlerFactory
//                                                // binds now; throws ServerError with the reason
//   std::jthread t([&] { server->run(); });      // serves until stopped
//   ... server->local_endpoint() ...             // the real port when 0 was asked for
//                                                // (local_endpoints(): every listener's)
//   server->stop(iomux::StopMode::graceful);     // from any thread
#pragma once

#include <csignal>

#include <chrono>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "iomux/activation.hpp"
#include "iomux/endpoint.hpp"
#include "iomux/error.hpp"
#include "iomux/handler.hpp"
#include "iomux/log.hpp"
#include "iomux/stats.hpp"

namespace iomux {

struct ServerOptions {
  std::string model = "epoll";
  // Where to listen: one listener per endpoint, TCP (port 0: any free port) or Unix
  // ("unix:/path", "unix:@abstract"), all served alike; Connection::local() says which one a
  // connection came in on. At least one, here or in `inherited`. A Unix listener's socket file
  // is made at start (a stale one a dead server left is replaced; a live server's is not:
  // ServerError) and removed when the server stops accepting.
  std::vector<Endpoint> listeners{Endpoint::loopback_v4(0)};
  // Sockets already listening, served before `listeners` (local_endpoints() lists them first):
  // systemd's socket activation (inherited_listeners() in iomux/activation.hpp reads them from
  // the environment; clear `listeners` to serve on them alone) or any listening stream socket,
  // TCP or Unix. make_server checks each (a socket, SOCK_STREAM, listening: ServerError naming
  // the fd otherwise), makes it close-on-exec and blocking or not as the model needs. It takes
  // them over whether it succeeds or throws: each is closed when the server stops accepting, or
  // at once if make_server fails. Whoever made them keeps what is theirs: a Unix socket's file
  // is never removed, and stopping never shuts the socket down (another process may hold it
  // too: systemd listens on it again once the service is gone). Under `threads` > 1 every loop
  // accepts from the one socket, as from a Unix listener.
  std::vector<InheritedListener> inherited;
  int backlog = 4096;
  // Unix socket files get this mode (e.g. 0660) right after bind; 0 = what the umask leaves.
  unsigned unix_mode = 0;
  // epoll, epoll-et, uring: event loops, one per thread, each with its own SO_REUSEPORT
  // listener on every TCP endpoint; a Unix listener (no SO_REUSEPORT there) is one socket all
  // the loops accept from.
  int threads = 1;
  // Open connections at most; 0 = as many as the fd limit allows. For `threaded` it is also the
  // cap on threads.
  std::size_t max_connections = 0;
  // nonblocking: the back-off after a pass that made no progress; timeout: SO_RCVTIMEO per visit.
  std::chrono::milliseconds poll_interval{1};
  // Pending output per connection above which the server stops reading from it (back-pressure);
  // reading resumes below half of it.
  std::size_t max_pending = 1024 * 1024;
  // Owed output past this bound (at least twice max_pending) is allowed only to a peer that
  // reads: a connection owed more whose peer takes nothing for a second is closed
  // (CloseReason::output_limit). A reply a handler chose to write reaches a reading client
  // whole, whatever its size; what all connections hold together is bounded by max_memory.
  // Reading pauses at max_pending, so only output the connection did not ask for (another
  // client's messages, one large reply) gets here.
  std::size_t max_output = 16 * 1024 * 1024;
  // A peer that takes no byte of owed output for this long is closed (CloseReason::
  // send_timeout), however little is owed: nginx's send_timeout (60 s there too); zero = never.
  // Measured between two successive sends that made progress, not over the whole reply.
  std::chrono::milliseconds send_timeout{60'000};
  // Unconsumed input one connection may keep to start with (Connection::set_max_input).
  std::size_t max_input = 64 * 1024;
  // Deferred replies one connection may have unfilled (Connection::defer).
  std::size_t max_deferred = 1024;
  // Tasks other threads may have queued for one connection (ConnectionHandle::post).
  std::size_t max_posted = 4096;
  // All connections together may hold this many bytes of kept input and owed output; near it
  // the largest holders stop reading, over it the largest is closed. 0 = no bound.
  std::size_t max_memory = std::size_t{1} << 30;
  // Close a connection that sent nothing for this long; zero = never.
  std::chrono::milliseconds idle_timeout{0};
  // Graceful stop: how long to wait for owed replies to drain before closing anyway.
  std::chrono::milliseconds drain_timeout{5000};
  // Log a stats line this often; zero = never.
  std::chrono::milliseconds stats_interval{0};
  // Where logs go; null = a Logger at info level on stderr.
  LoggerPtr logger;
};

enum class StopMode {
  graceful,   // stop accepting, flush owed replies (up to drain_timeout), close, return from run()
  immediate,  // close everything now and return from run()
  // As graceful, once another process serves on duplicates of the listeners
  // (duplicate_listeners(), an upgrade: iomux/upgrade.hpp): no Unix socket file is removed at
  // the end, for it is the successor's now. (No model ever shuts a listener down, which would
  // stop the other process's copy too: closing this process's fd leaves the socket listening.)
  hand_over,
};

class Server {
 public:
  virtual ~Server() = default;

  // Serves until stop() is called. Call once, from one thread; returns when the server is done.
  virtual void run() = 0;

  // Safe from any thread, any number of times (a second graceful stop, or an immediate one,
  // cuts a graceful drain short). Never blocks. NOT async-signal-safe: it takes a mutex and may
  // allocate (a letter in each loop's mailbox; the blocking models' stop control locks too), so
  // a signal handler must not call it: use run_until_signal() below, or a thread of your own
  // that takes the signals with sigwait().
  virtual void stop(StopMode mode = StopMode::graceful) noexcept = 0;

  // Where the server listens (the real port when port 0 was asked for): the first listener's.
  // Safe from any thread.
  [[nodiscard]] Endpoint local_endpoint() const {
    std::vector<Endpoint> all = local_endpoints();
    return all.empty() ? Endpoint() : all.front();
  }
  // Every listener's, in ServerOptions::listeners' order. Safe from any thread.
  [[nodiscard]] virtual std::vector<Endpoint> local_endpoints() const = 0;

  // Duplicates (close-on-exec, the caller's to close) of every listening socket the server
  // accepts on, inherited ones included; under `threads` > 1, each loop's SO_REUSEPORT socket.
  // Each is named: an inherited one by its own name, one the server opened by
  // upgrade_listener_name(i), `i` its place in ServerOptions::listeners (iomux/upgrade.hpp), so
  // that a successor started with the same options knows what not to bind again. Empty once the
  // server has stopped accepting. Safe from any thread. Throws ServerError (dup failed).
  [[nodiscard]] virtual std::vector<InheritedListener> duplicate_listeners() const = 0;

  // Counters summed over the server's threads. Safe from any thread.
  [[nodiscard]] virtual StatsSnapshot stats() const = 0;

  // Any thread, from make_server() on: a handle to each of the server's loops (iomux::Loop in
  // handler.hpp), how a program starts work that belongs to no connection without waiting for
  // a client: a periodic job on each loop, an outbound connection opened from main():
  //   for (const iomux::LoopHandle& h : server->loops())
  //     (void)h.post([](iomux::Loop& l) { l.start_timer(1s, [] { ... }); });
  // Tasks posted before run() run once it starts; after the server stopped, post() answers
  // gone. One per thread on select, poll, epoll, epoll-et, sigio and uring (--threads), the
  // visiting thread of nonblocking and timeout. None on blocking, whose thread runs its loop
  // only while it serves a client (a task would wait for the next one), nor on threaded, whose
  // threads each belong to a connection: there a handler's Connection::loop() is the way.
  [[nodiscard]] virtual std::vector<LoopHandle> loops() { return {}; }

  [[nodiscard]] virtual std::string_view model() const noexcept = 0;
};

// Runs `server` (server.run()) until one of `signals` arrives: the first stops it gracefully,
// a second one at once. No signal handler runs: the signals are blocked in the calling thread,
// which the server's threads (started by run()) inherit, and a thread of this call takes them
// with sigtimedwait(). A thread that already exists and does not block them would be killed
// by the signal instead: one the program started, or one a handler factory started when the
// server was made (resp's expiry thread). So block them (pthread_sigmask) before starting any
// thread, as `iomux serve` does, or call this before any thread exists. `on_signal`, when
// given, is called on that thread before each stop (to log it). When run() returns, signals
// still pending are taken and the calling thread's signal mask is restored. What run() throws
// is rethrown. SIGPIPE is not touched: the library never raises it (its sends use
// MSG_NOSIGNAL).
void run_until_signal(Server& server, std::initializer_list<int> signals = {SIGINT, SIGTERM},
                      std::function<void(int signal, StopMode mode)> on_signal = {});

// Creates the server for options.model, serving every connection with a handler from `factory`,
// and binds its listener(s). Throws ServerError with a message fit for a user: unknown model,
// model unavailable on this kernel (with the reason), bind/listen failure, invalid options.
std::unique_ptr<Server> make_server(ServerOptions options, HandlerFactory factory);

}  // namespace iomux
