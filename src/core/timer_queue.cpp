#include "core/timer_queue.hpp"

#include <algorithm>
#include <functional>

namespace iomux::detail {

TimerId TimerQueue::start(Clock::time_point when, std::function<void()> fn) {
  TimerId id = next_id_++;
  callbacks_.emplace(id, std::move(fn));
  heap_.push_back({when, id});
  std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
  return id;
}

bool TimerQueue::cancel(TimerId id) {
  bool erased = callbacks_.erase(id) > 0;
  if (erased) compact_if_needed();
  return erased;
}

void TimerQueue::compact_if_needed() {
  if (heap_.size() < 64 || heap_.size() <= 2 * callbacks_.size()) return;
  std::erase_if(heap_, [&](const Entry& e) { return !callbacks_.contains(e.id); });
  std::make_heap(heap_.begin(), heap_.end(), std::greater<>());
}

void TimerQueue::drop_cancelled_top() {
  while (!heap_.empty() && !callbacks_.contains(heap_.front().id)) {
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
    heap_.pop_back();
  }
}

std::optional<TimerQueue::Clock::time_point> TimerQueue::next_deadline() {
  drop_cancelled_top();
  if (heap_.empty()) return std::nullopt;
  return heap_.front().when;
}

std::size_t TimerQueue::run_expired(Clock::time_point now) {
  std::size_t ran = 0;
  for (;;) {
    drop_cancelled_top();
    if (heap_.empty() || heap_.front().when > now) break;
    TimerId id = heap_.front().id;
    std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
    heap_.pop_back();
    auto node = callbacks_.extract(id);
    node.mapped()();  // may add or cancel timers: the heap is consistent here
    ++ran;
  }
  return ran;
}

}  // namespace iomux::detail
