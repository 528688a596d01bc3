// The load generator's time: CLOCK_MONOTONIC nanoseconds in an int64 (what the workers stamp
// requests with and the coordinator schedules by), and a thread's own CPU time.
#pragma once

#include <sys/resource.h>
#include <time.h>

#include <cmath>
#include <cstdint>

namespace iomux::loadgen::engine {

inline constexpr std::int64_t kNsPerSec = 1'000'000'000;
inline constexpr std::int64_t kNever = INT64_MAX;

inline std::int64_t now_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * kNsPerSec + ts.tv_nsec;
}

// Seconds from the options as nanoseconds: 0 for "none", and far but finite for huge values,
// so that adding two of them to a timestamp cannot overflow.
inline std::int64_t seconds_to_ns(double s) noexcept {
  if (!(s > 0)) return 0;
  if (s > 1e9) return kNever / 4;
  return static_cast<std::int64_t>(std::llround(s * 1e9));
}

// User + system CPU of the calling thread.
inline std::int64_t thread_cpu_ns() noexcept {
  rusage ru{};
  if (::getrusage(RUSAGE_THREAD, &ru) != 0) return 0;
  auto tv = [](const timeval& t) { return static_cast<std::int64_t>(t.tv_sec) * kNsPerSec + t.tv_usec * 1000; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

}  // namespace iomux::loadgen::engine
