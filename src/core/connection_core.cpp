#include "core/connection_core.hpp"

#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <fmt/format.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <functional>
#include <utility>

#include "core/executor.hpp"
#include "core/mailbox.hpp"
#include "core/send_batch.hpp"
#include "core/server_context.hpp"
#include "core/thread_stats.hpp"

namespace iomux::detail {
namespace {

// After the last reply of a connection that is closing: how long to keep reading (and
// discarding) before closing anyway. Closing a socket with unread input sends RST, and a RST
// destroys the replies the kernel has not delivered yet. So the linger goes on while the peer
// takes them, kLingerTime at a time, up to kMaxLingerTime in all (nginx's lingering_timeout and
// lingering_time play the same roles).
constexpr std::chrono::milliseconds kLingerTime{2000};
constexpr std::chrono::milliseconds kMaxLingerTime{30000};
// Owed more than max_output: how long the peer may take nothing before it counts as not
// reading (a peer that reads takes something every few milliseconds).
constexpr std::chrono::milliseconds kOutputStall{1000};
// No progress for this long makes a holder stalled, for the memory budget: a client that makes
// progress waits at most about this long behind ones that do not.
constexpr std::chrono::milliseconds kStallTime{1000};

// Bytes written to socket `fd` that the peer has not acknowledged yet (SIOCOUTQ); 0 when the
// kernel cannot tell.
std::size_t undelivered(int fd) noexcept {
  int n = 0;
  return ::ioctl(fd, SIOCOUTQ, &n) == 0 && n > 0 ? static_cast<std::size_t>(n) : 0;
}

// Whether socket `fd` has received nothing that is still unread (FIONREAD): then close() sends
// a plain FIN, and the kernel goes on delivering what was written. With unread input it sends
// a reset instead, which throws away the replies not yet delivered. True when it cannot tell.
bool nothing_unread(int fd) noexcept {
  int unread = 0;
  return ::ioctl(fd, FIONREAD, &unread) != 0 || unread == 0;
}

}  // namespace

ConnectionCore::ConnectionCore(Executor& executor, Transport& transport, std::unique_ptr<Handler> handler,
                               const Endpoint& peer, const Endpoint& local, int fd, bool outbound)
    : executor_(executor),
      transport_(transport),
      handler_(std::move(handler)),
      peer_(peer),
      local_(&local),
      fd_(fd),
      max_input_(executor.context().options().max_input),
      last_activity_(executor.now()),
      outbound_(outbound),
      connecting_(outbound) {
  executor_.attach(*this);
}

ConnectionCore::~ConnectionCore() {
  if (state_ != State::closed) {
    destroying_ = true;  // the engine object around us is going away: do not call it back
    close(CloseReason::server_stopped, 0, "server stopped");
  }
  // What a closed connection still held (output a send in flight referenced) goes now.
  if (held() != 0) executor_.context().budget().add(-static_cast<std::int64_t>(held()));
}

// ------------------------------------------------------------------------------ engine side

void ConnectionCore::start() {
  assert(executor_.in_owner_thread());
  opened_ = true;
  executor_.stats().connections_open.add();
  if (outbound_) {
    executor_.stats().connections_outbound.add();
    executor_.context().log_outbound(peer_, *local_, fd_);
  } else {
    executor_.context().log_connect(peer_, *local_, fd_);
  }
  dispatch([this] { handler_->on_open(*this); });
}

std::size_t ConnectionCore::read_room() const noexcept {
  // One byte past the bound, so a handler that will not consume is caught by the check.
  const std::size_t kept = kept_.readable();
  return kept < max_input_ ? max_input_ - kept + 1 : 1;
}

void ConnectionCore::begin_dispatch() noexcept {
  // While connecting, writes wait in the queue: the batch is for sending at once.
  if (batch_ || !queue_.empty() || connecting_) return;
  batch_ = executor_.send_batch();
  assert(!batch_ || batch_->empty());
}

void ConnectionCore::overused(std::size_t given) {
  executor_.context().log().error("handler for {} used {} bytes of {} given; closing", peer_.to_string(), used_, given);
  used_ = given;
  handler_failed("on_data() used more bytes than it was given");
}

void ConnectionCore::finish_delivery_slow(std::string_view input, bool input_is_kept, bool input_live) {
  if (state_ == State::closed) return;
  // What the batch did not send may still point into the input: copy it before it goes.
  queue_.persist_transients();
  if (input_is_kept) {
    poison({kept_.peek(), used_});
    kept_.consume(used_);
    if (kept_.empty()) kept_.release_if_empty();
  } else {
    if (used_ < input.size()) kept_.append(input.substr(used_));
    if (!input_live) poison(input);
  }
  // A connection the handler paused keeps what it was given until it resumes: the bound is
  // applied at the next call, where the handler has had its chance to consume it.
  if (kept_.readable() > max_input_ && !hand_paused()) [[unlikely]] {
    close(CloseReason::input_limit, 0,
          fmt::format("{} bytes of unconsumed input, over the limit of {} (max_input)", kept_.readable(), max_input_));
    return;
  }
  if (!kept_.empty() || held_ != 0) account();
}

void ConnectionCore::peer_shutdown() {
  // Paused by the handler (a uring recv already in flight saw the FIN): the FIN stays in the
  // socket, and the first read after the resume sees it again, after the kept input.
  if (state_ == State::open && hand_paused()) return;
  no_read_ |= kPeerClosed;
  switch (state_) {
    case State::open:
      in_peer_shutdown_ = true;
      dispatch([this] { handler_->on_peer_shutdown(*this); });
      in_peer_shutdown_ = false;
      // Both sides are shut now: nothing more can come or go but what is owed.
      if (output_shut_ && state_ == State::open) start_flush(CloseReason::peer_closed, "closed by peer");
      break;
    case State::lingering:
      close(close_reason_, 0, close_detail());
      return;
    default:
      break;
  }
  if (state_ != State::closed) transport_.settle();
}

void ConnectionCore::io_failed(int err) {
  if (err == ETIME) {
    executor_.stats().connections_timed_out.add();
    close(CloseReason::send_timeout, 0,
          fmt::format("the peer took no output for {} ms (send_timeout)",
                      executor_.context().options().send_timeout.count()));
    return;
  }
  close(CloseReason::peer_reset, err, describe_errno(err));
}

void ConnectionCore::sent(std::size_t n) {
  executor_.stats().bytes_out.add(n);
  queue_.consume(n);
  output_changed();
}

void ConnectionCore::drain(bool may_keep_reading) {
  if (state_ == State::lingering) {
    close(close_reason_, 0, close_detail());
    return;
  }
  if (state_ != State::open) return;
  if (may_keep_reading) {
    // A handler that kept reading ends the connection itself (or drain_timeout does).
    if (std::exchange(drain_asked_, true)) return;
    const bool input_waiting = !kept_.empty() || !nothing_unread(fd_);
    bool keep_reading = false;
    dispatch([&] { keep_reading = handler_->on_server_drain(*this, input_waiting); });
    if (state_ == State::closed) return;
    if (keep_reading || state_ != State::open) {
      transport_.settle();
      return;
    }
  }
  // Nothing owed and nothing unread: close now (an idle connection's FIN follows whatever the
  // kernel still has to deliver). With requests unread, flush and linger like a connection
  // with replies queued here: a close would send a reset, which throws away the replies the
  // kernel has not delivered yet (a graceful stop under load lost thousands that way).
  if (queue_.empty() && lent_ == 0 && (!batch_ || batch_->empty()) && nothing_unread(fd_)) {
    close(CloseReason::server_stopped, 0, "server shutting down");
    return;
  }
  start_flush(CloseReason::server_stopped, "server shutting down");
  transport_.settle();
}

void ConnectionCore::start_flush(CloseReason reason, std::string_view detail) {
  if (state_ != State::open) return;
  state_ = State::flushing;
  close_reason_ = reason;
  close_detail_ = detail.empty() ? nullptr : std::make_unique<std::string>(detail);
  // The flush ends in output_changed(), once the engine has sent everything.
}

void ConnectionCore::finish_flush() {
  if (no_read_ & kPeerClosed) {
    close(close_reason_, 0, close_detail());
    return;
  }
  // FIN after the replies, then read (and discard) until the peer closes, bounded.
  state_ = State::lingering;
  output_open_ = false;
  fin_owed_ = false;
  transport_.shutdown_write();
  arm_linger(undelivered(fd_), executor_.now());
}

void ConnectionCore::arm_linger(std::size_t unsent, Clock::time_point started) {
  linger_timer_ = executor_.start_timer(executor_.now() + kLingerTime, [this, unsent, started] {
    linger_timer_ = kNoTimer;
    // A slow reader still taking its replies keeps the connection; one that took none of them
    // in kLingerTime does not.
    const std::size_t left = undelivered(fd_);
    if (left > 0 && left < unsent && executor_.now() - started < kMaxLingerTime) {
      arm_linger(left, started);
      return;
    }
    close(close_reason_, 0, close_detail());
  });
}

void ConnectionCore::output_changed_slow() {
  const std::size_t pending = queue_.bytes() + lent_;
  ThreadStats& stats = executor_.stats();
  if (pending > pending_) {
    stats.bytes_pending.add(pending - pending_);
    if (pending > stats.peak_pending_per_connection.get()) stats.peak_pending_per_connection.set(pending);
  } else if (pending < pending_) {
    stats.bytes_pending.sub(pending_ - pending);
  }
  // The peer took some (or output just became owed): the send timeout counts from now.
  if (pending < pending_ || pending_ == 0) output_since_ = executor_now();
  pending_ = pending;
  const ServerOptions& o = executor_.context().options();
  if (pending > 0 && state_ != State::closed && !connecting_) watch_output(pending);
  if (o.max_pending > 0) {
    const bool paused = no_read_ & kPausedOutput;
    if (!paused && pending >= o.max_pending && state_ == State::open)
      set_paused(kPausedOutput, true);
    else if (paused && pending <= o.max_pending / 2)
      set_paused(kPausedOutput, false);
  }
  if ((no_read_ & kPausedDrain) && pending == 0) set_paused(kPausedDrain, false);
  if (pending <= drain_notice_ && drain_notice_ != kNoNotice) {
    drain_notice_ = kNoNotice;
    if (state_ == State::open) resume_due_ = drain_due_ = true;
  }
  const std::size_t unfilled = queue_.deferred_unfilled();
  const bool deferred_paused = no_read_ & kPausedDeferred;
  if (!deferred_paused && unfilled >= o.max_deferred && state_ == State::open)
    set_paused(kPausedDeferred, true);
  else if (deferred_paused && unfilled <= o.max_deferred / 2)
    set_paused(kPausedDeferred, false);
  if (pending == 0) queue_.release_if_empty();
  account();
  if (fin_owed_) send_fin_if_drained();
  if (state_ == State::flushing && queue_.empty() && lent_ == 0 && (!batch_ || batch_->empty()) && !connecting_)
    finish_flush();
}

// Output is owed: make sure a timer will look at it by the time the peer would have taken
// too long (send_timeout, or kOutputStall when over max_output).
void ConnectionCore::watch_output(std::size_t pending) {
  const ServerOptions& o = executor_.context().options();
  // Never below twice max_pending: a connection that asked for its output must not hit it.
  const std::size_t max_output = std::max(o.max_output, 2 * o.max_pending);
  Clock::time_point due;
  if (pending > max_output)
    due = output_since_ + kOutputStall;
  else if (o.send_timeout.count() > 0)
    due = output_since_ + o.send_timeout;
  else
    return;
  if (send_timer_ != kNoTimer) {
    if (send_timer_due_ <= due) return;  // it fires first, and looks again then
    executor_.cancel_timer(std::exchange(send_timer_, kNoTimer));
  }
  send_timer_due_ = due;
  send_timer_ = executor_.start_timer(due, [this] {
    send_timer_ = kNoTimer;
    on_send_timer();
  });
}

void ConnectionCore::on_send_timer() {
  if (state_ == State::closed) return;
  const std::size_t pending = queue_.bytes() + lent_;
  if (pending == 0) return;
  const Clock::time_point now = executor_now();
  // Waiting for a deferred reply to be filled is waiting for us, not for the peer.
  if (queue_.blocked()) output_since_ = now;
  const ServerOptions& o = executor_.context().options();
  const std::size_t max_output = std::max(o.max_output, 2 * o.max_pending);
  const auto stalled = now - output_since_;
  if (pending > max_output && stalled >= kOutputStall) {
    close(CloseReason::output_limit, 0,
          fmt::format("{} bytes of output owed, over the limit of {}, and the peer took none for {} ms", pending,
                      max_output, std::chrono::duration_cast<std::chrono::milliseconds>(stalled).count()));
    return;
  }
  if (o.send_timeout.count() > 0 && stalled >= o.send_timeout) {
    executor_.stats().connections_timed_out.add();
    close(CloseReason::send_timeout, 0,
          fmt::format("the peer took none of {} bytes owed for {} ms (send_timeout)", pending, o.send_timeout.count()));
    return;
  }
  watch_output(pending);
}

bool ConnectionCore::stalled_holder(Clock::time_point now, std::size_t min_held) const noexcept {
  if (state_ == State::closed || held() < min_held || queue_.deferred_unfilled() > 0) return false;
  Clock::time_point progress = last_activity_;
  if (pending_ > 0) progress = std::max(progress, output_since_);
  // A connection the budget paused counts too, or paused uploads could wait on each other
  // forever; but it is waiting for us, not stalled on its own, so it counts only after twice
  // the stall time. Each thread sees only its own connections, so taking the largest first
  // (Redis's maxmemory-clients does) cannot order them across threads: on `threaded`, where a
  // thread holds one connection, a client paused at the moment others stalled would otherwise
  // be closed by its own thread in the same second as they are, although evicting them was
  // enough to let it go on.
  return now - progress >= (budget_paused() ? 2 * kStallTime : kStallTime);
}

void ConnectionCore::set_paused(std::uint8_t reason, bool value) {
  if (((no_read_ & reason) != 0) == value) return;
  const bool was = paused();
  no_read_ = value ? (no_read_ | reason) : (no_read_ & ~reason);
  const bool now = paused();
  if (was == now) return;
  ThreadStats& stats = executor_.stats();
  if (now) {
    stats.connections_paused.add();
  } else {
    stats.connections_paused.sub();
    if (state_ == State::open) resume_due_ = drain_due_ = present_due_ = true;
  }
}

void ConnectionCore::set_hand_paused(bool pause) {
  if (hand_paused() == pause) return;
  if (pause) {
    no_read_ |= kPausedHand;
    return;
  }
  no_read_ &= ~kPausedHand;
  if (state_ != State::open) return;
  // The idle clock starts again: the time paused was ours, not the peer's silence.
  last_activity_ = executor_now();
  // Kept input is presented again (after the current call, through settle_with), unless
  // back-pressure still holds it: its own end presents it then.
  if (!paused()) resume_due_ = present_due_ = true;
}

void ConnectionCore::keep_while_paused(std::string_view bytes) {
  last_activity_ = executor_now();
  kept_.append(bytes);
  account();
}

void ConnectionCore::shut_output() {
  if (!output_open_) return;
  output_open_ = false;
  output_shut_ = true;
  if (state_ != State::open) return;  // a flush ends with a FIN anyway
  if (no_read_ & kPeerClosed) {
    // The peer shut its side already: both are shut, so the connection ends once the owed
    // bytes are sent.
    start_flush(CloseReason::peer_closed, "closed by peer");
    return;
  }
  // Sent once nothing is owed: by output_changed() as the queue drains, or, when nothing is
  // queued, right after the current handler call (settle_with()).
  fin_owed_ = resume_due_ = true;
}

void ConnectionCore::send_fin_if_drained() {
  if (state_ != State::open || connecting_ || !queue_.empty() || lent_ != 0 || (batch_ && !batch_->empty())) return;
  // Every byte owed is with the kernel; the FIN follows them.
  fin_owed_ = false;
  transport_.shutdown_write();
}

void ConnectionCore::refuse_write() {
  // A write after close() or after the connection closed is ignored (the handler may not know
  // yet); one after shutdown_write() is the handler's mistake, and the peer would never see it.
  if (output_shut_ && (state_ == State::open || state_ == State::flushing) && !handler_broken_)
    handler_failed("a write after shutdown_write()");
}

void ConnectionCore::set_budget_paused(bool paused) {
  set_paused(kPausedBudget, paused);
  if (state_ != State::closed) transport_.settle();
}

void ConnectionCore::account() noexcept {
  const std::size_t held = kept_.capacity() + queue_.held() + lent_;
  if (held == held_) return;
  MemoryBudget& budget = executor_.context().budget();
  const bool grew = held > held_;
  budget.add(static_cast<std::int64_t>(held) - static_cast<std::int64_t>(held_));
  held_ = held;
  if (grew && state_ != State::closed && budget.over_soft()) [[unlikely]]
    executor_.budget_pressure(*this);
}

void ConnectionCore::close(CloseReason reason, int error, std::string_view detail) {
  if (state_ == State::closed) return;
  const bool was_paused = paused();
  state_ = State::closed;
  if (batch_) {
    batch_->clear();
    batch_ = nullptr;
  }
  cancel_all_timers();
  ThreadStats& stats = executor_.stats();
  if (pending_ > 0) stats.bytes_pending.sub(pending_);
  pending_ = 0;
  if (was_paused) stats.connections_paused.sub();
  no_read_ &= ~kPaused;
  resume_due_ = drain_due_ = present_due_ = fin_owed_ = false;
  output_open_ = false;
  ServerContext& ctx = executor_.context();
  // The place under max_connections is free before connections_open counts the connection
  // closed: a client that comes once it has seen the count drop is admitted (on threaded the
  // accept thread reserves places while this thread still logs). An outbound connection holds
  // no place.
  if (!outbound_) ctx.release();
  if (opened_) {
    stats.connections_open.sub();
    ctx.log_disconnect(peer_, *local_, detail, requests_);
  } else if (outbound_) {
    if (reason == CloseReason::connect_failed || reason == CloseReason::connect_timeout) stats.connects_failed.add();
    ctx.log_connect_failed(peer_, detail);
  }
  if (link_) link_->sever();
  queue_.clear();
  queue_.release_if_empty();
  kept_.clear();
  kept_.release_if_empty();
  lent_ = 0;
  account();
  if (handler_held_ != 0) {
    executor_.context().budget().add(-static_cast<std::int64_t>(std::exchange(handler_held_, 0)));
  }
  executor_.detach(*this);
  // An outbound connection that never opened still hears why (connect_failed...).
  if (opened_ || outbound_) {
    const CloseInfo info{reason, error, detail};
    try {
      handler_->on_close(*this, info);
    } catch (const std::exception& e) {
      ctx.log().error("handler for {} threw in on_close: {}", peer_.to_string(), e.what());
    } catch (...) {
      ctx.log().error("handler for {} threw in on_close", peer_.to_string());
    }
  }
  if (!destroying_) transport_.release_socket();
  executor_.connection_closed();
}

// A handler method threw. What it wrote before the throw is owed to the peer as much as any
// reply, so it is flushed before the connection closes; the handler is not called again (but
// for on_close): its state is not to be trusted.
void ConnectionCore::handler_failed(std::string_view what) {
  executor_.stats().handler_errors.add();
  if (state_ == State::closed) {
    executor_.context().log().error("handler for {} failed: {}", peer_.to_string(), what);
    return;
  }
  handler_broken_ = true;
  for (const UserTimer& t : timers_) executor_.cancel_timer(t.executor);
  timers_.clear();
  std::string detail = fmt::format("handler error: {}", what);
  const bool owed = !queue_.empty() || lent_ != 0 || (batch_ && !batch_->empty());
  if (!owed) {
    executor_.context().log().error("handler for {} failed: {}; closing the connection", peer_.to_string(), what);
    close(CloseReason::handler_error, 0, detail);
    return;
  }
  executor_.context().log().error("handler for {} failed: {}; closing the connection after the replies it wrote",
                                  peer_.to_string(), what);
  if (state_ == State::open) {
    start_flush(CloseReason::handler_error, detail);
  } else {
    close_reason_ = CloseReason::handler_error;
    close_detail_ = std::make_unique<std::string>(std::move(detail));
  }
}

void ConnectionCore::start_idle_timer() {
  arm_idle_timer(last_activity_);
}

void ConnectionCore::arm_idle_timer(Clock::time_point from) {
  const auto timeout = executor_.context().options().idle_timeout;
  if (timeout.count() <= 0 || state_ == State::closed) return;
  // One timer per connection, re-armed only when it fires: activity just moves
  // last_activity_, so a busy connection costs no timer work per request.
  idle_timer_ = executor_.start_timer(from + timeout, [this, timeout] {
    idle_timer_ = kNoTimer;
    if (state_ != State::open) return;
    // Paused by the handler: not the peer's silence, so it does not count (resuming restarts
    // the clock). libuv and asio leave timeouts to the user; nginx's proxy_timeout, likewise,
    // runs only while the proxy itself waits to read or write.
    if (hand_paused()) {
      arm_idle_timer(executor_.now());
      return;
    }
    if (executor_.now() - last_activity_ >= timeout)
      close_idle();
    else
      start_idle_timer();
  });
}

void ConnectionCore::close_idle() {
  executor_.stats().connections_timed_out.add();
  close(CloseReason::idle_timeout, 0,
        fmt::format("idle for {} ms (idle_timeout)", executor_.context().options().idle_timeout.count()));
}

void ConnectionCore::run_task(const std::function<void(Connection&)>& task) {
  if (state_ == State::closed || handler_broken_) return;
  dispatch([&] { task(*this); });
  if (state_ != State::closed) transport_.settle();
}

void ConnectionCore::fill(std::uint64_t id, std::string&& bytes) {
  if (state_ == State::closed) return;
  if (!queue_.fill_deferred(id, std::move(bytes))) return;
  output_changed();
  if (state_ != State::closed) transport_.settle();
}

void ConnectionCore::spill_batch() {
  batch_->spill(0, queue_);
  batch_ = nullptr;
}

std::shared_ptr<ConnectionLink>& ConnectionCore::link() {
  if (!link_) {
    link_ = std::make_shared<ConnectionLink>(executor_.mailbox(), this,
                                             static_cast<std::uint32_t>(executor_.context().options().max_posted));
    if (executor_.interruptible_sockets()) link_->set_interruptible_fd(fd_);
  }
  return link_;
}

void ConnectionCore::settle_soon() {
  if (settle_timer_ != kNoTimer || state_ == State::closed) return;
  settle_timer_ = executor_.start_timer(executor_now(), [this] {
    settle_timer_ = kNoTimer;
    if (state_ != State::closed) transport_.settle();
  });
}

void ConnectionCore::cancel_all_timers() {
  if (idle_timer_ != kNoTimer) executor_.cancel_timer(std::exchange(idle_timer_, kNoTimer));
  if (send_timer_ != kNoTimer) executor_.cancel_timer(std::exchange(send_timer_, kNoTimer));
  if (linger_timer_ != kNoTimer) executor_.cancel_timer(std::exchange(linger_timer_, kNoTimer));
  if (settle_timer_ != kNoTimer) executor_.cancel_timer(std::exchange(settle_timer_, kNoTimer));
  for (const UserTimer& t : timers_) executor_.cancel_timer(t.executor);
  timers_.clear();
}

}  // namespace iomux::detail
