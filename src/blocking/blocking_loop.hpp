// The Executor of a thread of the blocking family: the connection's own thread in blocking
// and threaded, the one thread of nonblocking and timeout.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "blocking/stop_control.hpp"
#include "core/executor.hpp"
#include "core/send_batch.hpp"
#include "core/server_context.hpp"
#include "core/thread_stats.hpp"
#include "core/timer_queue.hpp"

namespace iomux::detail::blocking {

class BlockingTransport;

// The Executor of one thread of a blocking model: a TimerQueue run between its blocking calls,
// and a mailbox whose wake-up is an eventfd (made when first needed; serve() polls it) or, for
// the visiting models, a nudge of their back-off sleep.
class BlockingLoop final : public Executor {
 public:
  enum class Wake { eventfd, nudge };
  BlockingLoop(ServerContext& ctx, ThreadStats& stats, StopControl* stop, Wake wake);
  ~BlockingLoop() override;

  TimerId start_timer(Clock::time_point when, std::function<void()> callback) override;
  bool cancel_timer(TimerId id) override;

  // Loop::connect, where the model's server can serve the connection it opens (the visiting
  // models: one more connection to visit). Unset: Executor's (std::logic_error).
  using Connector = std::function<ConnectionCore*(const Endpoint&, std::unique_ptr<Handler>, ConnectOptions)>;
  void set_connector(Connector connector) { connector_ = std::move(connector); }
  // Without a connector (blocking, threaded): the connection becomes a companion of the
  // connection this thread serves, which waits on both (BlockingTransport::serve).
  ConnectionCore* connect_out(const Endpoint& to, std::unique_ptr<Handler> handler, ConnectOptions options) override;

  // blocking, threaded: the outbound connections the thread's client opened, non-blocking,
  // served by visits between (and after) the client's own turns. Owner thread.
  [[nodiscard]] std::vector<std::unique_ptr<BlockingTransport>>& companions() noexcept { return companions_; }
  // Closed companions go (not during a visit: the caller's loop).
  void reap_companions();

  // Owner thread: the time is now; runs due timers and the mail.
  void run_due();
  [[nodiscard]] std::optional<Clock::time_point> next_deadline() { return timers_.next_deadline(); }
  // Owner thread: the eventfd that mail makes readable (created on first call).
  int wake_fd();
  void drain_wake_fd() noexcept;

 private:
  void wake() noexcept;

  SendBatch batch_;
  TimerQueue timers_;
  StopControl* stop_;
  Wake wake_mode_;
  std::atomic<int> wake_fd_{-1};
  Connector connector_;
  std::vector<std::unique_ptr<BlockingTransport>> companions_;
};

}  // namespace iomux::detail::blocking
