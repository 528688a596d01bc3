#include "blocking/stop_control.hpp"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <system_error>

#include "iomux/error.hpp"

namespace iomux::detail::blocking {

void StopControl::request(StopMode mode) noexcept {
  try {
    std::lock_guard lock(mutex_);
    // A second graceful stop (or hand-over) cuts the drain short, as an immediate one does
    // (Server::stop).
    const Level now = level_.load(std::memory_order_relaxed);
    const Level want = mode == StopMode::immediate || now == Level::draining ? Level::cut : Level::draining;
    if (now >= want) return;
    if (mode == StopMode::hand_over) handing_over_.store(true, std::memory_order_release);
    level_.store(want, std::memory_order_release);
    ++generation_;
    for (const int fd : watched_) apply_locked(fd);
    signal_stop_fd();
    cv_.notify_all();
  } catch (...) {
    // The mutex failed (it does not, short of a corrupted process): at least raise the flag,
    // which every loop checks between blocking calls.
    level_.store(Level::cut, std::memory_order_release);
  }
}

void StopControl::apply_locked(int fd) const noexcept {
  switch (level_.load(std::memory_order_relaxed)) {
    case Level::running:
      return;
    case Level::draining:
      if (!handing_over_.load(std::memory_order_relaxed)) ::shutdown(fd, SHUT_RD);
      return;
    case Level::cut:
      ::shutdown(fd, SHUT_RDWR);
      return;
  }
}

int StopControl::stop_fd() {
  std::lock_guard lock(mutex_);
  if (!stop_fd_) {
    stop_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!stop_fd_)
      throw ServerError("cannot make an eventfd to stop on: " +
                        std::error_code(errno, std::generic_category()).message());
    if (level_.load(std::memory_order_relaxed) != Level::running) signal_stop_fd();
  }
  return stop_fd_.get();
}

void StopControl::signal_stop_fd() const noexcept {
  if (!stop_fd_) return;
  const std::uint64_t one = 1;
  // Only EAGAIN can fail it (the counter is full): then it is readable already.
  [[maybe_unused]] const ssize_t n = ::write(stop_fd_.get(), &one, sizeof one);
}

void StopControl::watch(int fd) {
  std::lock_guard lock(mutex_);
  watched_.insert(fd);
  apply_locked(fd);
}

void StopControl::unwatch(int fd) noexcept {
  std::lock_guard lock(mutex_);
  watched_.erase(fd);
}

void StopControl::sleep_for(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  const std::uint64_t seen = generation_;
  cv_.wait_for(lock, d, [&] { return generation_ != seen; });
}

void StopControl::nudge() noexcept {
  std::lock_guard lock(mutex_);
  ++generation_;
  cv_.notify_all();
}

std::jthread StopControl::start_drain_watchdog(Logger& log) {
  return std::jthread([this, &log](std::stop_token done) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait(lock, done, [&] { return level_.load() != Level::running; })) return;
    if (cv_.wait_for(lock, done, drain_timeout_, [&] { return level_.load() == Level::cut; })) return;
    if (done.stop_requested()) return;
    log.warn("drain timeout ({} ms): closing the connections still open", drain_timeout_.count());
    level_.store(Level::cut, std::memory_order_release);
    ++generation_;
    for (const int fd : watched_) apply_locked(fd);
    cv_.notify_all();
  });
}

}  // namespace iomux::detail::blocking
