// One event loop of the readiness-based server (select, poll, epoll, epoll-et, sigio): its
// listener, its connections and its counters. A ReactorServer runs one per thread. As the
// connections' Executor it lends them the loop's timers, its SendBatch and its mailbox.
#pragma once

#include <memory>
#include <vector>

#include "core/executor.hpp"
#include "core/fd.hpp"
#include "core/send_batch.hpp"
#include "core/server_context.hpp"
#include "core/spare_fd.hpp"
#include "core/thread_stats.hpp"
#include "iomux/server.hpp"
#include "iomux/stats.hpp"
#include "reactor/event_loop.hpp"

namespace iomux::detail::reactor {

class ReactorTransport;

class ReactorLoop final : public Executor, private IoHandler {
 public:
  ReactorLoop(ServerContext& ctx, std::unique_ptr<Poller> poller, UniqueFd listener);
  ~ReactorLoop() override;

  // Loop thread: serves until the loop stops.
  void run();
  // Any thread (Executor::request_stop).
  void stop(StopMode mode) noexcept;

  EventLoop& loop() noexcept { return loop_; }
  const ThreadStats& thread_stats() const noexcept { return stats_; }

  // Executor: the loop's timers.
  TimerId start_timer(Clock::time_point when, std::function<void()> callback) override;
  bool cancel_timer(TimerId id) override;

  // Loop thread: serves an admitted connection (ServerContext::admit).
  void adopt(UniqueFd fd, const Endpoint& peer, std::unique_ptr<Handler> handler);
  // Loop thread: a connection is done; it is destroyed after the current event batch.
  void retire(int fd);

 private:
  // The listener is readable: accepts a burst, admits and adopts each connection.
  void handle_events(std::uint32_t events) override;
  void stop_accepting() override;
  void finish() override;

  ThreadStats stats_;
  SendBatch batch_;
  EventLoop loop_;
  UniqueFd listener_;
  SpareFd spare_;                                               // for EMFILE
  std::vector<std::unique_ptr<ReactorTransport>> connections_;  // indexed by fd
  std::vector<std::unique_ptr<ReactorTransport>> retired_;
};

}  // namespace iomux::detail::reactor
