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

#include "core/fd.hpp"
#include "core/memory_budget.hpp"
#include "core/thread_stats.hpp"
#include "iomux/endpoint.hpp"
#include "iomux/handler.hpp"
#include "iomux/log.hpp"
#include "iomux/server.hpp"
#include "iomux/stats.hpp"

namespace iomux::detail {

class ServerContext {
 public:
  ServerContext(ServerOptions options, HandlerFactory factory);

  const ServerOptions& options() const noexcept { return options_; }
  Logger& log() const noexcept { return *logger_; }
  MemoryBudget& budget() noexcept { return budget_; }
  std::size_t budget_used() const noexcept { return budget_.used(); }

  // A handler for a new connection, from the user's factory. Throws what the factory throws,
  // or ServerError when it returns none.
  std::unique_ptr<Handler> make_handler() const;

  // The server's counters (Server::stats()), for Connection::server_stats(); set by the server.
  void set_stats_source(std::function<StatsSnapshot()> source) { stats_source_ = std::move(source); }
  StatsSnapshot server_stats() const { return stats_source_ ? stats_source_() : StatsSnapshot{}; }

  // Opens a listener on options().listen; throws ServerError with the reason.
  UniqueFd open_listener(bool non_blocking, bool reuse_port) const {
    return open_listener_on(options_.listen, non_blocking, reuse_port);
  }
  UniqueFd open_listener_on(const Endpoint& where, bool non_blocking, bool reuse_port) const;

  // Connection accounting across all threads of the server. admit() is false (and counts and
  // logs a refusal, rate-limited) when --max-connections is reached.
  bool admit(ThreadStats& stats, const Endpoint& peer);
  void release() noexcept { open_.fetch_sub(1, std::memory_order_relaxed); }

  // A refusal for another reason (FD_SETSIZE, out of fds), counted and logged rate-limited.
  void refuse(ThreadStats& stats, std::string_view why);
  // Accept failed with errno `err` (EMFILE, ENOBUFS, ...): rate-limited log.
  void accept_failed(int err);
  // A connection was evicted by the memory budget: rate-limited log.
  void log_eviction(const Endpoint& peer, std::size_t held);

  void log_connect(const Endpoint& peer, int fd) const;
  void log_disconnect(const Endpoint& peer, std::string_view why, std::uint64_t requests) const;

 private:
  ServerOptions options_;
  HandlerFactory factory_;
  LoggerPtr logger_;
  std::atomic<std::size_t> open_{0};
  RateLimiter refuse_limiter_;
  RateLimiter accept_error_limiter_;
  RateLimiter eviction_limiter_;
  MemoryBudget budget_;
  std::function<StatsSnapshot()> stats_source_;
};

// Why a connection ended, for the disconnect log line.
std::string describe_errno(int err);

}  // namespace iomux::detail
