// The completion loop: submit-and-wait, a batch of CQEs, bookkeeping; plus what is not a
// connection's own business — the listener's multishot accept, the wake-up read that lets the
// mailbox (mail, stop) in, timers and the stall probes. Per-connection IO is in
// uring_transport.cpp; the graceful drain is the Executor's.
#include "uring/uring_loop.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

#include "core/socket.hpp"
#include "iomux/error.hpp"

namespace iomux::detail::uring {
namespace {

constexpr unsigned kSqEntries = 2048;  // SQEs one batch may queue before an early submit
constexpr unsigned kCqEntries = 8192;  // completions one wait may bring; overflow is not lost
// How long teardown waits for the final CQEs of cancelled requests.
constexpr std::chrono::milliseconds kTeardownLimit{2000};
// Stall probes (probe_stalled_recvs): how long a connection with a recv armed must have been
// quiet before the probe looks at its socket, and how often the sweep runs for them.
constexpr std::chrono::milliseconds kStallProbeDelay{1000};
constexpr std::chrono::milliseconds kProbeSweepPeriod{250};
// The sweep for a failed accept to retry, or a drain's deadline.
constexpr std::chrono::milliseconds kSweepPeriod{100};
// How long the loop may wait while requests that found no free SQE are still to be made.
constexpr std::chrono::milliseconds kSqeRetryDelay{1};
// Connections a loop takes off a listener's queue after its accept was cancelled (take_queued).
constexpr int kLateAcceptBurst = 64;

// Multishot recvs where they can be bounded (see arm_recv). IOMUX_URING_RECV=oneshot forces the
// one-shot recvs that kernels before 6.16 get: for the tests of that path, and for comparing.
bool use_multishot_recv(const Ring& ring) {
  const char* forced = std::getenv("IOMUX_URING_RECV");
  if (forced && std::string_view(forced) == "oneshot") return false;
  return ring.defers_task_work() && kernel_limits_multishot_recv();
}

__kernel_timespec to_timespec(Clock::duration d) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::max(d, Clock::duration::zero()));
  return {static_cast<long long>(ns.count() / 1'000'000'000), static_cast<long long>(ns.count() % 1'000'000'000)};
}

}  // namespace

UringLoop::UringLoop(ServerContext& ctx, std::vector<SharedListener> listeners)
    : Executor(ctx, stats_, /*batch=*/nullptr,
               [this] {
                 const std::uint64_t one = 1;
                 [[maybe_unused]] ssize_t n = ::write(wake_fd_.get(), &one, sizeof one);
               }),
      ring_(kSqEntries, kCqEntries),
      pool_(*ring_.get()),
      multishot_recv_(use_multishot_recv(ring_)),
      // Blocking on purpose: io_uring returns EAGAIN for a read of an O_NONBLOCK file instead
      // of waiting for it. (stop() cannot block on it: the counter never nears its limit.)
      wake_fd_(::eventfd(0, EFD_CLOEXEC)) {
  if (!wake_fd_) throw ServerError(std::string("eventfd: ") + std::strerror(errno));
  for (std::size_t i = 0; i < listeners.size(); ++i)
    listeners_.push_back({std::move(listeners[i]), &ctx.listening_on().at(i)});
  use_clock(now_);
}

// The mailbox first: no wake-up may reach the eventfd after it closes. Then the ring: until it
// is torn down the kernel may still use pool_'s memory.
UringLoop::~UringLoop() {
  close_mailbox();
  ring_.close();
}

void UringLoop::run() {
  bind_to_current_thread();
  ring_.bind_to_this_thread();
  now_ = Clock::now();
  next_sweep_ = now_;
  arm_wake();
  for (std::uint32_t i = 0; i < listeners_.size(); ++i) arm_accept(i);
  deliver_mail();  // stop() may have come before run()
  std::string failure;
  while (!done_) {
    failure = wait_for_completions();
    if (!failure.empty()) break;
    handle_batch();
    after_batch();
  }
  teardown();
  close_mailbox();
  ring_.unbind_from_this_thread();
  // As a failed epoll_wait does in the reactor: the server stops (LoopGroupServer).
  if (!failure.empty()) throw ServerError(failure);
}

void UringLoop::stop(StopMode mode) noexcept {
  if (mode == StopMode::immediate) cut_.store(true, std::memory_order_relaxed);
  request_stop(mode);
}

void UringLoop::stop_accepting() {
  stop_listener();
}

void UringLoop::finish() {
  finish_requested_ = true;
  if (!accepts_in_flight()) done_ = true;
}

bool UringLoop::accepts_in_flight() const noexcept {
  for (const Listening& l : listeners_)
    if (l.armed) return true;
  return false;
}

TimerId UringLoop::start_timer(Clock::time_point when, std::function<void()> callback) {
  return timers_.start(when, std::move(callback));
}

bool UringLoop::cancel_timer(TimerId id) {
  return timers_.cancel(id);
}

// ---------------------------------------------------------------------------------- the loop

// The one syscall of an iteration: submits everything queued and sleeps until a completion
// (or until the next timer or sweep is due). Returns why the ring failed, or "".
std::string UringLoop::wait_for_completions() {
  std::optional<Clock::time_point> deadline = timers_.next_deadline();
  if (sweeps_active()) deadline = deadline ? std::min(*deadline, next_sweep_) : next_sweep_;
  // Requests that found no SQE wait for the next batch: do not sleep long without them (the
  // wake-up read may be one of them).
  if (sqe_retries_.due()) deadline = Clock::now() + kSqeRetryDelay;
  int rc;
  if (deadline) {
    __kernel_timespec ts = to_timespec(*deadline - Clock::now());
    io_uring_cqe* cqe = nullptr;
    rc = io_uring_submit_and_wait_timeout(ring_.get(), &cqe, 1, &ts, nullptr);
  } else {
    rc = io_uring_submit_and_wait(ring_.get(), 1);
  }
  if (rc >= 0 || rc == -ETIME || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY) return {};
  return std::string("io_uring_enter failed: ") + std::strerror(-rc);
}

// Every completion that is ready, then one store to the CQ head for all of them.
void UringLoop::handle_batch() {
  now_ = Clock::now();
  unsigned head;
  unsigned seen = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(ring_.get(), head, cqe) {
    dispatch(*cqe);
    ++seen;
  }
  io_uring_cq_advance(ring_.get(), seen);
}

void UringLoop::dispatch(const io_uring_cqe& cqe) {
  const Tag t = unpack(cqe.user_data);
  switch (t.op) {
    case Op::accept:
      on_accept(t.slot, cqe);
      return;
    case Op::wake:
      on_wake(cqe);
      return;
    case Op::cancel:
      --in_flight_;
      return;  // the cancelled request reports for itself
    case Op::recv:
    case Op::send:
    case Op::connect:
      break;
  }
  if (t.slot >= conns_.size() || (conns_[t.slot].generation & kGenerationMask) != t.generation) {
    // Cannot happen while slots outlive their requests; if it does, at least the buffer goes
    // home and the newer connection in the slot is left alone.
    if (cqe.flags & IORING_CQE_F_BUFFER)
      pool_.give_back(static_cast<std::uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT));
    if (!(cqe.flags & IORING_CQE_F_MORE)) --in_flight_;
    context().log().warn("uring: stale completion for slot {} ignored", t.slot);
    return;
  }
  if (t.op == Op::recv)
    on_recv(t.slot, cqe);
  else if (t.op == Op::send) [[likely]]
    on_send(t.slot, cqe);
  else
    on_connect(t.slot, cqe);
}

void UringLoop::after_batch() {
  // finish() waited for the cancelled accepts' last CQEs and the connections they brought.
  if (finish_requested_ && !done_ && !accepts_in_flight() && !has_connections()) {
    if (late_drain_timer_ != kNoTimer) cancel_timer(std::exchange(late_drain_timer_, kNoTimer));
    done_ = true;
  }
  pool_.publish();  // every buffer given back in the batch, in one store
  if (sqe_retries_.due()) retry_sqes();
  if (!starved_.empty()) {
    // Recvs that found the ring empty. The batch has just given buffers back; if the ring
    // still ran dry, grow it (up to its cap) so the next burst fits.
    if (pool_.grow()) {
      pool_.publish();
      context().log().debug("uring: receive buffers grown to {}", pool_.total());
    }
    for (std::uint64_t t : starved_) {
      const Tag tag = unpack(t);
      UringTransport& c = conns_[tag.slot];
      if ((c.generation & kGenerationMask) != tag.generation) continue;
      c.starved = false;
      if (!c.closed()) apply_reading(tag.slot);
    }
    starved_.clear();
  }
  timers_.run_expired(now_);
  deliver_mail();
  if (sweeps_active() && now_ >= next_sweep_) sweep();
  for (std::size_t i = 0; i < to_release_.size(); ++i) release_if_idle(to_release_[i]);
  to_release_.clear();
}

// Closes what is left and waits (bounded) for the final CQE of every request, so no buffer
// is freed while the kernel may still use it.
void UringLoop::teardown() {
  done_ = true;
  close_all("server stopped");
  stop_listener();
  if (wake_armed_) cancel(pack(Op::wake));
  const Clock::time_point limit = Clock::now() + kTeardownLimit;
  while (in_flight_ > 0 && now_ < limit) {
    __kernel_timespec ts = to_timespec(std::chrono::milliseconds(50));
    io_uring_cqe* cqe = nullptr;
    int rc = io_uring_submit_and_wait_timeout(ring_.get(), &cqe, 1, &ts, nullptr);
    if (rc < 0 && rc != -ETIME && rc != -EINTR) break;
    handle_batch();
    pool_.publish();
  }
  for (std::uint32_t slot : to_release_) release_if_idle(slot);
  to_release_.clear();
  if (in_flight_ > 0) context().log().warn("uring: {} requests still in flight at exit", in_flight_);
}

// After a batch in which Ring::sqe() found no room: the requests it could not make, again (each
// queues itself for the next batch if there is still none). Stale tags are skipped.
void UringLoop::retry_sqes() {
  SqeRetries due = std::move(sqe_retries_);
  sqe_retries_ = {};
  const auto live = [this](std::uint64_t t) -> UringTransport* {
    const Tag tag = unpack(t);
    UringTransport& c = conns_[tag.slot];
    return (c.generation & kGenerationMask) == tag.generation && !c.closed() ? &c : nullptr;
  };
  if (due.wake && !wake_armed_ && !done_) arm_wake();
  for (std::uint64_t t : due.cancels) cancel(t);
  for (std::uint64_t t : due.recvs)
    if (UringTransport* c = live(t); c && !c->recv_armed) apply_reading(c->slot);
  for (std::uint64_t t : due.sends)
    if (UringTransport* c = live(t); c && !c->send_inflight) settle(c->slot);
}

void UringLoop::cancel(std::uint64_t user_data) {
  io_uring_sqe* sqe = ring_.sqe();
  if (!sqe) {
    sqe_retries_.cancels.push_back(user_data);
    return;
  }
  io_uring_prep_cancel64(sqe, user_data, 0);
  io_uring_sqe_set_data64(sqe, pack(Op::cancel));
  ++in_flight_;
}

// ------------------------------------------------------------------------------ the listener

void UringLoop::arm_accept(std::uint32_t index) {
  Listening& l = listeners_[index];
  io_uring_sqe* sqe = ring_.sqe();
  if (!sqe) {
    l.retry = accept_retry_ = true;  // the sweep tries again
    return;
  }
  // Multishot: one SQE, a CQE per accepted connection, until it fails or is cancelled. It
  // gives no peer address (there is one sockaddr buffer for all of them): adopt() asks.
  io_uring_prep_multishot_accept(sqe, l.socket->fd(), nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, pack(Op::accept, index));
  l.armed = true;
  ++in_flight_;
}

void UringLoop::on_accept(std::uint32_t index, const io_uring_cqe& cqe) {
  Listening& l = listeners_[index];
  const bool accepting = !draining() && !done_;
  if (!(cqe.flags & IORING_CQE_F_MORE)) {
    l.armed = false;
    --in_flight_;
  }
  if (cqe.res >= 0) {
    UniqueFd fd(cqe.res);
    if (accepting) {
      adopt(std::move(fd), index);
    } else if (!done_ && !cut_.load(std::memory_order_relaxed)) {
      // Accepted in the race with the cancel: the kernel took it off the queue, so no other
      // process (an upgrade's successor) can serve it.
      adopt_late(std::move(fd), index);
    }                                  // else: stopping now, the fd just closes
  } else if (cqe.res != -ECANCELED) {  // cancelled: stop_listener() asked for it
    bool shed_more = true;
    switch (context().accept_failed(-cqe.res, l.socket->fd(), spare_, stats_, &shed_more)) {
      case AcceptFailure::out_of_fds:
        if (!shed_more) l.retry = accept_retry_ = true;  // cannot shed: wait for fds (the sweep retries)
        break;
      case AcceptFailure::transient:  // ENOBUFS, ENOMEM: retry at the next sweep, not at once
        l.retry = accept_retry_ = true;
        break;
      default:
        break;
    }
  }
  if (l.armed) return;
  if (!accepting) {
    if (!done_ && !cut_.load(std::memory_order_relaxed)) take_queued(index);
    l.socket.reset();
  } else if (!l.retry)
    arm_accept(index);
}

void UringLoop::adopt_late(UniqueFd fd, std::uint32_t index) {
  // Served as the drain serves the others: what it sent is answered, then it closes.
  const auto slot = adopt(std::move(fd), index);
  if (!slot) return;
  conns_[*slot].core->drain();
  if (finish_requested_ && late_drain_timer_ == kNoTimer)
    late_drain_timer_ = start_timer(now_ + context().options().drain_timeout, [this] {
      late_drain_timer_ = kNoTimer;
      close_all("drain timeout");
    });
}

// A multishot accept waits on the listener exclusively: a new connection wakes one waiter.
// When the one woken was this loop's accept, cancelled before it took the connection, the
// wake-up is spent, and a listener shared with another process (an upgrade's successor, whose
// accept waits as well) would keep the connection queued, unseen, until the next one arrives.
// So once the accept is gone, what is queued is taken here (non-blocking accepts, a burst at
// most: the other process is woken by whatever comes later) and served in the drain.
void UringLoop::take_queued(std::uint32_t index) {
  const int listen_fd = listeners_[index].socket->fd();
  for (int i = 0; i < kLateAcceptBurst; ++i) {
    UniqueFd fd(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // EAGAIN: nothing queued; anything else: nothing to take now
    }
    adopt_late(std::move(fd), index);
  }
}

std::optional<std::uint32_t> UringLoop::adopt(UniqueFd fd, std::uint32_t index) {
  const Listening& l = listeners_[index];
  const Endpoint peer = peer_endpoint(fd.get());
  std::unique_ptr<Handler> handler = context().admit(stats_, peer);
  if (!handler) return std::nullopt;
  // Replies are whole messages: never hold one back for Nagle (TCP only).
  if (l.socket->tcp()) set_no_delay(fd.get());
  const std::uint32_t slot = take_slot(std::move(fd));
  UringTransport& c = conns_[slot];
  c.core.emplace(*this, c, std::move(handler), peer, *l.local, c.fd.get());
  c.core->open([this, slot] { return sender(slot); });
  if (c.closed()) return std::nullopt;
  c.core->start_idle_timer();
  apply_reading(slot);
  return slot;
}

std::uint32_t UringLoop::take_slot(UniqueFd fd) {
  std::uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(conns_.size());
    conns_.emplace_back();
  }
  UringTransport& c = conns_[slot];
  c.owner = this;
  c.slot = slot;
  c.fd = std::move(fd);
  c.last_recv = now_;
  return slot;
}

ConnectionCore* UringLoop::connect_out(const Endpoint& to, std::unique_ptr<Handler> handler, ConnectOptions options) {
  // Blocking, as the accepted sockets are: io_uring waits on it for the loop.
  UniqueFd sock = open_outbound_socket(to, /*non_blocking=*/false);
  const int fd = sock.get();
  const std::uint32_t slot = take_slot(std::move(sock));
  UringTransport& c = conns_[slot];
  c.outbound = std::make_unique<UringTransport::Outbound>();
  c.core.emplace(*this, c, std::move(handler), to, c.outbound->local, fd, /*outbound=*/true);
  // The kernel reads the address until the CQE: the core's copy, which lives as long as the
  // slot, and the slot is not released while the connect is in flight (busy()).
  const Endpoint& peer = c.core->peer_endpoint();
  io_uring_sqe* sqe = ring_.sqe();
  if (!sqe) {
    io_uring_submit(ring_.get());
    sqe = ring_.sqe();
  }
  if (!sqe) {
    // The kernel holds every submission back: report it from a timer, after connect() returned.
    c.outbound->timer = timers_.start(now_, [this, slot] {
      conns_[slot].outbound->timer = kNoTimer;
      conns_[slot].core->close(CloseReason::connect_failed, EAGAIN, "connect: no submission queue entry free");
    });
    return &*c.core;
  }
  io_uring_prep_connect(sqe, fd, peer.sockaddr_ptr(), peer.sockaddr_len());
  io_uring_sqe_set_data64(sqe, tag(Op::connect, slot));
  c.connect_inflight = true;
  ++in_flight_;
  if (options.timeout.count() > 0)
    c.outbound->timer = timers_.start(now_ + options.timeout, [this, slot, timeout = options.timeout] {
      UringTransport& t = conns_[slot];
      t.outbound->timer = kNoTimer;
      t.core->close(CloseReason::connect_timeout, ETIMEDOUT,
                    "connect to " + t.core->peer_endpoint().to_string() + ": not established within " +
                        std::to_string(timeout.count()) + " ms");
    });
  return &*c.core;
}

void UringLoop::on_connect(std::uint32_t slot, const io_uring_cqe& cqe) {
  UringTransport& c = conns_[slot];
  c.connect_inflight = false;
  --in_flight_;
  if (c.closed()) {  // timed out (the cancel's CQE, -ECANCELED), or closed through its handle
    release_if_idle(slot);
    return;
  }
  if (c.outbound->timer != kNoTimer) timers_.cancel(std::exchange(c.outbound->timer, kNoTimer));
  ConnectionCore& core = *c.core;
  if (cqe.res < 0) {
    const int err = -cqe.res;
    core.close(CloseReason::connect_failed, err,
               "connect to " + core.peer_endpoint().to_string() + ": " + describe_errno(err));
    release_if_idle(slot);
    return;
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(c.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0)
    c.outbound->local = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  // A relay's bytes are whole messages already: never hold them back for Nagle (TCP only).
  if (!core.peer_endpoint().is_unix()) set_no_delay(c.fd.get());
  core.connected();
  // What was written while connecting goes now; then as adopt() does for an accepted one.
  core.open([this, slot] { return sender(slot); });
  if (c.closed()) {
    release_if_idle(slot);
    return;
  }
  core.start_idle_timer();
  apply_reading(slot);
}

// Stops accepting: cancels each multishot accept; its final CQE closes the listener (closing
// it first would not stop a request that holds a reference to the socket).
void UringLoop::stop_listener() {
  accept_retry_ = false;
  for (std::uint32_t i = 0; i < listeners_.size(); ++i) {
    Listening& l = listeners_[i];
    l.retry = false;
    if (l.armed)
      cancel(pack(Op::accept, i));
    else
      l.socket.reset();
  }
}

// ---------------------------------------------------------------------- stop, drain, sweeps

void UringLoop::arm_wake() {
  io_uring_sqe* sqe = ring_.sqe();
  if (!sqe) {
    sqe_retries_.wake = true;
    return;
  }
  io_uring_prep_read(sqe, wake_fd_.get(), &wake_value_, sizeof wake_value_, 0);
  io_uring_sqe_set_data64(sqe, pack(Op::wake));
  wake_armed_ = true;
  ++in_flight_;
}

void UringLoop::on_wake(const io_uring_cqe& cqe) {
  wake_armed_ = false;
  --in_flight_;
  // The stop request and the mail are read in after_batch(); here only keep listening.
  if (cqe.res > 0 && !done_)
    arm_wake();
  else if (cqe.res < 0 && cqe.res != -ECANCELED)
    context().log().error("uring: wake-up read failed: {}", std::strerror(-cqe.res));
}

// Sweeps are coarse and run only while something needs them: a failed accept to retry, a stall
// probe. (Connections' own timers, idle and linger, are in timers_.)
bool UringLoop::sweeps_active() const noexcept {
  return accept_retry_ || probes_due_ > 0;
}

void UringLoop::sweep() {
  next_sweep_ = now_ + (probes_due_ > 0 && !accept_retry_ ? kProbeSweepPeriod : kSweepPeriod);
  if (probes_due_ > 0) probe_stalled_recvs();
  if (accept_retry_ && !draining() && !done_) {
    accept_retry_ = false;
    for (std::uint32_t i = 0; i < listeners_.size(); ++i) {
      if (!listeners_[i].retry) continue;
      listeners_[i].retry = false;
      arm_accept(i);
    }
  }
}

// ---------------------------------------------------------------------------- stall probes

// A multishot recv is supposed to report everything that happens to its socket. On the
// kernel we test (6.18, DEFER_TASKRUN ring) it sometimes does not: when a peer's last bytes
// and its RST arrive together, the recv posts the bytes with IORING_CQE_F_MORE and then
// nothing, though the socket polls readable with POLLERR|POLLHUP; the connection would stay
// open until the server stops. We saw it in about 1 test run in 15 while the loop waited
// without a timeout, and not once in 260 runs while it waited with one (a similar race was
// fixed upstream for AF_UNIX: liburing issue #1549). Whatever the cause, the server must not
// depend on it. So a connection that received something, or had its recv armed, is looked
// at once it has been quiet for kStallProbeDelay: if its socket is readable (data, EOF or an
// error) while our recv is still armed, the recv missed its wake-up. Cancelling it is enough:
// its final CQE (-ECANCELED) re-arms a fresh recv, which reads what is there. One poll() per
// sweep covers every connection due; a connection is probed once per quiet period, so idle
// connections cost nothing and busy ones are never probed. A false alarm (data that arrived
// just then) only costs a cancel and a re-arm.
void UringLoop::mark_probe_due(UringTransport& c) noexcept {
  if (c.probe_due) return;
  c.probe_due = true;
  ++probes_due_;
}

void UringLoop::clear_probe_due(UringTransport& c) noexcept {
  if (!c.probe_due) return;
  c.probe_due = false;
  --probes_due_;
}

void UringLoop::probe_stalled_recvs() {
  probe_fds_.clear();
  probe_slots_.clear();
  for (std::uint32_t slot = 0; slot < conns_.size(); ++slot) {
    UringTransport& c = conns_[slot];
    if (!c.probe_due || now_ - c.last_recv < kStallProbeDelay) continue;
    clear_probe_due(c);
    if (c.closed() || c.core->state() != ConnectionCore::State::open || !c.recv_armed || c.recv_cancelled) continue;
    probe_fds_.push_back({c.fd.get(), POLLIN | POLLRDHUP, 0});
    probe_slots_.push_back(slot);
  }
  if (probe_fds_.empty()) return;
  if (::poll(probe_fds_.data(), probe_fds_.size(), 0) <= 0) return;
  for (std::size_t i = 0; i < probe_fds_.size(); ++i) {
    if (probe_fds_[i].revents == 0) continue;
    const std::uint32_t slot = probe_slots_[i];
    context().log().debug("uring: recv for {} missed its wake-up (socket ready, no completion); re-arming",
                          conns_[slot].core->peer_endpoint().to_string());
    conns_[slot].recv_cancelled = true;
    cancel(tag(Op::recv, slot));
  }
}

}  // namespace iomux::detail::uring
