#include "core/timer_queue.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace iomux::detail {
namespace {

using Clock = TimerQueue::Clock;
using std::chrono::milliseconds;

TEST(TimerQueue, RunsDueTimersEarliestFirst) {
  TimerQueue q;
  auto t0 = Clock::now();
  std::vector<int> order;
  q.start(t0 + milliseconds(30), [&] { order.push_back(3); });
  q.start(t0 + milliseconds(10), [&] { order.push_back(1); });
  q.start(t0 + milliseconds(20), [&] { order.push_back(2); });
  EXPECT_EQ(q.run_expired(t0 + milliseconds(25)), 2u);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_EQ(*q.next_deadline(), t0 + milliseconds(30));
}

TEST(TimerQueue, CancelledTimersNeverRun) {
  TimerQueue q;
  auto t0 = Clock::now();
  bool ran = false;
  TimerId id = q.start(t0, [&] { ran = true; });
  EXPECT_TRUE(q.cancel(id));
  EXPECT_FALSE(q.cancel(id));
  EXPECT_EQ(q.run_expired(t0 + milliseconds(1)), 0u);
  EXPECT_FALSE(ran);
  EXPECT_FALSE(q.next_deadline());
}

TEST(TimerQueue, CallbackMayAddTimers) {
  TimerQueue q;
  auto t0 = Clock::now();
  int runs = 0;
  q.start(t0, [&] {
    ++runs;
    q.start(t0, [&] { ++runs; });
  });
  EXPECT_EQ(q.run_expired(t0), 2u);
  EXPECT_EQ(runs, 2);
}

TEST(TimerQueue, CancellingManyKeepsTheHeapBounded) {
  TimerQueue q;
  auto far = Clock::now() + std::chrono::hours(1);
  for (int i = 0; i < 10000; ++i) q.cancel(q.start(far, [] {}));
  EXPECT_EQ(q.size(), 0u);
  EXPECT_LT(q.heap_size(), 200u);
}

}  // namespace
}  // namespace iomux::detail
