#include "protocols/resp/server_info.hpp"
#include "protocols/resp/steady_clock.hpp"

namespace iomux::resp {

ServerInfo::ServerInfo(std::function<std::chrono::milliseconds()> clock)
    : clock_(clock ? std::move(clock) : steady_now), started_(clock_()) {}

std::uint64_t ServerInfo::connect() noexcept {
  connected_.fetch_add(1, std::memory_order_relaxed);
  return next_id_.fetch_add(1, std::memory_order_relaxed);
}

void ServerInfo::disconnect() noexcept {
  connected_.fetch_sub(1, std::memory_order_relaxed);
}

std::int64_t ServerInfo::uptime_seconds() const {
  return (clock_() - started_).count() / 1000;
}

}  // namespace iomux::resp
