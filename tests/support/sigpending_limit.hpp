// Lowers this process's RLIMIT_SIGPENDING for a scope. With the soft limit at 0 the kernel
// cannot queue one more real-time signal and sends plain SIGIO instead: a real signal queue
// overflow, which the sigio poller must survive by scanning every fd it watches.
#pragma once

#include <gtest/gtest.h>
#include <sys/resource.h>

namespace iomux::test {

class SigpendingLimit {
 public:
  explicit SigpendingLimit(rlim_t soft) {
    EXPECT_EQ(::getrlimit(RLIMIT_SIGPENDING, &saved_), 0);
    rlimit lowered = saved_;
    lowered.rlim_cur = soft;
    EXPECT_EQ(::setrlimit(RLIMIT_SIGPENDING, &lowered), 0);
  }
  ~SigpendingLimit() { ::setrlimit(RLIMIT_SIGPENDING, &saved_); }
  SigpendingLimit(const SigpendingLimit&) = delete;
  SigpendingLimit& operator=(const SigpendingLimit&) = delete;

 private:
  rlimit saved_{};
};

}  // namespace iomux::test
