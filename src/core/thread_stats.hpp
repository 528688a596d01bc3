// The counters one thread of a server writes (a loop, a blocking-model thread). Each counter
// has exactly one writer, so it is bumped with a relaxed load + store: a plain add, no locked
// instruction on the per-request path, yet any thread may read it without a data race.
// Server::stats() sums them into the public StatsSnapshot.
#pragma once

#include <atomic>
#include <cstdint>

#include "iomux/stats.hpp"

namespace iomux::detail {

class Counter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(std::uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
  }
  void set(std::uint64_t n) noexcept { value_.store(n, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// The counters one thread of a server writes.
struct ThreadStats {
  Counter connections_open;
  Counter connections_accepted;
  Counter connections_refused;
  Counter connections_timed_out;
  Counter requests;
  Counter bytes_in;
  Counter bytes_out;
  Counter bytes_pending;
  Counter peak_pending_per_connection;
  Counter connections_paused;
  Counter connections_evicted;
  Counter handler_errors;
  Counter connections_outbound;
  Counter connects_failed;

  [[nodiscard]] StatsSnapshot snapshot() const noexcept;
};

}  // namespace iomux::detail
