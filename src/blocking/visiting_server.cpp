#include "blocking/visiting_server.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <system_error>
#include <thread>

#include "core/socket.hpp"
#include "server/stats_reporter.hpp"

namespace iomux::detail::blocking {

VisitingServer::VisitingServer(ServerOptions options, HandlerFactory factory, bool non_blocking, int accept_flags)
    : ctx_(std::move(options), std::move(factory)),
      stop_(ctx_.options().drain_timeout),
      executor_(ctx_, stats_, &stop_, BlockingLoop::Wake::nudge),
      listeners_(ctx_.open_listeners(non_blocking, /*reuse_port=*/false)),
      accept_flags_(accept_flags),
      non_blocking_(non_blocking) {
  ctx_.set_stats_source([this] { return stats(); });
  executor_.set_connector([this](const Endpoint& to, std::unique_ptr<Handler> handler, ConnectOptions options) {
    return connect_out(to, std::move(handler), options);
  });
}

ConnectionCore* VisitingServer::connect_out(const Endpoint& to, std::unique_ptr<Handler> handler,
                                            ConnectOptions options) {
  UniqueFd sock = open_outbound_socket(to, /*non_blocking=*/true);
  const int fd = sock.get();
  BlockingTransport::Outbound out;
  out.timeout = options.timeout;
  out.blocking_after = !non_blocking_;
  if (!non_blocking_) {
    // The timeout model's bounds on every wait, as on an accepted socket (they do not affect
    // the non-blocking connect itself).
    const auto wait = std::max(ctx_.options().poll_interval, std::chrono::milliseconds(1));
    std::error_code ec = set_recv_timeout(fd, wait);
    if (!ec) ec = set_send_timeout(fd, wait);
    if (ec) out.failed = ec.value();
  }
  // A Unix socket connects (or fails) at once; a TCP one fails at once only for a local reason.
  if (out.failed == 0 && ::connect(fd, to.sockaddr_ptr(), to.sockaddr_len()) != 0 && errno != EINPROGRESS)
    out.failed = errno;
  opened_.push_back(std::make_unique<BlockingTransport>(executor_, std::move(sock), to, std::move(handler),
                                                        non_blocking_ ? nullptr : &stop_, out));
  return &opened_.back()->core();
}

StatsSnapshot VisitingServer::stats() const {
  StatsSnapshot s = stats_.snapshot();
  s.bytes_held = ctx_.budget_used();
  return s;
}

void VisitingServer::add_connection(UniqueFd fd, const Endpoint& peer, const Endpoint& local, StopControl* stop) {
  std::unique_ptr<Handler> handler = ctx_.admit(stats_, peer);
  if (!handler) return;
  connections_.push_back(std::make_unique<BlockingTransport>(executor_, std::move(fd), peer, local, std::move(handler),
                                                             stop,
                                                             /*blocking_sends=*/false));
}

void VisitingServer::run() {
  executor_.bind_to_current_thread();
  StatsReporter reporter(ctx_, [this] { return stats(); });
  // As in blocking and threaded: drain_timeout after a graceful stop, the watchdog cuts it
  // short (the level turns `cut`, and the loop ends at its next pass).
  std::jthread watchdog = stop_.start_drain_watchdog(ctx_.log());
  Acceptor acceptor(ctx_, stats_, accept_flags_);
  std::array<char, kScratchSize> scratch;
  bool draining = false;
  for (;;) {
    const StopControl::Level level = stop_.level();
    if (level == StopControl::Level::cut) break;
    const auto pass_start = SteadyClock::now();
    if (level == StopControl::Level::draining && !draining) {
      draining = true;
      close_listeners();
      for (auto& s : connections_) s->drain();
    }
    executor_.run_due();
    bool progress = false;
    for (std::size_t i = 0; i < listeners_.size() && !stop_.requested(); ++i)
      progress = accept_burst(acceptor, *listeners_[i], ctx_.listening_on()[i]) || progress;
    for (auto& s : connections_) {
      // A timeout-model visit may wait a whole interval: an immediate stop must not wait for
      // every connection's turn.
      if (stop_.cut()) break;
      progress = s->visit(scratch) || progress;
    }
    if (!opened_.empty()) {
      for (auto& s : opened_) {
        if (draining) s->drain();  // opened during the drain: as the others were
        connections_.push_back(std::move(s));
      }
      opened_.clear();
      progress = true;
    }
    std::erase_if(connections_, [](const auto& s) { return s->is_closed(); });
    if (draining && connections_.empty()) break;
    if (!progress && !executor_.mailbox()->maybe_nonempty()) after_idle_pass(pass_start);
  }
  for (auto& s : opened_) connections_.push_back(std::move(s));
  opened_.clear();
  for (auto& s : connections_) s->close(draining ? "drain timeout" : "server stopped");
  connections_.clear();
  executor_.close_mailbox();
  close_listeners();
}

}  // namespace iomux::detail::blocking
