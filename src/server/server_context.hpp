// What every model's server shares: the options, the protocol core, the logger, the
// connection limit, and the small helpers that make all models log and refuse alike.
#pragma once

#include <atomic>
#include <cstddef>
#include <string>
#include <string_view>

#include "iomux/endpoint.hpp"
#include "iomux/fd.hpp"
#include "iomux/log.hpp"
#include "iomux/protocol.hpp"
#include "iomux/reply_batch.hpp"
#include "iomux/server.hpp"
#include "iomux/stats.hpp"

namespace iomux::detail {

class ServerContext {
 public:
  explicit ServerContext(ServerOptions options);

  const ServerOptions& options() const noexcept { return options_; }
  const Protocol& protocol() const noexcept { return protocol_; }
  Logger& log() const noexcept { return *logger_; }
  bool log_requests() const noexcept { return log_->enabled(LogLevel::debug); }

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

  void log_connect(const Endpoint& peer, int fd) const;
  void log_disconnect(const Endpoint& peer, std::string_view why, std::uint64_t requests) const;
  // A hook for ReplyBatch that logs each request of `peer` at debug level, escaped.
  // Inline: asked once per read, and almost always the answer is "none".
  RequestHook request_hook(const Endpoint* peer) const noexcept {
    return log_requests() ? logging_hook(peer) : RequestHook{};
  }

 private:
  RequestHook logging_hook(const Endpoint* peer) const noexcept;
  ServerOptions options_;
  Protocol protocol_;
  LoggerPtr logger_;
  Logger* log_;
  std::atomic<std::size_t> open_{0};
  RateLimiter refuse_limiter_;
  RateLimiter accept_error_limiter_;
};

// Why a connection ended, for the disconnect log line.
std::string describe_errno(int err);

}  // namespace iomux::detail
