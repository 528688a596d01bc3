// One event loop of the readiness-based server (select, poll, epoll, epoll-et, sigio): its
// listeners, its connections and its counters. A ReactorServer runs one per thread. As the
// connections' Executor it lends them the loop's timers, its SendBatch and its mailbox.
#pragma once

#include <memory>
#include <vector>

#include "core/executor.hpp"
#include "core/fd.hpp"
#include "core/listener.hpp"
#include "core/send_batch.hpp"
#include "core/server_context.hpp"
#include "core/spare_fd.hpp"
#include "core/thread_stats.hpp"
#include "iomux/server.hpp"
#include "iomux/stats.hpp"
#include "reactor/event_loop.hpp"

namespace iomux::detail::reactor {

class ReactorTransport;

class ReactorLoop final : public Executor {
 public:
  // `listeners` in ServerOptions::listeners' order (ServerContext::listening_on()'s).
  ReactorLoop(ServerContext& ctx, std::unique_ptr<Poller> poller, std::vector<SharedListener> listeners);
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
  // Executor: Loop::connect, a non-blocking connect() watched by this loop.
  ConnectionCore* connect_out(const Endpoint& to, std::unique_ptr<Handler> handler, ConnectOptions options) override;

  // Loop thread: serves an admitted connection (ServerContext::admit) that came in on the
  // listener whose endpoint is `local`.
  void adopt(UniqueFd fd, const Endpoint& peer, const Endpoint& local, std::unique_ptr<Handler> handler);
  // Loop thread: a connection is done; it is destroyed after the current event batch.
  void retire(int fd);

 private:
  // One listener, watched by the loop.
  struct Listener final : IoHandler {
    Listener(ReactorLoop& loop, SharedListener socket, const Endpoint& local)
        : loop(loop), socket(std::move(socket)), local(local) {}
    void handle_events(std::uint32_t) override { loop.accept_from(*this); }
    ReactorLoop& loop;
    SharedListener socket;
    const Endpoint& local;  // ServerContext::listening_on()'s
  };

  // A listener is readable: accepts a burst, admits and adopts each connection.
  void accept_from(Listener& listener);
  void stop_accepting() override;
  void finish() override;

  ThreadStats stats_;
  SendBatch batch_;
  EventLoop loop_;
  std::vector<std::unique_ptr<Listener>> listeners_;            // empty once the loop stops accepting
  SpareFd spare_;                                               // for EMFILE
  std::vector<std::unique_ptr<ReactorTransport>> connections_;  // indexed by fd
  std::vector<std::unique_ptr<ReactorTransport>> retired_;
};

}  // namespace iomux::detail::reactor
