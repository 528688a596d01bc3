// What INFO, HELLO and CLIENT report about the server as a whole, shared by every connection:
// client ids and counts, commands processed, uptime, and the port if the server tells it.
//
// Thread rule: every method is safe from any thread (relaxed atomics: these are statistics).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string_view>

namespace iomux::resp {

class ServerInfo {
 public:
  // The Redis version reported to clients (INFO, HELLO): the one whose behaviour this core
  // follows, so that clients choose the commands and replies it has.
  static constexpr std::string_view kRedisVersion = "7.0.15";

  // `clock`: milliseconds of a monotonic clock for uptime; empty: std::chrono::steady_clock.
  explicit ServerInfo(std::function<std::chrono::milliseconds()> clock = {});

  // A session calls these when its connection opens and closes; connect() returns its id.
  std::uint64_t connect() noexcept;
  void disconnect() noexcept;
  void count_commands(std::uint64_t commands) noexcept { commands_.fetch_add(commands, std::memory_order_relaxed); }

  [[nodiscard]] std::int64_t connected_clients() const noexcept { return connected_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t total_connections() const noexcept {
    return next_id_.load(std::memory_order_relaxed) - 1;
  }
  [[nodiscard]] std::uint64_t total_commands() const noexcept { return commands_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::int64_t uptime_seconds() const;

  // The listening port, for INFO's tcp_port (0 until a server sets it).
  void set_tcp_port(int port) noexcept { tcp_port_.store(port, std::memory_order_relaxed); }
  [[nodiscard]] int tcp_port() const noexcept { return tcp_port_.load(std::memory_order_relaxed); }

 private:
  std::function<std::chrono::milliseconds()> clock_;
  std::chrono::milliseconds started_;
  std::atomic<std::uint64_t> next_id_{1};
  std::atomic<std::int64_t> connected_{0};
  std::atomic<std::uint64_t> commands_{0};
  std::atomic<int> tcp_port_{0};
};

}  // namespace iomux::resp
