#include "iomux/stats.hpp"

#include "core/thread_stats.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace iomux {
namespace {

std::string human_bytes(std::uint64_t n) {
  if (n < 1024) return fmt::format("{} B", n);
  if (n < 1024 * 1024) return fmt::format("{:.1f} KiB", n / 1024.0);
  if (n < 1024ull * 1024 * 1024) return fmt::format("{:.1f} MiB", n / (1024.0 * 1024));
  return fmt::format("{:.2f} GiB", n / (1024.0 * 1024 * 1024));
}

}  // namespace

StatsSnapshot& StatsSnapshot::operator+=(const StatsSnapshot& o) noexcept {
  connections_open += o.connections_open;
  connections_accepted += o.connections_accepted;
  connections_refused += o.connections_refused;
  connections_timed_out += o.connections_timed_out;
  requests += o.requests;
  bytes_in += o.bytes_in;
  bytes_out += o.bytes_out;
  bytes_pending += o.bytes_pending;
  peak_pending_per_connection = std::max(peak_pending_per_connection, o.peak_pending_per_connection);
  connections_paused += o.connections_paused;
  connections_evicted += o.connections_evicted;
  handler_errors += o.handler_errors;
  connections_outbound += o.connections_outbound;
  connects_failed += o.connects_failed;
  bytes_held = std::max(bytes_held, o.bytes_held);  // one server-wide figure, not per thread
  return *this;
}

std::string StatsSnapshot::summary() const {
  return fmt::format(
      "connections {} open (accepted {}, refused {}, timed out {}), requests {}, bytes in {}, "
      "bytes out {}, pending {} (peak per connection {}), paused {}, held {}, evicted {}, handler errors {}{}",
      connections_open, connections_accepted, connections_refused, connections_timed_out, requests,
      human_bytes(bytes_in), human_bytes(bytes_out), human_bytes(bytes_pending),
      human_bytes(peak_pending_per_connection), connections_paused, human_bytes(bytes_held), connections_evicted,
      handler_errors,
      connections_outbound + connects_failed == 0
          ? std::string()
          : fmt::format(", outbound {} (failed {})", connections_outbound, connects_failed));
}

}  // namespace iomux

namespace iomux::detail {

StatsSnapshot ThreadStats::snapshot() const noexcept {
  StatsSnapshot s;
  s.connections_open = connections_open.get();
  s.connections_accepted = connections_accepted.get();
  s.connections_refused = connections_refused.get();
  s.connections_timed_out = connections_timed_out.get();
  s.requests = requests.get();
  s.bytes_in = bytes_in.get();
  s.bytes_out = bytes_out.get();
  s.bytes_pending = bytes_pending.get();
  s.peak_pending_per_connection = peak_pending_per_connection.get();
  s.connections_paused = connections_paused.get();
  s.connections_evicted = connections_evicted.get();
  s.handler_errors = handler_errors.get();
  s.connections_outbound = connections_outbound.get();
  s.connects_failed = connects_failed.get();
  return s;
}

}  // namespace iomux::detail
