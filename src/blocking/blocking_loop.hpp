// The Executor of a thread of the blocking family: the connection's own thread in blocking
// and threaded, the one thread of nonblocking and timeout.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include "blocking/stop_control.hpp"
#include "core/executor.hpp"
#include "core/send_batch.hpp"
#include "core/server_context.hpp"
#include "core/thread_stats.hpp"
#include "core/timer_queue.hpp"

namespace iomux::detail::blocking {

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
  ConnectionCore* connect_out(const Endpoint& to, std::unique_ptr<Handler> handler, ConnectOptions options) override {
    if (!connector_) return Executor::connect_out(to, std::move(handler), options);
    return connector_(to, std::move(handler), options);
  }

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
};

}  // namespace iomux::detail::blocking
