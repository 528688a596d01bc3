#include "core/executor.hpp"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/connection_core.hpp"
#include "core/server_context.hpp"
#include "core/thread_stats.hpp"

namespace iomux::detail {
namespace {

// While connections of this thread are paused by the budget: how often to look whether usage
// fell back under the soft mark.
constexpr std::chrono::milliseconds kBudgetCheckPeriod{100};

}  // namespace

Executor::Executor(ServerContext& ctx, ThreadStats& stats, SendBatch* batch, std::function<void()> wake)
    : ctx_(ctx), stats_(stats), batch_(batch), mailbox_(std::make_shared<Mailbox>(std::move(wake))) {
  mailbox_->set_max_jobs(static_cast<std::uint32_t>(std::min<std::size_t>(ctx.options().max_posted, UINT32_MAX)));
}

void Executor::bind_to_current_thread() {
  owner_ = std::this_thread::get_id();
  // Only now may other threads post to it for the budget: the wake function calls into the
  // engine's part of the object, which does not exist yet while Executor's constructor runs.
  ctx_.budget().enlist(mailbox_);
}

Executor::~Executor() {
  mailbox_->close();
}

void Executor::close_mailbox() {
  mailbox_->close();
}

void Executor::deliver_mail_slow() {
  assert(in_owner_thread());
  letters_.clear();
  mailbox_->take(letters_);
  for (Letter& letter : letters_) {
    if (letter.kind == Letter::Kind::sweep) {
      sweep_stalled();
      continue;
    }
    if (letter.kind == Letter::Kind::stop) {
      on_stop(static_cast<StopMode>(letter.deferred_id));
      continue;
    }
    if (letter.kind == Letter::Kind::job) {
      mailbox_->job_done();
      run_loop_job(letter.job);
      continue;
    }
    ConnectionCore* core = letter.link->core();
    switch (letter.kind) {
      case Letter::Kind::task:
        letter.link->task_done();
        if (core) core->run_task(letter.task);
        break;
      case Letter::Kind::fill:
        if (core) core->fill(letter.deferred_id, std::move(letter.bytes));
        break;
      case Letter::Kind::close:
        if (core) core->close(CloseReason::closed_by_handler, 0, "closed through its handle");
        break;
      case Letter::Kind::sweep:
      case Letter::Kind::stop:
      case Letter::Kind::job:
        break;
    }
  }
  letters_.clear();  // the tasks' captures die here, on the owner thread
}

namespace {
// Loop timers' ids are apart from connections' (Connection::start_timer counts from 1 per
// connection), so a connection's id given to Loop::cancel_timer matches nothing.
constexpr TimerId kLoopTimerBit = TimerId{1} << 63;
}  // namespace

TimerId Executor::start_loop_timer(Clock::time_point when, std::function<void()> callback) {
  assert(in_owner_thread());
  // The id is known only once started: the callback finds it through the slot.
  auto id_slot = std::make_shared<TimerId>(kNoTimer);
  const TimerId id = start_timer(when, [this, id_slot, callback = std::move(callback)] {
    std::erase(loop_timers_, *id_slot);
    run_loop_job(callback);
  });
  *id_slot = id;
  loop_timers_.push_back(id);
  return id | kLoopTimerBit;
}

bool Executor::cancel_loop_timer(TimerId id) {
  assert(in_owner_thread());
  if ((id & kLoopTimerBit) == 0) return false;
  const auto it = std::find(loop_timers_.begin(), loop_timers_.end(), id & ~kLoopTimerBit);
  if (it == loop_timers_.end()) return false;
  const TimerId executor_id = *it;
  loop_timers_.erase(it);
  return cancel_timer(executor_id);
}

void Executor::run_loop_job(const std::function<void()>& job) noexcept {
  try {
    job();
    return;
  } catch (const std::exception& e) {
    ctx_.log().error("a loop task or timer threw: {}", e.what());
  } catch (...) {
    ctx_.log().error("a loop task or timer threw an exception that is not a std::exception");
  }
  stats_.handler_errors.add();
}

void Executor::request_stop(StopMode mode) noexcept {
  try {
    mailbox_->post(Letter{Letter::Kind::stop, nullptr, {}, static_cast<std::uint64_t>(mode), {}, {}});
  } catch (...) {
    // Out of memory for the letter: nothing better to do than to try again later; the caller
    // may (a second stop is always allowed).
  }
}

void Executor::on_stop(StopMode mode) {
  if (mode == StopMode::immediate || draining_) {
    draining_ = true;
    stop_accepting();
    close_all("server stopped");
    if (drain_timer_ != kNoTimer) cancel_timer(std::exchange(drain_timer_, kNoTimer));
    finish();
    return;
  }
  draining_ = true;
  stop_accepting();
  for (ConnectionCore* c = first_; c;) {
    ConnectionCore* next = c->next_in_executor;  // drain() may close (and unlink) it
    c->drain();
    c = next;
  }
  drain_timer_ = start_timer(now() + ctx_.options().drain_timeout, [this] {
    drain_timer_ = kNoTimer;
    close_all("drain timeout");
    finish();
  });
  connection_closed();
}

ConnectionCore* Executor::connect_out(const Endpoint& to, std::unique_ptr<Handler>, ConnectOptions) {
  throw std::logic_error("Loop::connect to " + to.to_string() + ": not supported on the " + ctx_.options().model +
                         " model yet");
}

void Executor::close_all(std::string_view why) {
  for (ConnectionCore* c = first_; c;) {
    ConnectionCore* next = c->next_in_executor;
    c->close(CloseReason::server_stopped, 0, why);
    c = next;
  }
}

void Executor::connection_closed() {
  if (!draining_ || first_ != nullptr || drain_timer_ == kNoTimer) return;
  cancel_timer(std::exchange(drain_timer_, kNoTimer));
  finish();
}

void Executor::attach(ConnectionCore& core) noexcept {
  core.prev_in_executor = nullptr;
  core.next_in_executor = first_;
  if (first_) first_->prev_in_executor = &core;
  first_ = &core;
}

void Executor::detach(ConnectionCore& core) noexcept {
  if (core.prev_in_executor)
    core.prev_in_executor->next_in_executor = core.next_in_executor;
  else if (first_ == &core)
    first_ = core.next_in_executor;
  if (core.next_in_executor) core.next_in_executor->prev_in_executor = core.prev_in_executor;
  core.prev_in_executor = core.next_in_executor = nullptr;
}

void Executor::budget_pressure(ConnectionCore& grown) {
  MemoryBudget& budget = ctx_.budget();
  if (evicting_) return;  // an eviction below closes connections, which account again
  // `grown` makes progress: before it waits, the holders that make none go.
  evict_stalled();
  evict_over_limit();
  // Over the soft mark: a large holder that grows stops reading until usage falls again.
  if (grown.state() != ConnectionCore::State::closed && budget.over_soft() &&
      grown.held() >= budget.pause_threshold() && !grown.budget_paused()) {
    grown.set_budget_paused(true);
    schedule_budget_check();
  }
}

void Executor::schedule_budget_check() {
  if (budget_timer_ != kNoTimer) return;
  budget_timer_ = start_timer(now() + kBudgetCheckPeriod, [this] {
    budget_timer_ = kNoTimer;
    budget_check();
  });
}

// Over the limit: closes the largest holders of this thread until usage is back under it.
void Executor::evict_over_limit() {
  MemoryBudget& budget = ctx_.budget();
  if (evicting_) return;
  evicting_ = true;
  while (budget.over_limit()) {
    ConnectionCore* largest = nullptr;
    for (ConnectionCore* c = first_; c; c = c->next_in_executor)
      if (c->state() != ConnectionCore::State::closed && (!largest || c->held() > largest->held())) largest = c;
    if (!largest || largest->held() == 0) break;
    stats_.connections_evicted.add();
    ctx_.log_eviction(largest->peer_endpoint(), largest->held());
    largest->close(CloseReason::memory_budget, 0, "evicted: the server is over max_memory");
  }
  evicting_ = false;
}

void Executor::budget_check() {
  if (ctx_.budget().over_soft()) {
    evict_stalled();
    evict_over_limit();
  }
  bool any = false;
  for (ConnectionCore* c = first_; c && !any; c = c->next_in_executor) any = c->budget_paused();
  if (!any) return;
  if (ctx_.budget().over_soft()) {
    // The stalled holders may live on other threads: ask them to look too.
    ctx_.budget().ask_all_to_sweep(mailbox_.get());
    schedule_budget_check();
    return;
  }
  // Under the soft mark again: every connection the budget paused reads again. Resuming runs
  // handlers, which may close their own connection (hence `next` first), but no eviction may
  // close another one meanwhile.
  evicting_ = true;
  for (ConnectionCore* c = first_; c;) {
    ConnectionCore* next = c->next_in_executor;
    if (c->budget_paused()) c->set_budget_paused(false);
    c = next;
  }
  evicting_ = false;
}

// Over the soft mark: closes the holders that make no progress, largest first, until usage is
// back under it. A sweep letter from another thread asks for the same.
void Executor::sweep_stalled() {
  if (!ctx_.budget().over_soft()) return;
  evict_stalled();
  if (!ctx_.budget().over_soft()) budget_check();  // what this thread paused may read again
}

void Executor::evict_stalled() {
  MemoryBudget& budget = ctx_.budget();
  if (evicting_ || !budget.over_soft()) return;
  const Clock::time_point t = now();
  std::vector<ConnectionCore*> stalled;
  for (ConnectionCore* c = first_; c; c = c->next_in_executor)
    if (c->stalled_holder(t, budget.pause_threshold())) stalled.push_back(c);
  if (stalled.empty()) return;
  std::sort(stalled.begin(), stalled.end(),
            [](const ConnectionCore* a, const ConnectionCore* b) { return a->held() > b->held(); });
  evicting_ = true;
  for (ConnectionCore* c : stalled) {
    if (!budget.over_soft()) break;
    stats_.connections_evicted.add();
    ctx_.log_eviction(c->peer_endpoint(), c->held());
    c->close(CloseReason::memory_budget, 0,
             "evicted: it made no progress while the server was near max_memory and others waited");
  }
  evicting_ = false;
}

}  // namespace iomux::detail
