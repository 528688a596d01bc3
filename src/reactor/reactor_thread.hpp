// One event loop of the readiness-based server (select, poll, epoll, epoll-et, sigio): its
// listener, its connections and its counters. A ReactorServer runs one per thread.
#pragma once

#include <memory>
#include <vector>

#include "iomux/event_loop.hpp"
#include "iomux/fd.hpp"
#include "iomux/server.hpp"
#include "iomux/stats.hpp"
#include "reactor/acceptor.hpp"
#include "server/server_context.hpp"

namespace iomux::detail {

class Connection;

class ReactorThread {
 public:
  ReactorThread(ServerContext& ctx, PollerKind kind, UniqueFd listener);
  ~ReactorThread();

  // Loop thread: serves until the loop stops.
  void run();
  // Any thread.
  void stop(StopMode mode) noexcept;

  EventLoop& loop() noexcept { return loop_; }
  ServerContext& context() noexcept { return ctx_; }
  ThreadStats& stats() noexcept { return stats_; }
  const ThreadStats& stats() const noexcept { return stats_; }
  bool draining() const noexcept { return draining_; }

  // Loop thread: takes a freshly accepted socket.
  void adopt(UniqueFd fd, const Endpoint& peer);
  // Loop thread: a connection is done; it is destroyed after the current event batch.
  void retire(int fd);

 private:
  void begin_drain();
  void close_all(std::string_view why);
  void maybe_finish_drain();

  ServerContext& ctx_;
  EventLoop loop_;
  ThreadStats stats_;
  Acceptor acceptor_;
  std::vector<std::unique_ptr<Connection>> connections_;  // indexed by fd
  std::vector<std::unique_ptr<Connection>> retired_;
  std::size_t live_ = 0;
  bool draining_ = false;
  TimerId reaper_ = kNoTimer;
};

}  // namespace iomux::detail
