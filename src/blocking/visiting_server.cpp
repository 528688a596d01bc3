#include "blocking/visiting_server.hpp"

#include <algorithm>
#include <array>
#include <thread>

#include "core/socket.hpp"
#include "server/stats_reporter.hpp"

namespace iomux::detail::blocking {

VisitingServer::VisitingServer(ServerOptions options, HandlerFactory factory, bool non_blocking, int accept_flags)
    : ctx_(std::move(options), std::move(factory)),
      stop_(ctx_.options().drain_timeout),
      executor_(ctx_, stats_, &stop_, BlockingLoop::Wake::nudge),
      listeners_(ctx_.open_listeners(non_blocking, /*reuse_port=*/false)),
      accept_flags_(accept_flags) {
  ctx_.set_stats_source([this] { return stats(); });
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
    std::erase_if(connections_, [](const auto& s) { return s->is_closed(); });
    if (draining && connections_.empty()) break;
    if (!progress && !executor_.mailbox()->maybe_nonempty()) after_idle_pass(pass_start);
  }
  for (auto& s : connections_) s->close(draining ? "drain timeout" : "server stopped");
  connections_.clear();
  executor_.close_mailbox();
  close_listeners();
}

}  // namespace iomux::detail::blocking
