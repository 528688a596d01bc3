// The one connection lifecycle every engine shares (the blocking family, the reactor, uring):
// the Connection a handler sees, and everything about a connection that is not moving bytes.
//
//   state        open -> flushing -> lingering -> closed      (any state -> closed)
//                open       reading, handler called with input
//                flushing   reading no more (close_after_flush, the peer's FIN, a graceful
//                           stop): every owed reply, deferred ones too, then FIN
//                lingering  FIN sent; input discarded until the peer closes, so a reset
//                           cannot destroy replies the peer has not read yet: at most 2 s
//                           without the kernel delivering any of them, 30 s in all
//   input        the bytes the handler has not consumed, kept and bounded (max_input)
//   output       the OutputQueue, and the thread's SendBatch during a handler call
//   back-pressure  pending output >= max_pending, or max_deferred places unfilled, or the
//                memory budget: reading pauses; it resumes at half, the handler hears
//                on_drain(), and kept input is presented again
//   budget       every held byte (kept input + output) counts toward --max-memory
//   close        one place that logs the reason, counts, tells the handler, cancels timers and
//                severs handles; then the engine releases the socket
//
// What an engine does: read bytes and deliver() them, send what is owed (send_owed() for the
// synchronous engines), apply wants_read() to its reading, discard input while lingering, and
// release its socket when told (Transport). Everything here runs on the connection's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/buffer.hpp"
#include "core/executor.hpp"
#include "core/output_queue.hpp"
#include "core/poison.hpp"
#include "iomux/endpoint.hpp"
#include "iomux/handler.hpp"

namespace iomux::detail {

class Executor;
class ConnectionLink;
class SendBatch;

// The engine's side of one connection, as the core calls it.
class Transport {
 public:
  // The core changed outside the engine's own read path (a posted task, a timer, a deferred
  // reply filled, a budget decision): send what is owed, apply wants_read(), finish a flush.
  virtual void settle() = 0;
  // FIN: nothing more will be sent (the core then lingers).
  virtual void shutdown_write() = 0;
  // The core has closed (logged, counted, handler told): stop all IO on the socket and release
  // it. The connection object may be on the caller's stack: free it only later.
  virtual void release_socket() = 0;

 protected:
  ~Transport() = default;
};

class ConnectionCore final : public iomux::Connection {
 public:
  using Clock = std::chrono::steady_clock;
  enum class State : std::uint8_t { open, flushing, lingering, closed };

  // The engine has admitted the connection (ServerContext::admit); close() releases it.
  // `local`: the listener's endpoint (one of ServerContext::listening_on(), which outlives
  // every connection).
  // `outbound`: a connection this thread opened (Loop::connect), not admitted: it is
  // `connecting()` until the engine calls connected() (then open()), and it does not hold a
  // place under max_connections.
  ConnectionCore(Executor& executor, Transport& transport, std::unique_ptr<Handler> handler, const Endpoint& peer,
                 const Endpoint& local, int fd, bool outbound = false);
  // Closes the connection if the engine did not (without calling back into the engine).
  ~ConnectionCore();
  ConnectionCore(const ConnectionCore&) = delete;
  ConnectionCore& operator=(const ConnectionCore&) = delete;

  // ---- The engine's calls (owner thread). `send` below is the engine's way of sending what
  // is owed: `int send()` returning the errno of a failed send, 0 otherwise.

  // Counts and logs the connection, calls on_open, sends what it wrote.
  template <typename Send>
  void open(Send&& send) {
    start();
    settle_with(send);
  }

  // Outbound connections. While connecting, what the handler writes (through its handle) is
  // queued, not sent, and nothing is read; a graceful stop closes it unless output is owed.
  [[nodiscard]] bool connecting() const noexcept { return connecting_; }
  [[nodiscard]] bool outbound() const noexcept { return outbound_; }
  // The connect completed: the engine calls open() next. The peer's clock for taking what is
  // owed (send_timeout, max_output) starts now: the handshake was not its refusal to read.
  void connected() noexcept {
    connecting_ = false;
    output_since_ = executor_now();
  }

  // Input. An engine reads into its own scratch area while nothing is kept (so an idle
  // connection holds no buffer), else appends to kept_input(), at most read_room() bytes.
  [[nodiscard]] bool keeps_input() const noexcept { return !kept_.empty(); }
  [[nodiscard]] Buffer& kept_input() noexcept { return kept_; }
  [[nodiscard]] std::size_t read_room() const noexcept;

  // The request path: runs the handler over `input` (the bytes just read, or kept_input().view()
  // after they were appended: `input_is_kept`), sends the replies, keeps what the handler did
  // not consume, and acts on a lifted pause. Inline: this is the path of every request.
  template <typename Send>
  [[gnu::always_inline]] inline void serve(std::string_view input, bool input_is_kept, Send&& send) {
    deliver(input);
    const int err = send();
    finish_delivery(input, input_is_kept);
    if (err != 0) [[unlikely]] {
      io_failed(err);
      return;
    }
    if (resume_due_) [[unlikely]]
      settle_with(send);
  }
  // The two halves of serve(), for an engine that must act between them (uring lends the
  // receive buffer to the send): the replies stay in the batch or the queue until sent.
  [[gnu::always_inline]] inline void deliver(std::string_view input) {
    last_activity_ = executor_now();
    input_ = input;
    used_ = input.size();  // if the handler throws, the input is dropped with the connection
    if (!batch_ && queue_.empty()) batch_ = executor_batch();
    try {
      used_ = handler_->on_data(std::span<const char>(input.data(), input.size()), *this);
    } catch (const std::exception& e) {
      handler_failed(e.what());
    } catch (...) {
      handler_failed("an exception that is not a std::exception");
    }
    if (used_ > input.size()) [[unlikely]]
      overused(input.size());
  }
  // `input_live`: the engine still uses `input` (a lent buffer): debug builds must not
  // overwrite it.
  [[gnu::always_inline]] inline void finish_delivery(std::string_view input, bool input_is_kept,
                                                     bool input_live = false) {
    input_ = {};
    // The common case: the handler used everything it was given from the engine's buffer, and
    // nothing owed points into it.
    if (!input_is_kept && used_ == input.size() && !queue_.has_transients()) [[likely]] {
      if (!input_live) poison(input);
      return;
    }
    finish_delivery_slow(input, input_is_kept, input_live);
  }
  // Sends what is owed and does what is due after a handler call: a FIN shutdown_write() owes,
  // on_drain() after a lifted pause, then kept input presented again.
  template <typename Send>
  void settle_with(Send&& send) {
    int err = send();
    while (err == 0 && resume_due_) {
      resume_due_ = false;
      if (state_ != State::open) break;
      if (fin_owed_) send_fin_if_drained();
      if (drain_due_) {
        drain_due_ = false;
        dispatch([this] { handler_->on_drain(*this); });
      }
      if (std::exchange(present_due_, false) && !kept_.empty() && wants_read()) {
        const std::string_view kept = kept_.view();
        deliver(kept);
        err = send();
        finish_delivery(kept, true);
      } else {
        err = send();
      }
    }
    if (err != 0) io_failed(err);
  }

  // The peer's FIN (a read returned 0). Calls on_peer_shutdown, then the engine's settle().
  void peer_shutdown();
  // A read or send failed with errno `err`: closes. ETIME, which no socket call returns, is
  // how the blocking models report a send that timed out (SO_SNDTIMEO = send_timeout).
  void io_failed(int err);
  // Async engines: the socket took `n` bytes of what the queue offered.
  void sent(std::size_t n);
  // Bytes an engine holds for the peer outside the queue (uring's lent receive buffer).
  void set_lent(std::size_t bytes) noexcept { lent_ = bytes; }
  // A graceful stop: read no more, flush, close. Calls the engine's settle(). First, when the
  // engine can go on reading (`may_keep_reading`: not when the stop shuts the socket's reading
  // side to wake a blocked thread), the handler is asked (Handler::on_server_drain) and may keep
  // the connection reading to finish what is on its way; a later drain() then leaves it be.
  void drain(bool may_keep_reading = true);
  // Closes now. `detail` is logged; reason and error go to the handler.
  void close(CloseReason reason, int error, std::string_view detail);
  // Event-loop engines run the idle timeout as a timer; blocking ones check idle_for().
  void start_idle_timer();
  [[nodiscard]] Clock::duration idle_for(Clock::time_point now) const noexcept { return now - last_activity_; }
  void close_idle();
  // Letters from the mailbox (Executor::deliver_mail). Each calls the engine's settle().
  void run_task(const std::function<void(iomux::Connection&)>& task);
  void fill(std::uint64_t id, std::string&& bytes);
  // The memory budget pauses or resumes reading. Calls the engine's settle().
  void set_budget_paused(bool paused);
  // Accounting after the output changed (the engines' sends): pending bytes, pauses, budget,
  // and the end of a flush. Inline: the common case (nothing owed before or after) is a few
  // compares.
  [[gnu::always_inline]] inline void output_changed() {
    if (queue_.empty() && (lent_ | pending_ | held_) == 0 && state_ == State::open && !paused()) [[likely]]
      return;
    output_changed_slow();
  }

  // ---- What the engine reads back.
  [[nodiscard]] State state() const noexcept { return state_; }
  [[nodiscard]] bool wants_read() const noexcept { return state_ == State::open && no_read_ == 0; }
  // The handler paused reading (Connection::pause_reading): bytes a recv already in flight
  // brings (uring) are kept, not presented, until it resumes.
  [[nodiscard]] bool hand_paused() const noexcept { return (no_read_ & kPausedHand) != 0; }
  // Uring: bytes that arrived after the handler paused reading, kept for its resume.
  void keep_while_paused(std::string_view bytes);
  [[nodiscard]] bool discarding() const noexcept { return state_ == State::lingering; }
  [[nodiscard]] bool budget_paused() const noexcept { return (no_read_ & kPausedBudget) != 0; }
  [[nodiscard]] OutputQueue& queue() noexcept { return queue_; }
  // The batch the current handler call writes into (synchronous engines), or null.
  [[nodiscard]] SendBatch* batch() const noexcept { return batch_; }
  void detach_batch() noexcept { batch_ = nullptr; }
  [[nodiscard]] bool reachable() const noexcept {
    return link_ != nullptr || !timers_.empty() || held_ >= kReachableHeld || executor_.has_loop_work();
  }
  [[nodiscard]] std::size_t held() const noexcept { return held_ + handler_held_; }
  // Holds at least `min_held` and has made no progress for a while: no input delivered, no
  // output taken, no deferred reply of ours unfilled. The memory budget evicts these, largest
  // first, before a client that makes progress waits long.
  [[nodiscard]] bool stalled_holder(Clock::time_point now, std::size_t min_held) const noexcept;
  // Another thread or a timer may act on this connection, or the memory budget may evict it:
  // a blocking model must then wait on its mailbox and timers too, not only in recv().
  [[nodiscard]] const Endpoint& peer_endpoint() const noexcept { return peer_; }
  [[nodiscard]] int fd() const noexcept { return fd_; }
  [[nodiscard]] Executor& executor() const noexcept { return executor_; }

  // The executor's list of its connections (for the memory budget).
  ConnectionCore* next_in_executor = nullptr;
  ConnectionCore* prev_in_executor = nullptr;

 private:
  friend class iomux::Connection;

  [[nodiscard]] bool paused() const noexcept { return (no_read_ & kPaused) != 0; }
  [[nodiscard]] bool accepts_output() const noexcept { return output_open_; }
  void refuse_write();
  void shut_output();
  void set_hand_paused(bool paused);
  void arm_idle_timer(Clock::time_point from);
  void send_fin_if_drained();
  void start();
  void begin_dispatch() noexcept;
  void finish_delivery_slow(std::string_view input, bool input_is_kept, bool input_live);
  void output_changed_slow();
  void overused(std::size_t given);
  [[nodiscard]] Clock::time_point executor_now() const noexcept { return executor_.now(); }
  [[nodiscard]] SendBatch* executor_batch() const noexcept { return executor_.send_batch(); }
  // Overwrites input a handler may no longer look at, in debug builds, so a handler that kept
  // a view into it sees garbage at once instead of bytes that happen to survive.
  static void poison(std::string_view bytes) noexcept { detail::poison(bytes.data(), bytes.size(), kPoisonInput); }
  // Runs a handler call; a throw closes the connection (CloseReason::handler_error).
  template <typename F>
  void dispatch(F&& call) {
    begin_dispatch();
    const bool outermost = !in_call();
    if (outermost) input_ = std::string_view(&kCallMark, 0);
    try {
      call();
    } catch (const std::exception& e) {
      handler_failed(e.what());
    } catch (...) {
      handler_failed("an exception that is not a std::exception");
    }
    if (outermost) input_ = {};
  }
  // This connection's handler is being called: on_data (input_ is its input) or another call
  // (dispatch() marks input_ with an empty view, which holds no input for write() to find).
  // Free on the request path, which sets input_ anyway.
  [[nodiscard]] bool in_call() const noexcept { return input_.data() != nullptr; }
  static constexpr char kCallMark = 0;
  // A method of this connection was called while its handler is not (by another connection's
  // handler on the same thread, a loop task or timer): nothing of this connection's path will
  // send what it owes now, so the executor settles it soon (a timer due now: once, however
  // many calls, before the thread waits again).
  void touched() {
    if (!in_call()) [[unlikely]]
      settle_soon();
  }
  void settle_soon();
  void handler_failed(std::string_view what);
  // The one path of every Connection::write: nothing to write is no write; output that is shut
  // refuses it; else it joins this event's send batch (`to_batch` says false when the batch is
  // full, which spills it) or the output queue. Defined in connection.cpp, its only user.
  template <typename ToBatch, typename ToQueue>
  void write_through(bool has_bytes, ToBatch&& to_batch, ToQueue&& to_queue);
  void spill_batch();
  void start_flush(CloseReason reason, std::string_view detail);
  void finish_flush();
  void arm_linger(std::size_t unsent, Clock::time_point started);
  void watch_output(std::size_t pending);
  void on_send_timer();
  void set_paused(std::uint8_t reason, bool value);
  void account() noexcept;
  std::shared_ptr<ConnectionLink>& link();
  void cancel_all_timers();
  [[nodiscard]] std::string_view close_detail() const noexcept {
    return close_detail_ ? std::string_view(*close_detail_) : std::string_view();
  }

  Executor& executor_;
  Transport& transport_;
  std::unique_ptr<Handler> handler_;
  Endpoint peer_;
  const Endpoint* local_;
  int fd_;
  Buffer kept_;
  std::size_t max_input_;
  OutputQueue queue_;
  SendBatch* batch_ = nullptr;
  std::string_view input_;   // the input of the on_data() call in progress
  std::size_t used_ = 0;     // what that call returned
  std::size_t pending_ = 0;  // output bytes last accounted (stats)
  std::size_t held_ = 0;     // memory last accounted (budget): kept input, output, lent
  std::size_t lent_ = 0;
  // The handler's own memory (Connection::set_handler_memory): accounted when set, apart from
  // held_, so a handler that always keeps a small buffer does not take every request off the
  // fast path of output_changed().
  std::size_t handler_held_ = 0;
  std::uint64_t requests_ = 0;
  Clock::time_point last_activity_;
  // Since when the peer has taken no owed output: the last send that made progress, or when
  // output became owed. The send timer (one per connection with output owed, re-armed only
  // when it fires) compares it with send_timeout, and with a second while over max_output.
  Clock::time_point output_since_;
  Clock::time_point send_timer_due_;
  TimerId send_timer_ = kNoTimer;
  TimerId idle_timer_ = kNoTimer;
  TimerId linger_timer_ = kNoTimer;
  TimerId settle_timer_ = kNoTimer;  // settle_soon()'s
  // Connection::notify_drain(): on_drain() once pending output is at most this; kNoNotice: none.
  static constexpr std::size_t kNoNotice = static_cast<std::size_t>(-1);
  std::size_t drain_notice_ = kNoNotice;
  struct UserTimer {
    TimerId id;        // what the handler holds
    TimerId executor;  // what the executor knows it by
  };
  std::vector<UserTimer> timers_;
  TimerId next_timer_ = 1;
  std::shared_ptr<ConnectionLink> link_;
  // Logged when a flush or linger ends. On the heap, set only by a flush with a detail: most
  // connections never flush, and an idle connection's size is what 15,000 of them cost.
  std::unique_ptr<std::string> close_detail_;
  CloseReason close_reason_ = CloseReason::closed_by_handler;
  State state_ = State::open;
  bool opened_ = false;
  bool outbound_ = false;
  bool connecting_ = false;  // outbound, and the connect has not completed
  // The bits of no_read_.
  static constexpr std::uint8_t kPausedOutput = 1;    // pending output >= max_pending
  static constexpr std::uint8_t kPausedDeferred = 2;  // max_deferred places unfilled
  static constexpr std::uint8_t kPausedBudget = 4;    // the memory budget
  static constexpr std::uint8_t kPausedDrain = 16;    // the handler waits for its output to leave
  static constexpr std::uint8_t kPaused = kPausedOutput | kPausedDeferred | kPausedBudget | kPausedDrain;
  static constexpr std::uint8_t kPeerClosed = 8;  // the peer sent FIN
  // The handler paused reading (pause_reading): apart from kPaused, so that back-pressure
  // ending does not undo it, resuming does not override back-pressure, and the server's
  // paused count stays what back-pressure does.
  static constexpr std::uint8_t kPausedHand = 32;
  // A connection holding this much is a candidate for the budget's stalled-holder sweep, which
  // reaches a blocking-model thread only while it sleeps in poll() with its mailbox.
  static constexpr std::size_t kReachableHeld = 4 * 1024;
  std::uint8_t no_read_ = 0;
  // Something is due after the current handler call (settle_with): the one flag the request
  // path tests. What is due: a FIN, on_drain, kept input presented again.
  bool resume_due_ = false;
  // shutdown_write() was asked and the FIN waits for the owed output. Not tested on the request
  // path: output_changed()'s slow path sends it once the queue drains, and resume_due_ brings
  // settle_with() to it when nothing was queued.
  bool fin_owed_ = false;
  bool drain_due_ = false;    // back-pressure lifted: on_drain is owed
  bool present_due_ = false;  // a pause lifted: kept input is presented again
  // Writes are accepted: open or flushing, and the handler has not shut its output
  // (shutdown_write). One flag, so that every write tests one byte.
  bool output_open_ = true;
  bool output_shut_ = false;  // shutdown_write() was called
  bool in_peer_shutdown_ = false;
  bool destroying_ = false;
  // A handler method threw: the handler is not called again but for on_close(); what it wrote
  // before the throw is flushed, then the connection closes.
  bool handler_broken_ = false;
  bool drain_asked_ = false;  // on_server_drain was called (once per connection)
};

}  // namespace iomux::detail
