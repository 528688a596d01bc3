#include "server/server_context.hpp"

#include <cstring>

#include "iomux/socket.hpp"

namespace iomux::detail {

ServerContext::ServerContext(ServerOptions options)
    : options_(std::move(options)),
      protocol_(options_.protocol),
      logger_(options_.logger ? options_.logger : std::make_shared<Logger>()),
      log_(logger_.get()) {}

UniqueFd ServerContext::open_listener_on(const Endpoint& where, bool non_blocking,
                                         bool reuse_port) const {
  ListenOptions lo;
  lo.backlog = options_.backlog;
  lo.non_blocking = non_blocking;
  lo.reuse_port = reuse_port;
  std::error_code ec;
  UniqueFd fd = listen_tcp(where, lo, ec);
  if (!fd) throw ServerError("cannot listen on " + where.to_string() + ": " + ec.message());
  return fd;
}

bool ServerContext::admit(ThreadStats& stats, const Endpoint& peer) {
  std::size_t max = options_.max_connections;
  std::size_t open = open_.fetch_add(1, std::memory_order_relaxed);
  if (max == 0 || open < max) return true;
  open_.fetch_sub(1, std::memory_order_relaxed);
  refuse(stats, "connection limit reached (--max-connections " + std::to_string(max) + ") for " +
                    peer.to_string());
  return false;
}

void ServerContext::refuse(ThreadStats& stats, std::string_view why) {
  stats.connections_refused.add();
  std::uint64_t suppressed = 0;
  if (!log_->enabled(LogLevel::warn) || !refuse_limiter_.allow(&suppressed)) return;
  if (suppressed)
    log_->warn("refused a connection: {} ({} more refusals not logged)", why, suppressed);
  else
    log_->warn("refused a connection: {}", why);
}

void ServerContext::accept_failed(int err) {
  std::uint64_t suppressed = 0;
  if (!accept_error_limiter_.allow(&suppressed)) return;
  log_->error("accept failed: {}{}", describe_errno(err),
              suppressed ? fmt::format(" ({} more not logged)", suppressed) : std::string());
}

void ServerContext::log_connect(const Endpoint& peer, int fd) const {
  log_->info("connect {} (fd {}, {} open)", peer.to_string(), fd,
             open_.load(std::memory_order_relaxed));
}

void ServerContext::log_disconnect(const Endpoint& peer, std::string_view why,
                                   std::uint64_t requests) const {
  log_->info("disconnect {}: {} ({} requests)", peer.to_string(), why, requests);
}

RequestHook ServerContext::logging_hook(const Endpoint* peer) const noexcept {
  struct Arg {
    const Endpoint* peer;
    Logger* log;
  };
  // The hook must be a plain function pointer; thread_local storage gives it a stable argument
  // per calling thread without allocating per connection.
  thread_local Arg arg;
  arg = {peer, log_};
  return {[](const void* a, std::string_view request) {
            auto* p = static_cast<const Arg*>(a);
            p->log->debug("request from {}: \"{}\"", p->peer->to_string(), escape_bytes(request));
          },
          &arg};
}

std::string describe_errno(int err) {
  switch (err) {
    case ECONNRESET: return "reset by peer";
    case EPIPE: return "peer stopped reading (broken pipe)";
    case ETIMEDOUT: return "timed out";
    default: return std::strerror(err);
  }
}

}  // namespace iomux::detail
