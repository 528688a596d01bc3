#include "models/visiting_server.hpp"

#include <algorithm>
#include <array>

#include "iomux/socket.hpp"
#include "server/stats_reporter.hpp"

namespace iomux::detail {

VisitingServer::VisitingServer(ServerOptions options, bool non_blocking, int accept_flags)
    : ctx_(std::move(options)),
      stop_(ctx_.options().drain_timeout),
      listener_(ctx_.open_listener(non_blocking, /*reuse_port=*/false)),
      local_(iomux::local_endpoint(listener_.get())),
      accept_flags_(accept_flags) {}

void VisitingServer::run() {
  StatsReporter reporter(ctx_, [this] { return stats(); });
  AcceptOne accept(ctx_, stats_, accept_flags_);
  std::array<char, kScratchSize> scratch;
  bool draining = false;
  SteadyClock::time_point drain_deadline;
  for (;;) {
    const StopControl::Level level = stop_.level();
    if (level == StopControl::Level::cut) break;
    const auto pass_start = SteadyClock::now();
    if (level == StopControl::Level::draining && !draining) {
      draining = true;
      drain_deadline = pass_start + ctx_.options().drain_timeout;
      close_listener();
      for (auto& s : sessions_) s->drain();
    }
    bool progress = listener_ && accept_burst(accept);
    for (auto& s : sessions_) {
      // A timeout-model visit may wait a whole interval: an immediate stop must not wait for
      // every connection's turn.
      if (stop_.level() == StopControl::Level::cut) break;
      progress = s->visit(scratch, SteadyClock::now()) || progress;
    }
    std::erase_if(sessions_, [](const auto& s) { return s->closed(); });
    if (draining) {
      if (sessions_.empty()) break;
      if (SteadyClock::now() >= drain_deadline) {
        for (auto& s : sessions_) s->close("drain timeout");
        break;
      }
    }
    if (!progress) after_idle_pass(pass_start);
  }
  sessions_.clear();  // each closes with "server stopped"
  close_listener();
}

}  // namespace iomux::detail
