// Logs a stats line every --stats-interval while a server runs (a thread of its own, so it
// works the same for every model, blocking ones included). Does nothing when the interval is 0.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "core/server_context.hpp"

namespace iomux::detail {

class StatsReporter {
 public:
  StatsReporter(const ServerContext& ctx, std::function<StatsSnapshot()> snapshot) {
    const auto interval = ctx.options().stats_interval;
    if (interval.count() <= 0) return;
    thread_ = std::jthread([&ctx, interval, snapshot = std::move(snapshot)](std::stop_token stop) {
      std::mutex m;
      std::condition_variable_any cv;
      std::unique_lock lock(m);
      for (;;) {
        cv.wait_for(lock, stop, interval, [] { return false; });
        if (stop.stop_requested()) return;
        ctx.log().info("stats: {}", snapshot().summary());
      }
    });
  }

 private:
  std::jthread thread_;
};

}  // namespace iomux::detail
