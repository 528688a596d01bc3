// The handler's side of a connection: iomux::Connection (what a handler calls during its own
// calls), ConnectionHandle (other threads' way in, through the mailbox) and DeferredReply. A
// Connection is a ConnectionCore seen through the public API; each method here forwards to the
// core's state on the connection's own thread.
#include <sys/socket.h>

#include <fmt/format.h>

#include <cassert>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "core/connection_core.hpp"
#include "core/executor.hpp"
#include "core/mailbox.hpp"
#include "core/output_queue.hpp"
#include "core/send_batch.hpp"
#include "core/server_context.hpp"
#include "iomux/handler.hpp"

namespace iomux::detail {
namespace {

ConnectionCore& core_of(Connection& c) noexcept {
  return static_cast<ConnectionCore&>(c);
}
const ConnectionCore& core_of(const Connection& c) noexcept {
  return static_cast<const ConnectionCore&>(c);
}

// Are `inner`'s bytes inside `outer`'s (the input of the current call)?
bool within(std::string_view inner, std::string_view outer) noexcept {
  std::less_equal<const char*> le;
  return !outer.empty() && le(outer.data(), inner.data()) &&
         le(inner.data() + inner.size(), outer.data() + outer.size());
}

}  // namespace

template <typename ToBatch, typename ToQueue>
void ConnectionCore::write_through(bool has_bytes, ToBatch&& to_batch, ToQueue&& to_queue) {
  assert(executor_.in_owner_thread());
  if (!has_bytes || !accepts_output()) [[unlikely]] {
    if (has_bytes) refuse_write();
    return;
  }
  if (batch_) {
    if (to_batch(*batch_)) return;
    spill_batch();
  }
  // Before the append, which stays the last call: the settle comes later anyway (a timer).
  touched();
  to_queue(queue_);
}

}  // namespace iomux::detail

namespace iomux {

using detail::ConnectionCore;
using detail::core_of;

void Connection::write(std::string_view bytes) {
  ConnectionCore& c = core_of(*this);
  // Bytes inside this call's input die when the call ends: they go as a view marked transient,
  // copied only if they are still unsent then; other bytes are copied at once.
  const bool transient = detail::within(bytes, c.input_);
  c.write_through(
      !bytes.empty(), [&](detail::SendBatch& b) { return transient ? b.add_view(bytes, true) : b.add_copy(bytes); },
      [&](detail::OutputQueue& q) { transient ? q.append_transient(bytes) : q.append_copy(bytes); });
}

void Connection::write_static(std::string_view bytes) {
  core_of(*this).write_through(
      !bytes.empty(), [&](detail::SendBatch& b) { return b.add_view(bytes, false); },
      [&](detail::OutputQueue& q) { q.append_stable(bytes); });
}

void Connection::write(std::string&& bytes) {
  core_of(*this).write_through(
      !bytes.empty(), [&](detail::SendBatch& b) { return b.add_owned(std::move(bytes)); },
      [&](detail::OutputQueue& q) { q.append_owned(std::move(bytes)); });
}

void Connection::write(std::unique_ptr<char[]> bytes, std::size_t size) {
  core_of(*this).write_through(
      size != 0, [&](detail::SendBatch& b) { return b.add_owned(bytes, size); },
      [&](detail::OutputQueue& q) { q.append_owned(std::move(bytes), size); });
}

void Connection::write(std::shared_ptr<const void> owner, std::string_view bytes) {
  core_of(*this).write_through(
      !bytes.empty() && owner, [&](detail::SendBatch& b) { return b.add_shared(owner, bytes); },
      [&](detail::OutputQueue& q) { q.append_shared(std::move(owner), bytes); });
}

void Connection::write(std::shared_ptr<const std::string> bytes) {
  if (!bytes) return;
  const std::string_view view(*bytes);
  write(std::shared_ptr<const void>(std::move(bytes)), view);
}

void Connection::set_handler_memory(std::size_t bytes) noexcept {
  ConnectionCore& c = core_of(*this);
  if (c.state_ == ConnectionCore::State::closed) return;
  if (bytes == c.handler_held_) return;
  detail::MemoryBudget& budget = c.executor_.context().budget();
  const bool grew = bytes > c.handler_held_;
  budget.add(static_cast<std::int64_t>(bytes) - static_cast<std::int64_t>(c.handler_held_));
  c.handler_held_ = bytes;
  // The budget acts later, from the executor's budget check: never inside a handler call,
  // where an eviction could close the connection under the handler's feet.
  if (grew && budget.over_soft()) c.executor_.budget_pressure_later();
}

DeferredReply Connection::defer() {
  ConnectionCore& c = core_of(*this);
  assert(c.executor_.in_owner_thread());
  if (!c.accepts_output()) {
    c.refuse_write();
    return {};
  }
  const std::size_t max = c.executor_.context().options().max_deferred;
  if (c.queue_.deferred_unfilled() >= max) {
    c.close(CloseReason::deferred_limit, 0, fmt::format("more than {} deferred replies unfilled (max_deferred)", max));
    return {};
  }
  if (c.batch_) c.spill_batch();  // what was written before must leave before this place
  const std::uint64_t id = c.queue_.append_deferred();
  return DeferredReply(c.link(), id);
}

void Connection::close_after_flush(std::string_view reason) {
  ConnectionCore& c = core_of(*this);
  assert(c.executor_.in_owner_thread());
  if (c.in_peer_shutdown_)
    c.start_flush(CloseReason::peer_closed, reason.empty() ? "closed by peer" : reason);
  else
    c.start_flush(CloseReason::closed_by_handler, reason.empty() ? "closed by handler" : reason);
  c.touched();
}

void Connection::close(std::string_view reason) {
  ConnectionCore& c = core_of(*this);
  assert(c.executor_.in_owner_thread());
  c.close(CloseReason::closed_by_handler, 0, reason.empty() ? "closed by handler" : reason);
}

std::size_t Connection::pending_output() const noexcept {
  const ConnectionCore& c = core_of(*this);
  return c.queue_.bytes() + c.lent_ + (c.batch_ ? c.batch_->bytes() : 0);
}

std::size_t Connection::deferred_outstanding() const noexcept {
  return core_of(*this).queue_.deferred_unfilled();
}

bool Connection::can_defer() const noexcept {
  const ConnectionCore& c = core_of(*this);
  return c.accepts_output() && c.queue_.deferred_unfilled() < c.executor_.context().options().max_deferred;
}

bool Connection::reading_paused() const noexcept {
  const ConnectionCore& c = core_of(*this);
  return c.paused() || c.hand_paused();
}

bool Connection::reading_paused_by_hand() const noexcept {
  return core_of(*this).hand_paused();
}

void Connection::pause_reading() noexcept {
  ConnectionCore& c = core_of(*this);
  assert(c.executor_.in_owner_thread());
  c.set_hand_paused(true);
  c.touched();
}

void Connection::resume_reading() noexcept {
  ConnectionCore& c = core_of(*this);
  assert(c.executor_.in_owner_thread());
  c.set_hand_paused(false);
  c.touched();
}

void Connection::notify_drain(std::size_t at_most) noexcept {
  ConnectionCore& c = core_of(*this);
  assert(c.executor_.in_owner_thread());
  if (c.state_ != ConnectionCore::State::open) return;
  if (pending_output() > at_most) {
    c.drain_notice_ = at_most;
    // The notice is looked at on output_changed()'s slow path, which a send takes only when
    // output was accounted as owed: output still in this call's batch, or queued since the
    // last accounting, could leave in one send and never be. So queue it and account it now.
    // (Looking at the notice on the fast path instead would cost every request.)
    if (c.batch_) c.spill_batch();
    c.output_changed_slow();
    return;
  }
  // Already there: on_drain after the current call, as for a notice that comes due.
  c.drain_notice_ = ConnectionCore::kNoNotice;
  c.resume_due_ = c.drain_due_ = true;
  c.touched();
}

void Connection::shutdown_write() {
  ConnectionCore& c = core_of(*this);
  assert(c.executor_.in_owner_thread());
  c.shut_output();
  c.touched();
}

bool Connection::write_shut() const noexcept {
  return core_of(*this).output_shut_;
}

void Connection::wait_for_drain() noexcept {
  ConnectionCore& c = core_of(*this);
  if (c.state_ == ConnectionCore::State::open) c.set_paused(ConnectionCore::kPausedDrain, true);
}

void Connection::set_max_input(std::size_t bytes) noexcept {
  core_of(*this).max_input_ = bytes;
}

std::size_t Connection::max_input() const noexcept {
  return core_of(*this).max_input_;
}

TimerId Connection::start_timer(std::chrono::milliseconds delay, std::function<void(Connection&)> callback) {
  ConnectionCore& c = core_of(*this);
  assert(c.executor_.in_owner_thread());
  if (c.state_ == ConnectionCore::State::closed) return kNoTimer;
  const TimerId id = c.next_timer_++;
  const TimerId executor_id =
      c.executor_.start_timer(c.executor_.now() + delay, [&c, id, callback = std::move(callback)] {
        std::erase_if(c.timers_, [id](const ConnectionCore::UserTimer& t) { return t.id == id; });
        c.run_task(callback);
      });
  c.timers_.push_back({id, executor_id});
  return id;
}

bool Connection::cancel_timer(TimerId id) {
  ConnectionCore& c = core_of(*this);
  assert(c.executor_.in_owner_thread());
  auto it = std::find_if(c.timers_.begin(), c.timers_.end(), [id](const auto& t) { return t.id == id; });
  if (it == c.timers_.end()) return false;
  c.executor_.cancel_timer(it->executor);
  c.timers_.erase(it);
  return true;
}

ConnectionHandle Connection::handle() {
  ConnectionCore& c = core_of(*this);
  assert(c.executor_.in_owner_thread());
  if (c.state_ == ConnectionCore::State::closed) return {};
  return ConnectionHandle(c.link());
}

Loop& Connection::loop() const noexcept {
  return core_of(*this).executor_;
}

TimerId Loop::start_timer(std::chrono::milliseconds delay, std::function<void()> callback) {
  auto& e = static_cast<detail::Executor&>(*this);
  if (!callback) return kNoTimer;
  return e.start_loop_timer(e.now() + delay, std::move(callback));
}

bool Loop::cancel_timer(TimerId id) {
  return static_cast<detail::Executor&>(*this).cancel_loop_timer(id);
}

LoopHandle Loop::handle() {
  auto& e = static_cast<detail::Executor&>(*this);
  e.loop_handle_taken();
  return LoopHandle(e.mailbox(), this);
}

std::chrono::steady_clock::time_point Loop::now() const noexcept {
  return static_cast<const detail::Executor&>(*this).now();
}

ConnectionHandle Loop::connect(const Endpoint& to, std::unique_ptr<Handler> handler, ConnectOptions options) {
  auto& e = static_cast<detail::Executor&>(*this);
  assert(e.in_owner_thread());
  if (!handler) throw std::invalid_argument("Loop::connect: no handler");
  if (to.family() != AF_INET && to.family() != AF_INET6 && !to.is_unix())
    throw std::invalid_argument("Loop::connect: not an address to connect to: " + to.to_string());
  detail::ConnectionCore* core = e.connect_out(to, std::move(handler), options);
  return core ? static_cast<Connection&>(*core).handle() : ConnectionHandle();
}

PostResult LoopHandle::post(std::function<void()> task) const {
  if (!mailbox_ || !task) return PostResult::gone;
  return mailbox_->post_job(std::move(task));
}

PostResult LoopHandle::post(std::function<void(Loop&)> task) const {
  // Checked before it is wrapped: the wrapper is never empty.
  if (!task) return PostResult::gone;
  return post(std::function<void()>([loop = loop_, task = std::move(task)] { task(*loop); }));
}

const Endpoint& Connection::peer() const noexcept {
  return core_of(*this).peer_;
}

const Endpoint& Connection::local() const noexcept {
  return *core_of(*this).local_;
}

bool Connection::is_open() const noexcept {
  return core_of(*this).state_ != ConnectionCore::State::closed;
}

std::chrono::steady_clock::time_point Connection::now() const noexcept {
  return core_of(*this).executor_.now();
}

void Connection::count_requests(std::uint64_t n) noexcept {
  ConnectionCore& c = core_of(*this);
  c.requests_ += n;
  c.executor_.stats().requests.add(n);
}

std::uint64_t Connection::requests() const noexcept {
  return core_of(*this).requests_;
}

Logger& Connection::log() const noexcept {
  return core_of(*this).executor_.context().log();
}

std::string_view Connection::model() const noexcept {
  return core_of(*this).executor_.context().options().model;
}

StatsSnapshot Connection::server_stats() const {
  return core_of(*this).executor_.context().server_stats();
}

bool Connection::server_handing_over() const noexcept {
  return core_of(*this).executor_.context().listeners_handed_over();
}

// ------------------------------------------------------------------ handles, deferred replies

PostResult ConnectionHandle::post(std::function<void(Connection&)> task) const {
  if (!link_ || !task) return PostResult::gone;
  return link_->post_task(link_, std::move(task));
}

PostResult ConnectionHandle::write(std::string bytes) const {
  return post([bytes = std::move(bytes)](Connection& c) mutable { c.write(std::move(bytes)); });
}

PostResult ConnectionHandle::write(std::shared_ptr<const std::string> bytes) const {
  if (!bytes) return link_ ? PostResult::posted : PostResult::gone;
  return post([bytes = std::move(bytes)](Connection& c) mutable { c.write(std::move(bytes)); });
}

PostResult ConnectionHandle::close() const {
  if (!link_) return PostResult::gone;
  return link_->post_close(link_);
}

bool ConnectionHandle::open() const noexcept {
  return link_ && link_->open();
}

DeferredReply::DeferredReply(DeferredReply&& other) noexcept
    : link_(std::move(other.link_)), id_(std::exchange(other.id_, 0)) {}

DeferredReply& DeferredReply::operator=(DeferredReply&& other) noexcept {
  if (this != &other) {
    if (link_) link_->post_fill(link_, id_, {});
    link_ = std::move(other.link_);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

DeferredReply::~DeferredReply() {
  // Unfilled: fill it with nothing, so the replies behind it are not held forever.
  if (link_) link_->post_fill(link_, id_, {});
}

bool DeferredReply::fill(std::string bytes) {
  if (!link_) return false;
  const std::shared_ptr<detail::ConnectionLink> link = std::move(link_);
  return link->post_fill(link, id_, std::move(bytes));
}

std::string_view to_string(CloseReason reason) noexcept {
  switch (reason) {
    case CloseReason::peer_closed:
      return "peer closed";
    case CloseReason::peer_reset:
      return "peer reset";
    case CloseReason::closed_by_handler:
      return "closed by handler";
    case CloseReason::input_limit:
      return "input limit";
    case CloseReason::output_limit:
      return "output limit";
    case CloseReason::send_timeout:
      return "send timeout";
    case CloseReason::deferred_limit:
      return "deferred limit";
    case CloseReason::memory_budget:
      return "memory budget";
    case CloseReason::idle_timeout:
      return "idle timeout";
    case CloseReason::handler_error:
      return "handler error";
    case CloseReason::server_stopped:
      return "server stopped";
    case CloseReason::connect_failed:
      return "connect failed";
    case CloseReason::connect_timeout:
      return "connect timeout";
  }
  return "?";
}

}  // namespace iomux
