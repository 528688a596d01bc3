// Ctrl-C / SIGTERM for the long-running commands (bench, shootout): while an InterruptGuard
// lives, either signal only raises a flag that the run polls, so the run can stop early and
// still report what it measured. The previous handlers come back when the guard goes.
#pragma once

#include <csignal>

#include <atomic>

namespace iomux::cli {

class InterruptGuard {
 public:
  InterruptGuard() noexcept {
    flag().store(false);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  ~InterruptGuard() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

  // Raised by the signal; what the run's cancel hook points at.
  static std::atomic<bool>& flag() noexcept {
    static std::atomic<bool> interrupted{false};
    return interrupted;
  }

 private:
  static void on_signal(int) noexcept { flag().store(true); }

  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

}  // namespace iomux::cli
