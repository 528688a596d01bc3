// Timers for an event loop or a blocking-model thread: a binary min-heap of deadlines, O(log n) to start and to expire,
// O(1) to cancel (cancelled entries are dropped lazily, and the heap is rebuilt if they ever
// outnumber the live ones, so cancelling never grows memory without bound).
//
// Not thread-safe: it belongs to one event loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

#include "iomux/handler.hpp"  // TimerId

namespace iomux::detail {

class TimerQueue {
 public:
  using Clock = std::chrono::steady_clock;

  TimerId start(Clock::time_point when, std::function<void()> fn);
  // True when the timer was pending (it will not run).
  bool cancel(TimerId id);

  // The earliest live deadline, if any.
  std::optional<Clock::time_point> next_deadline();
  // Runs every timer due at `now`, earliest first. A callback may start or cancel timers.
  std::size_t run_expired(Clock::time_point now);

  [[nodiscard]] std::size_t size() const noexcept { return callbacks_.size(); }
  [[nodiscard]] std::size_t heap_size() const noexcept { return heap_.size(); }

 private:
  struct Entry {
    Clock::time_point when;
    TimerId id;
    bool operator>(const Entry& o) const noexcept { return when != o.when ? when > o.when : id > o.id; }
  };
  void drop_cancelled_top();
  void compact_if_needed();

  std::vector<Entry> heap_;
  std::unordered_map<TimerId, std::function<void()>> callbacks_;
  TimerId next_id_ = 1;
};

}  // namespace iomux::detail
