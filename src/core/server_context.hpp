// What every model's server shares: the options, the handler factory, the logger, the
// connection limit, the memory budget, and the small helpers that make all models log and
// refuse alike.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/fd.hpp"
#include "core/listener.hpp"
#include "core/memory_budget.hpp"
#include "core/spare_fd.hpp"
#include "core/thread_stats.hpp"
#include "iomux/endpoint.hpp"
#include "iomux/handler.hpp"
#include "iomux/log.hpp"
#include "iomux/server.hpp"
#include "iomux/stats.hpp"

namespace iomux::detail {

// What a failed accept4() means. Every engine acts on these, not on errno values.
enum class AcceptFailure : std::uint8_t {
  none_waiting,     // EAGAIN: nothing queued (a blocking listener: its SO_RCVTIMEO passed)
  retry,            // EINTR, ECONNABORTED, EPROTO: that connection is gone; accept the next now
  listener_closed,  // EINVAL: stop() shut the listener down
  out_of_fds,       // EMFILE, ENFILE: counted as a refusal; a waiting connection was shed
  transient,        // ENOBUFS, ENOMEM, anything else: logged; try again later, not at once
};

class ServerContext {
 public:
  ServerContext(ServerOptions options, HandlerFactory factory);

  const ServerOptions& options() const noexcept { return options_; }
  Logger& log() const noexcept { return *logger_; }
  MemoryBudget& budget() noexcept { return budget_; }
  std::size_t budget_used() const noexcept { return budget_.used(); }

  // The server's counters (Server::stats()), for Connection::server_stats(); set by the server.
  void set_stats_source(std::function<StatsSnapshot()> source) { stats_source_ = std::move(source); }
  StatsSnapshot server_stats() const { return stats_source_ ? stats_source_() : StatsSnapshot{}; }

  // The inherited listeners (options().inherited, taken over by the constructor), then one for
  // each of options().listeners, in order: an inherited one named upgrade_listener_name(i)
  // (iomux/upgrade.hpp: an upgrade's predecessor opened it for the same listener) is listener
  // i, else one is opened. Records where they listen (listening_on()). Every listener is made
  // O_NONBLOCK or blocking as `non_blocking` says (an inherited one may come either way).
  // `reuse_port` applies to TCP ones this opens only. `loops`: how many event loops will
  // accept (listener_for_another_loop); several sockets handed over for one listener are
  // spread over them. Call once. Throws ServerError with the reason (the listeners opened
  // before the failing one close, their socket files removed; the inherited ones close too).
  std::vector<SharedListener> open_listeners(bool non_blocking, bool reuse_port, int loops = 1);
  // For event loop `loop` (1 .. threads-1, --threads): one of the sockets handed over for the
  // same listener as `first`, when there were several; else a TCP listener of its own on the
  // port `first` got (SO_REUSEPORT); a Unix or an inherited one is `first` itself, shared.
  SharedListener listener_for_another_loop(const SharedListener& first, int loop) const;
  // Server::duplicate_listeners(): every listener still open, duplicated and named.
  std::vector<InheritedListener> duplicate_listeners() const;
  // StopMode::hand_over: another process serves on the listeners now; their socket files stay.
  void hand_over_listeners() noexcept { registry_->handed_over.store(true, std::memory_order_release); }
  bool listeners_handed_over() const noexcept { return registry_->handed_over.load(std::memory_order_acquire); }
  // Where the listeners listen (the real ports), in open_listeners()' order. Set once, by
  // the server's constructor, before any other thread exists.
  const std::vector<Endpoint>& listening_on() const noexcept { return listening_; }
  // "127.0.0.1:7890, unix:/run/x.sock", for the "listening on" log line (the first is the one
  // `iomux bench --spawn` reads).
  std::string listening_description() const;

  // ---- Admission, the same on every engine, counted here and nowhere else.

  // An accepted connection is served if it fits under max_connections and the user's factory
  // makes it a handler; then it counts as accepted. Otherwise it is refused: counted, logged
  // (rate-limited), and null is returned (the caller closes the socket). The factory runs on
  // the calling thread, which must be the one that will serve the connection.
  std::unique_ptr<Handler> admit(ThreadStats& stats, const Endpoint& peer);
  // admit() in two halves, for an engine that serves the connection on another thread than the
  // one that accepts it (threaded): the place under max_connections on the accepting thread,
  // the handler on the serving one (which releases the place if the factory fails).
  bool reserve(ThreadStats& stats, const Endpoint& peer);
  std::unique_ptr<Handler> handler_for(ThreadStats& stats, const Endpoint& peer);
  // An admitted connection closed (ConnectionCore::close), or a reserved place was not used.
  void release() noexcept { open_.fetch_sub(1, std::memory_order_relaxed); }
  // A refusal for an engine's own reason (FD_SETSIZE, a socket option that cannot be set):
  // counted and logged, rate-limited.
  void refuse(ThreadStats& stats, std::string_view why);

  // accept4() on `listener` failed with errno `err`: what it means, the same on every engine,
  // logged (rate-limited) and counted here. Out of fds, `spare` sheds the connection at the
  // head of the queue (its client sees a clean close) and *shed_more says whether it can do so
  // again (the reserve fd came back).
  AcceptFailure accept_failed(int err, int listener, SpareFd& spare, ThreadStats& stats, bool* shed_more = nullptr);
  // A connection was evicted by the memory budget: rate-limited log.
  void log_eviction(const Endpoint& peer, std::size_t held);

  // `local`: the listener it came in on, named when the server has several.
  void log_connect(const Endpoint& peer, const Endpoint& local, int fd) const;
  // An outbound connection (Loop::connect) was established, or was not (`why`).
  void log_outbound(const Endpoint& peer, const Endpoint& local, int fd) const;
  void log_connect_failed(const Endpoint& peer, std::string_view why);
  void log_disconnect(const Endpoint& peer, const Endpoint& local, std::string_view why, std::uint64_t requests) const;

 private:
  std::unique_ptr<Handler> make_handler() const;
  void log_accept_error(int err);

  SharedListener open_listener_on(const Endpoint& where, bool non_blocking, bool reuse_port) const;

  // First, so the fds are owned (and closed on any failure) before anything else may throw.
  std::vector<UniqueFd> inherited_fds_;
  std::size_t inherited_count_ = 0;
  ServerOptions options_;
  std::vector<Endpoint> listening_;
  HandlerFactory factory_;
  LoggerPtr logger_;
  std::atomic<std::size_t> open_{0};
  RateLimiter refuse_limiter_;
  RateLimiter accept_error_limiter_;
  RateLimiter eviction_limiter_;
  RateLimiter connect_failure_limiter_;
  MemoryBudget budget_;
  std::function<StatsSnapshot()> stats_source_;
  std::shared_ptr<ListenerRegistry> registry_ = std::make_shared<ListenerRegistry>();
  // The inherited listeners a service manager gave (not an upgrade's): their fds and names,
  // in listening_on()'s order (they come first).
  std::vector<int> manager_fds_;
  std::vector<std::string> manager_names_;
  // Endpoint index -> the sockets handed over for it, when more than one (one per loop).
  std::unordered_map<std::size_t, std::vector<SharedListener>> groups_;
};

// Closes the fds of ServerOptions::inherited: what make_server does with them when it fails
// before a ServerContext took them over.
void close_inherited(const std::vector<InheritedListener>& inherited) noexcept;

// Why a connection ended, for the disconnect log line.
std::string describe_errno(int err);

}  // namespace iomux::detail
