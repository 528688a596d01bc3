// A server's counters, as Server::stats() and Connection::server_stats() report them.
#pragma once

#include <cstdint>
#include <string>

namespace iomux {

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
  // Outbound connections (Loop::connect): established (they count in connections_open too,
  // not in connections_accepted), and those that never were (connect_failed, connect_timeout).
  std::uint64_t connections_outbound = 0;
  std::uint64_t connects_failed = 0;
  std::uint64_t bytes_held = 0;  // kept input + owed output, all connections (the budget's view)

  StatsSnapshot& operator+=(const StatsSnapshot& o) noexcept;
  // "connections 3 (accepted 10, refused 0, timed out 0), requests 42, bytes in 1.2 KiB, ..."
  [[nodiscard]] std::string summary() const;
};

}  // namespace iomux
