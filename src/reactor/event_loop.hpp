// A single-threaded readiness loop: waits on a Poller, dispatches ready fds to their
// handlers, runs expired timers. (What other threads send a loop goes through the ReactorLoop's
// mailbox, core/mailbox.hpp, which wakes the loop with wake().)
//
// Thread rule: an EventLoop belongs to the thread that calls run(). Every method is "loop
// thread only" except stop() and wake(), which are safe from any thread. Debug builds assert
// it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "core/fd.hpp"
#include "core/timer_queue.hpp"
#include "reactor/poller.hpp"

namespace iomux::detail {

// Something that owns an fd watched by a loop. The loop does not own handlers.
class IoHandler {
 public:
  virtual ~IoHandler() = default;
  virtual void handle_events(std::uint32_t events) = 0;
};

class EventLoop {
 public:
  using Clock = detail::TimerQueue::Clock;

  explicit EventLoop(std::unique_ptr<Poller> poller);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs until stop(). Binds the loop to the calling thread.
  void run();
  // Runs one iteration: wait up to `max_wait`, dispatch, timers. Loop thread only.
  void run_once(std::chrono::milliseconds max_wait);

  // Any thread: makes run() return after the current iteration.
  void stop() noexcept;
  // Any thread: interrupts a blocking wait.
  void wake() noexcept;

  // Loop thread: watch / change / forget an fd. The handler must outlive the watch.
  std::error_code watch(int fd, std::uint32_t interest, IoHandler* handler);
  std::error_code update(int fd, std::uint32_t interest);
  std::error_code unwatch(int fd);
  // unwatch() for an fd another process may share (Poller::remove_shared): a listener.
  std::error_code unwatch_shared(int fd);
  // Loop thread: a watched fd's events go to `handler` from now on (the poller is not told).
  void rebind(int fd, IoHandler* handler);

  // Loop thread: dispatch `events` to fd's handler in the next iteration, without waiting.
  // Edge-triggered code uses it to come back to a socket it stopped draining (for fairness,
  // or after back-pressure lifts): no new edge would ever report it again.
  void inject(int fd, std::uint32_t events);

  // Loop thread: timers (O(log n)). The callback runs on the loop thread.
  TimerId start_timer(Clock::time_point when, std::function<void()> fn);
  bool cancel_timer(TimerId id);

  // Loop thread: runs `hook` at the end of every iteration, after events and timers
  // (e.g. to free connections closed during the iteration, once nothing can refer to them).
  void set_iteration_hook(std::function<void()> hook) { iteration_hook_ = std::move(hook); }

  // The time at the start of this iteration: cheap, and good enough for timeouts. The reference
  // stays valid for the loop's life (the connection core reads the clock through it).
  [[nodiscard]] const Clock::time_point& now() const noexcept { return now_; }
  [[nodiscard]] Poller& poller() noexcept { return *poller_; }
  // poller().edge_triggered(), asked once: the connections consult it on every read.
  [[nodiscard]] bool edge_triggered() const noexcept { return edge_triggered_; }
  [[nodiscard]] bool in_loop_thread() const noexcept;
  [[nodiscard]] bool stopping() const noexcept { return stop_.load(std::memory_order_relaxed); }

  // A scratch area for reads, shared by every connection of this loop (loop thread only): a
  // connection with nothing buffered reads straight into it, so it needs no buffer of its own.
  [[nodiscard]] std::span<char> scratch() noexcept { return {scratch_.get(), kScratchSize}; }

 private:
  class Waker;
  // A handler earlier in this batch may have closed this fd (the event is stale) or an accept
  // may have reused it (the new owner then sees a spurious event and gets EAGAIN).
  void dispatch(const ReadyEvent& ev) {
    if (static_cast<std::size_t>(ev.fd) < handlers_.size()) [[likely]]
      if (IoHandler* h = handlers_[ev.fd]) h->handle_events(ev.events);
  }

  static constexpr std::size_t kScratchSize = 64 * 1024;
  static constexpr std::size_t kMaxEvents = 1024;

  std::unique_ptr<Poller> poller_;
  bool edge_triggered_;
  std::vector<IoHandler*> handlers_;  // indexed by fd
  std::vector<ReadyEvent> ready_;
  std::vector<ReadyEvent> injected_;
  std::vector<ReadyEvent> injected_now_;
  detail::TimerQueue timers_;
  std::function<void()> iteration_hook_;
  Clock::time_point now_;
  std::unique_ptr<char[]> scratch_;

  std::atomic<bool> stop_{false};
  std::atomic<std::thread::id> owner_{};
  std::unique_ptr<Waker> waker_;
};

}  // namespace iomux::detail
