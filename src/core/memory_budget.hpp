// The server-wide bound on what connections hold (--max-memory): unconsumed input plus owed
// output, over all connections and threads. Connections add and subtract what they hold as it
// changes (nothing at all while they hold nothing, so the common request pays nothing).
//
// Like Redis 7's client eviction (maxmemory-clients), it acts on the largest holders:
//   over the soft mark (3/4 of the limit)  holders that made no progress for a second (no
//                                          input delivered, no output taken; two for one
//                                          this budget paused) are closed,
//                                          largest first, until usage is back under it; then
//                                          connections holding at least pause_threshold()
//                                          that grow stop reading, so they cannot grow, until
//                                          usage falls back below it; small holders are still
//                                          served
//   over the limit                         the largest holder is closed (and counted), then the
//                                          next, until usage is under the limit
// Stalled holders go first because a client that makes progress must not wait behind ones
// that never will: six connections each holding a megabyte of an unfinished body would
// otherwise pause every newcomer until their body timeout.
// Each thread acts on its own connections (Executor::budget_pressure): no lock on the request
// path. A thread whose paused connections wait asks the other threads, through their
// mailboxes, to look for stalled holders among theirs (ask_all_to_sweep).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "core/mailbox.hpp"

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

  // Every thread that owns connections enlists its mailbox (Executor's constructor).
  void enlist(const std::shared_ptr<Mailbox>& mailbox) {
    if (!enabled()) return;
    std::lock_guard lock(mutex_);
    std::erase_if(mailboxes_, [](const std::weak_ptr<Mailbox>& m) { return m.expired(); });
    mailboxes_.push_back(mailbox);
  }
  // Any thread: every other enlisted thread evicts its stalled holders while over the soft
  // mark (a Letter::Kind::sweep). Rare: at most every budget check of a thread under pressure.
  void ask_all_to_sweep(const Mailbox* except) {
    std::vector<std::shared_ptr<Mailbox>> live;
    {
      std::lock_guard lock(mutex_);
      for (const auto& m : mailboxes_)
        if (auto p = m.lock(); p && p.get() != except) live.push_back(std::move(p));
    }
    for (const auto& m : live) m->post(Letter{Letter::Kind::sweep, nullptr, {}, 0, {}, {}});
  }

 private:
  std::size_t limit_;
  std::atomic<std::int64_t> used_{0};
  std::mutex mutex_;
  std::vector<std::weak_ptr<Mailbox>> mailboxes_;
};

}  // namespace iomux::detail
