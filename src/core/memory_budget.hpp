// The server-wide bound on what connections hold (--max-memory): unconsumed input plus owed
// output, over all connections and threads. Connections add and subtract what they hold as it
// changes (nothing at all while they hold nothing, so the common request pays nothing).
//
// Like Redis 7's client eviction (maxmemory-clients), it acts on the largest holders:
//   over the soft mark (3/4 of the limit)  connections holding at least pause_threshold() stop
//                                          reading, so they cannot grow, until usage falls
//                                          back below it; small holders are still served
//   over the limit                         the largest holder is closed (and counted), then the
//                                          next, until usage is under the limit
// Each thread acts on its own connections (Executor::budget_pressure): no lock is shared.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace iomux::detail {

class MemoryBudget {
 public:
  // limit 0: no budget.
  explicit MemoryBudget(std::size_t limit) noexcept : limit_(limit) {}

  void add(std::int64_t delta) noexcept { used_.fetch_add(delta, std::memory_order_relaxed); }
  [[nodiscard]] std::size_t used() const noexcept {
    const std::int64_t u = used_.load(std::memory_order_relaxed);
    return u > 0 ? static_cast<std::size_t>(u) : 0;
  }
  [[nodiscard]] std::size_t limit() const noexcept { return limit_; }
  [[nodiscard]] bool enabled() const noexcept { return limit_ > 0; }
  [[nodiscard]] std::size_t soft_limit() const noexcept { return limit_ / 4 * 3; }
  [[nodiscard]] bool over_soft() const noexcept { return enabled() && used() >= soft_limit(); }
  [[nodiscard]] bool over_limit() const noexcept { return enabled() && used() > limit_; }
  // Connections holding at least this much stop reading over the soft mark: 1/4096 of the
  // budget, between 4 KiB and 1 MiB (16 KiB for a 64 MiB budget), so a client with a request
  // in hand or a reply in flight keeps being served.
  [[nodiscard]] std::size_t pause_threshold() const noexcept {
    return std::clamp<std::size_t>(limit_ / 4096, 4 * 1024, 1024 * 1024);
  }

 private:
  std::size_t limit_;
  std::atomic<std::int64_t> used_{0};
};

}  // namespace iomux::detail
