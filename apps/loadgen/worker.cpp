// A load thread from start to end: pin, connect (connect.cpp), wait for the coordinator's go,
// then the loop: epoll events, the open loop's schedule, and every 100 ms a tick for what no
// event announces (timeouts, reconnects, giving up, the live numbers for the progress line).
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <time.h>

#include <algorithm>
#include <cerrno>

#include "iomux/loadgen/procfs.hpp"
#include "request_path.hpp"

namespace iomux::loadgen::engine {

void Worker::run() {
  if (share_.cpu >= 0) out.pin_error = pin_to_cpu(0, share_.cpu);
  if (plan_.open_loop) ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);  // wake on time for the schedule
  rbuf_ = std::make_unique<char[]>(kReadBuffer);
  const bool ok = setup();
  shared_.ready.count_down();
  std::int64_t go = 0;
  while ((go = shared_.go.load(std::memory_order_acquire)) == 0) shared_.go.wait(0, std::memory_order_acquire);
  if (ok && go > 0) {
    tl_ = shared_.tl;
    main_loop();
  }
  out.finish = now_ns();
  if (measuring_)
    out.cpu_ns = thread_cpu_ns() - out.cpu_ns;
  else
    out.cpu_ns = 0;
  close_all();
  live_.done.store(true, std::memory_order_release);
}

void Worker::start_load(std::int64_t now) {
  running_ = true;
  last_progress_ = now;
  next_tick_ = now + kTickNs;
  // Events that arrived during setup (a server that wrote or closed early).
  auto early = std::move(setup_events_);
  for (auto [i, ev] : early) on_event(i, ev);
  if (plan_.open_loop) {
    start_schedule();
    return;
  }
  for (std::uint32_t i : active_) {
    if (plan_.churn)
      churn_reconnect(i, now);
    else if (conns_[i].state == kOpen)
      after_progress(i, now);
  }
}

void Worker::main_loop() {
  start_load(now_ns());
  for (;;) {
    std::int64_t now = now_ns();
    if (shared_.should_stop() || now >= tl_.end) break;
    if (!measuring_ && now >= tl_.measure_start) {
      measuring_ = true;
      out.cpu_ns = thread_cpu_ns();
      out.measure_begin = now;
    }
    if (plan_.open_loop && sched_active_) dispatch(now);
    if (!more_to_read_.empty()) {
      auto again = std::move(more_to_read_);
      more_to_read_.clear();
      for (std::uint32_t i : again)
        // Read to EAGAIN (EPOLLRDHUP): a FIN the first event reported must not be missed.
        if (conns_[i].state == kOpen) on_event(i, EPOLLIN | EPOLLRDHUP);
    }
    if (now >= next_tick_) {
      tick(now);
      if (out.gave_up) break;
      next_tick_ = now + kTickNs;
    }
    if (finished(now)) break;
    std::int64_t wake = std::min(next_tick_, tl_.end);
    if (!measuring_) wake = std::min(wake, tl_.measure_start);
    if (plan_.open_loop && sched_active_) wake = std::min(wake, next_time_);
    const int n = wait(more_to_read_.empty() ? wake - now : 0);
    for (int k = 0; k < n; ++k) on_event(static_cast<std::uint32_t>(evs_[k].data.u64), evs_[k].events);
  }
  stopping_ = true;
}

bool Worker::finished(std::int64_t now) const noexcept {
  if (share_.budget == 0 || now < tl_.measure_start) return false;
  if (active_.empty()) return true;  // every connection of this thread failed at setup
  if (plan_.open_loop) return !sched_active_ && inflight_total_ == 0 && backlog_total_ == 0;
  return measured_issued_ >= share_.budget && inflight_total_ == 0 && connecting_ == 0;
}

int Worker::wait(std::int64_t timeout_ns) {
  timeout_ns = std::max<std::int64_t>(0, timeout_ns);
  for (;;) {
    int n;
    if (use_pwait2_) {
      timespec ts{static_cast<time_t>(timeout_ns / kNsPerSec), static_cast<long>(timeout_ns % kNsPerSec)};
      n = ::epoll_pwait2(ep_.get(), evs_, kMaxEvents, &ts, nullptr);
      if (n < 0 && errno == ENOSYS) {
        use_pwait2_ = false;
        continue;
      }
    } else {
      // Millisecond resolution: round up, so a short wait is not a busy loop.
      n = ::epoll_wait(ep_.get(), evs_, kMaxEvents, static_cast<int>((timeout_ns + 999'999) / 1'000'000));
    }
    if (n >= 0) return n;
    return 0;  // a signal (EINTR) or a failure: let the caller re-check the clock and the stop flags
  }
}

void Worker::tick(std::int64_t now) {
  // Timeouts: the oldest request in flight, a connect, queued open-loop requests.
  const std::int64_t limit = now - plan_.timeout_ns;
  const std::uint32_t k = plan_.pipeline;
  for (std::uint32_t i : active_) {
    Conn& c = conns_[i];
    if (c.state == kConnecting) {
      if (c.since < limit) connect_failed(i, now, ETIMEDOUT);
    } else if (c.state == kOpen && c.count > 0 && ts_[static_cast<std::size_t>(i) * k + c.head] < limit) {
      fail(i, Failure::timeout, now);
    }
    if (plan_.open_loop && c.bl_count > 0) expire_backlog(c, limit);
  }
  retry_connects(now);
  // Nothing answered for a long time although something is owed: the server is gone.
  const bool waiting = inflight_total_ > 0 || backlog_total_ > 0 || connecting_ > 0 || !down_.empty();
  if (waiting && now - last_progress_ > plan_.give_up_ns) out.gave_up = true;
  publish_live();
}

// Connections whose connect failed, once their back-off has passed.
void Worker::retry_connects(std::int64_t now) {
  if (down_.empty()) return;
  std::vector<std::uint32_t> still;
  auto list = std::move(down_);
  down_.clear();
  for (std::uint32_t i : list) {
    Conn& c = conns_[i];
    c.retry_listed = false;
    if (c.state != kDown) continue;
    if (c.since > now) {
      c.retry_listed = true;
      still.push_back(i);
      continue;
    }
    if (plan_.churn)
      churn_reconnect(i, now);  // only if a request wants the connection
    else
      start_connect(i, now);
  }
  down_.insert(down_.end(), still.begin(), still.end());
}

void Worker::publish_live() {
  live_.all_completed.store(out.all_completed, std::memory_order_relaxed);
  live_.measured.store(out.measured, std::memory_order_relaxed);
  live_.errors.store(out.timeouts + out.resets + out.mismatches + out.closed, std::memory_order_relaxed);
  if (++ticks_ % 10 == 0) live_.p99_ns.store(out.latency.percentile(99), std::memory_order_relaxed);
}

}  // namespace iomux::loadgen::engine
