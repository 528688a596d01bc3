// Server counters. Each counter has exactly one writer (the thread that owns the connection
// or the listener), so it is bumped with a relaxed load + store: a plain add, no locked
// instruction on the per-request path, yet any thread may read it without a data race.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace iomux {

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

// A point-in-time copy of a server's counters (summed over its threads).
struct StatsSnapshot {
  std::uint64_t connections_open = 0;
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_refused = 0;    // over --max-connections, fd exhaustion, FD_SETSIZE
  std::uint64_t connections_timed_out = 0;  // closed by --idle-timeout or --send-timeout
  std::uint64_t requests = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t bytes_pending = 0;                // replies owed but not yet taken by the peers
  std::uint64_t peak_pending_per_connection = 0;  // the most any one connection has held
  std::uint64_t connections_paused = 0;           // reading stopped by back-pressure
  std::uint64_t connections_evicted = 0;          // closed to keep the server under --max-memory
  std::uint64_t handler_errors = 0;               // connections closed because their handler threw
  std::uint64_t bytes_held = 0;                   // kept input + owed output, all connections (the budget's view)

  StatsSnapshot& operator+=(const StatsSnapshot& o) noexcept;
  // "connections 3 (accepted 10, refused 0, timed out 0), requests 42, bytes in 1.2 KiB, ..."
  [[nodiscard]] std::string summary() const;
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

  [[nodiscard]] StatsSnapshot snapshot() const noexcept;
};

}  // namespace iomux
