// Stopping a server whose threads sleep in poll(), recv() or send(). stop() shuts the client
// sockets down, which on Linux wakes those calls: SHUT_RD makes a blocked recv() return 0,
// SHUT_WR makes a blocked send() fail with EPIPE. Listeners are never shut down (another
// process may hold the same socket: socket activation, an upgrade's successor, and a shutdown
// would stop its copy too): a thread waiting for connections polls stop_fd() with them.
// Client sockets are registered here and unregistered before they are closed, both
// under one mutex, so stop() never shuts down an fd number that was closed and reused.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "core/fd.hpp"
#include "iomux/log.hpp"
#include "iomux/server.hpp"

namespace iomux::detail::blocking {

class StopControl {
 public:
  enum class Level { running, draining, cut };

  explicit StopControl(std::chrono::milliseconds drain_timeout) noexcept : drain_timeout_(drain_timeout) {}

  // Any thread; holds the mutex only to shut the registered sockets down. A second graceful
  // request cuts the drain short, as Server::stop says; any request after a cut changes nothing.
  void request(StopMode mode) noexcept;
  [[nodiscard]] Level level() const noexcept { return level_.load(std::memory_order_acquire); }
  [[nodiscard]] bool requested() const noexcept { return level() != Level::running; }
  [[nodiscard]] bool cut() const noexcept { return level() == Level::cut; }
  // The stop is a hand-over (StopMode::hand_over: another process serves on the listeners):
  // the client sockets are not shut down, so each thread serves its client until the handler
  // ends the connection in its drain (Handler::on_server_drain, as on the event loops), the
  // client leaves, or the drain timeout cuts it. A shutdown would lose what is on its way: a
  // client that has just connected has its request in flight.
  [[nodiscard]] bool handing_over() const noexcept { return handing_over_.load(std::memory_order_acquire); }

  // Any thread. A client socket gets SHUT_RD on a graceful stop (its thread finishes the
  // request in hand, then sees EOF) and SHUT_RDWR when cut. A stop requested earlier applies
  // at once.
  void watch(int fd);
  void unwatch(int fd) noexcept;

  // An fd that turns readable, and stays so, once a stop is requested (an eventfd), for a thread
  // that sleeps in poll(2) on the listeners, which are never shut down. Made by the first call,
  // before the server's threads start.
  // Throws ServerError.
  int stop_fd();

  // Sleeps up to `d`; returns early when stop is requested (or escalated), or nudge() is called.
  void sleep_for(std::chrono::milliseconds d);
  // Any thread: ends a sleep_for() early (mail arrived for the sleeping thread).
  void nudge() noexcept;

  // For models whose threads may sleep in a blocking send() to a client that does not read:
  // after a graceful stop this thread waits drain_timeout, then cuts every watched socket.
  // It ends when the returned jthread is destroyed (at the end of run()).
  [[nodiscard]] std::jthread start_drain_watchdog(Logger& log);

 private:
  void apply_locked(int fd) const noexcept;
  // Wakes a poll on stop_fd().
  void signal_stop_fd() const noexcept;

  std::chrono::milliseconds drain_timeout_;
  std::atomic<Level> level_{Level::running};
  std::atomic<bool> handing_over_{false};
  mutable std::mutex mutex_;
  std::condition_variable_any cv_;
  std::uint64_t generation_ = 0;     // bumped by each request() and nudge(), for sleep_for()
  std::unordered_set<int> watched_;  // client sockets
  UniqueFd stop_fd_;                 // stop_fd(): -1 until asked for
};

}  // namespace iomux::detail::blocking
