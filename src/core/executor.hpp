// The thread a connection lives on, as the connection core sees it: a reactor or uring event
// loop, or a thread of a blocking model. It runs the connection's handler calls, timers and
// mail (what other threads post), keeps the list of its connections for the memory budget,
// and lends the synchronous engines' SendBatch to one handler call at a time.
//
// Each engine derives one: the timers are the engine's own (the event loop's, the uring
// thread's, a blocking thread's TimerQueue), and so is the way its wait is interrupted when
// mail arrives (the Mailbox's wake function).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "core/mailbox.hpp"
#include "core/thread_stats.hpp"
#include "iomux/handler.hpp"
#include "iomux/server.hpp"
#include "iomux/stats.hpp"

namespace iomux::detail {

class ConnectionCore;
class SendBatch;
class ServerContext;

class Executor : public iomux::Loop {
 public:
  using Clock = std::chrono::steady_clock;

  // `batch`: the engine's SendBatch, null where sends are asynchronous (uring).
  Executor(ServerContext& ctx, ThreadStats& stats, SendBatch* batch, std::function<void()> wake);
  virtual ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  [[nodiscard]] ServerContext& context() const noexcept { return ctx_; }
  [[nodiscard]] ThreadStats& stats() const noexcept { return stats_; }
  [[nodiscard]] SendBatch* send_batch() const noexcept { return batch_; }
  // Blocking sockets: a thread may sleep in send() on one, so ConnectionHandle::close() shuts
  // the socket down to wake it (the blocking models set this).
  [[nodiscard]] bool interruptible_sockets() const noexcept { return interruptible_sockets_; }
  void set_interruptible_sockets(bool on) noexcept { interruptible_sockets_ = on; }
  [[nodiscard]] const std::shared_ptr<Mailbox>& mailbox() const noexcept { return mailbox_; }
  // The time the current event started; engines set it once per wake-up.
  [[nodiscard]] Clock::time_point now() const noexcept { return *clock_; }
  // The engine keeps the time with set_now(), or points at a clock of its own that it updates
  // (the event loop's), which must outlive the executor's use of it.
  void set_now(Clock::time_point t) noexcept { now_ = t; }
  void use_clock(const Clock::time_point& clock) noexcept { clock_ = &clock; }

  // Owner thread. The callback runs on the owner thread.
  virtual TimerId start_timer(Clock::time_point when, std::function<void()> callback) = 0;
  virtual bool cancel_timer(TimerId id) = 0;

  // Any thread, any number of times; never blocks. Event-loop engines stop this way (a letter
  // in the mailbox, run on the owner thread): graceful stops accepting (stop_accepting()),
  // drains every connection (ConnectionCore::drain: reading stops, owed replies are flushed,
  // then each closes), and finishes once none is left, or closes what is left after
  // drain_timeout; a second graceful stop, or an immediate one, closes everything now. Either
  // way the engine's finish() ends its loop. (The blocking family cannot: its threads sleep in
  // accept(), recv() and send(), which only shutting the sockets down wakes:
  // blocking/stop_control.hpp.)
  void request_stop(StopMode mode) noexcept;
  [[nodiscard]] bool draining() const noexcept { return draining_; }

  // iomux::Loop's timers and tasks (owner thread): not a connection's, so a throw is caught
  // here, logged and counted.
  TimerId start_loop_timer(Clock::time_point when, std::function<void()> callback);
  bool cancel_loop_timer(TimerId id);
  void run_loop_job(const std::function<void()>& job) noexcept;
  // Loop timers are pending, or another thread may post to the loop: a blocking model must wait
  // on its timers and mailbox, not only in recv().
  [[nodiscard]] bool has_loop_work() const noexcept {
    return !loop_timers_.empty() || loop_handle_taken_.load(std::memory_order_relaxed);
  }
  // Any thread (Loop::handle, Server::loops).
  void loop_handle_taken() noexcept { loop_handle_taken_.store(true, std::memory_order_relaxed); }

  // Owner thread: Loop::connect. The engine makes an outbound connection core (the socket's
  // connect under way, or failed: reported from a timer, never before this returns) and
  // returns it. This default (an engine that cannot yet) throws std::logic_error.
  virtual ConnectionCore* connect_out(const Endpoint& to, std::unique_ptr<Handler> handler, ConnectOptions options);

  // Owner thread: closes every connection of this thread now.
  void close_all(std::string_view why);
  // Owner thread: whether any connection of this thread is open.
  [[nodiscard]] bool has_connections() const noexcept { return first_ != nullptr; }

  // Owner thread: runs the letters waiting in the mailbox; one acquire load when there are
  // none.
  void deliver_mail() {
    if (mailbox_->maybe_nonempty()) deliver_mail_slow();
  }
  // Owner thread, when it stops serving: later letters are refused.
  void close_mailbox();

  // Owner thread: the connection cores of this thread link themselves in and out.
  void attach(ConnectionCore& core) noexcept;
  void detach(ConnectionCore& core) noexcept;
  // Owner thread: a connection of this thread grew while the memory budget is over its soft
  // mark: pause it if it is large, evict the largest holders while over the limit.
  void budget_pressure(ConnectionCore& grown);
  // Owner thread: the same, soon, for a growth that cannot be acted on at once (inside a
  // handler call): the budget check evicts over the limit, and stalled holders over the soft
  // mark.
  void budget_pressure_later() { schedule_budget_check(); }

  // Owner thread: a connection of this thread closed (ConnectionCore::close): a drain may be
  // done.
  void connection_closed();

  // Debug builds check the thread rules with these.
  // The owner thread, when it starts serving (after the engine's object is whole): binds the
  // executor to it, and enlists its mailbox for the memory budget's sweeps.
  void bind_to_current_thread();
  [[nodiscard]] bool in_owner_thread() const noexcept {
    return owner_ == std::thread::id() || owner_ == std::this_thread::get_id();
  }

 protected:
  // The engine's part of a stop (request_stop): close its listener; end its loop.
  virtual void stop_accepting() {}
  virtual void finish() {}

 private:
  void deliver_mail_slow();
  void on_stop(StopMode mode);
  void schedule_budget_check();
  void budget_check();
  void sweep_stalled();
  void evict_stalled();
  void evict_over_limit();

  ServerContext& ctx_;
  ThreadStats& stats_;
  SendBatch* batch_;
  std::shared_ptr<Mailbox> mailbox_;
  std::vector<Letter> letters_;  // deliver_mail's, kept for its capacity
  Clock::time_point now_ = Clock::now();
  const Clock::time_point* clock_ = &now_;
  ConnectionCore* first_ = nullptr;
  TimerId budget_timer_ = kNoTimer;
  bool evicting_ = false;
  bool draining_ = false;
  TimerId drain_timer_ = kNoTimer;
  bool interruptible_sockets_ = false;
  std::atomic<bool> loop_handle_taken_{false};
  std::vector<TimerId> loop_timers_;  // pending iomux::Loop timers (few: a periodic job or two)
  std::thread::id owner_;
};

}  // namespace iomux::detail
