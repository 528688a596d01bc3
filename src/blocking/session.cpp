#include "blocking/session.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cerrno>

#include "core/socket.hpp"
#include "core/sync_io.hpp"
#include "core/thread_stats.hpp"

namespace iomux::detail::blocking {

// ---- AcceptOne -----------------------------------------------------------------------------

AcceptOne::AcceptOne(ServerContext& ctx, ThreadStats& stats, int accept_flags)
    : ctx_(ctx), stats_(stats), flags_(accept_flags | SOCK_CLOEXEC) {}

AcceptOne::Result AcceptOne::operator()(int listener) {
  Result r;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  const int fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&ss), &len, flags_);
  if (fd >= 0) {
    r.fd.reset(fd);
    set_no_delay(fd);  // replies are whole messages: never hold one back for Nagle
    r.peer = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    return r;
  }
  const int err = errno;
  switch (err) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
      r.error = EAGAIN;
      return r;
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
      r.error = EINTR;
      return r;
    case EINVAL:  // the listener was shut down by stop()
      r.error = EINVAL;
      return r;
    case EMFILE:
    case ENFILE:
      spare_.shed(listener);
      ctx_.accept_failed(err);
      stats_.connections_refused.add();
      r.error = err;
      return r;
    default:
      ctx_.accept_failed(err);  // ENOBUFS, ENOMEM: transient
      r.error = err;
      return r;
  }
}

std::unique_ptr<Handler> make_handler_or_refuse(ServerContext& ctx, ThreadStats& stats, const Endpoint& peer) {
  try {
    return ctx.make_handler();
  } catch (const std::exception& e) {
    ctx.release();
    ctx.refuse(stats, "the handler factory failed for " + peer.to_string() + ": " + e.what());
    return nullptr;
  }
}

// ---- ThreadExecutor ------------------------------------------------------------------------

ThreadExecutor::ThreadExecutor(ServerContext& ctx, ThreadStats& stats, StopControl* stop, Wake wake)
    : Executor(ctx, stats, &batch_, [this] { this->wake(); }), stop_(stop), wake_mode_(wake) {
  set_now(Clock::now());
}

ThreadExecutor::~ThreadExecutor() {
  close_mailbox();  // no wake-up may reach the eventfd once it is closed
  const int fd = wake_fd_.load();
  if (fd >= 0) ::close(fd);
}

TimerId ThreadExecutor::start_timer(Clock::time_point when, std::function<void()> callback) {
  return timers_.add(when, std::move(callback));
}

bool ThreadExecutor::cancel_timer(TimerId id) {
  return timers_.cancel(id);
}

void ThreadExecutor::run_due() {
  set_now(Clock::now());
  timers_.run_expired(now());
  deliver_mail();
}

int ThreadExecutor::wake_fd() {
  int fd = wake_fd_.load(std::memory_order_acquire);
  if (fd >= 0) return fd;
  fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  wake_fd_.store(fd, std::memory_order_release);
  return fd;
}

void ThreadExecutor::drain_wake_fd() noexcept {
  const int fd = wake_fd_.load(std::memory_order_relaxed);
  std::uint64_t count;
  if (fd >= 0) {
    [[maybe_unused]] ssize_t n = ::read(fd, &count, sizeof count);
  }
}

// Any thread (under the mailbox's lock). Mail that comes before the eventfd exists is found
// anyway: the owner makes the eventfd, then looks at its mailbox before it sleeps.
void ThreadExecutor::wake() noexcept {
  if (wake_mode_ == Wake::nudge) {
    if (stop_) stop_->nudge();
    return;
  }
  const int fd = wake_fd_.load(std::memory_order_acquire);
  const std::uint64_t one = 1;
  if (fd >= 0) {
    [[maybe_unused]] ssize_t n = ::write(fd, &one, sizeof one);
  }
}

// ---- Session -------------------------------------------------------------------------------

Session::Session(ThreadExecutor& executor, UniqueFd fd, const Endpoint& peer, std::unique_ptr<Handler> handler,
                 StopControl* stop, bool blocking_sends)
    : executor_(executor),
      stop_(stop),
      fd_(std::move(fd)),
      blocking_(blocking_sends),
      core_(executor, *this, std::move(handler), peer, fd_.get()) {
  if (stop_) stop_->watch(fd_.get(), /*listener=*/false);
  const auto send_timeout = executor.context().options().send_timeout;
  if (blocking_ && send_timeout.count() > 0) set_send_timeout(fd_.get(), send_timeout);
  core_.open([this] { return send(); });
}

Session::~Session() {
  close("server stopped");
}

void Session::serve(std::span<char> scratch) {
  const auto idle = executor_.context().options().idle_timeout;
  if (idle.count() > 0) set_recv_timeout(fd_.get(), idle);
  while (core_.state() != ConnectionCore::State::closed) {
    if (stop_ && stop_->cut()) {
      close("server stopped");
      return;
    }
    if (stop_ && stop_->requested() && core_.state() == ConnectionCore::State::open) core_.drain();
    executor_.run_due();
    if (core_.state() == ConnectionCore::State::closed) return;
    if (core_.wants_read() && !core_.reachable()) {
      // The plain blocking model: sleep in recv() until the client speaks (or SO_RCVTIMEO, the
      // idle timeout, passes).
      const ReadResult r = read_and_serve(core_, fd_.get(), scratch, /*blocking=*/true);
      if (r.n == 0)
        on_eof();
      else if (r.n < 0 && r.error == EAGAIN)
        core_.close_idle();
      continue;
    }
    wait_and_serve(scratch);
  }
}

// A connection something else may act on (mail, timers), or one that is not reading (flushing
// behind a deferred reply, lingering, paused): sleep in poll() on what it waits for.
void Session::wait_and_serve(std::span<char> scratch) {
  pollfd fds[2];
  nfds_t count = 0;
  const bool reading = core_.wants_read() || core_.discarding();
  if (reading) fds[count++] = {fd_.get(), POLLIN, 0};
  const int wake = core_.reachable() ? executor_.wake_fd() : -1;
  if (wake >= 0) fds[count++] = {wake, POLLIN, 0};
  if (wake >= 0) executor_.deliver_mail();  // mail that came before the eventfd existed
  if (core_.state() == ConnectionCore::State::closed) return;
  int timeout = -1;
  SteadyClock::time_point now = SteadyClock::now();
  const auto idle = executor_.context().options().idle_timeout;
  auto consider = [&](SteadyClock::time_point deadline) {
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    const int t = ms < 0 ? 0 : static_cast<int>(std::min<long long>(ms, 60'000));
    if (timeout < 0 || t < timeout) timeout = t;
  };
  if (auto next = executor_.next_deadline()) consider(*next);
  if (core_.wants_read() && idle.count() > 0) consider(now + idle - core_.idle_for(now));
  // A stop cuts the wait short by shutting the socket down, which only wakes a poll on it.
  if (stop_ && count == (wake >= 0 ? 1u : 0u)) consider(now + std::chrono::milliseconds(100));
  const int n = ::poll(fds, count, timeout);
  if (n < 0) return;  // EINTR: look around again
  if (wake >= 0) executor_.drain_wake_fd();
  now = SteadyClock::now();
  // The event starts now, not when the wait began: a handler's conn.now() (its timeouts) must
  // not be a whole poll() behind.
  executor_.set_now(now);
  if (reading && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
    const ReadResult r = read_and_serve(core_, fd_.get(), scratch, /*blocking=*/true);
    if (r.n == 0) on_eof();
    return;
  }
  if (core_.wants_read() && idle.count() > 0 && core_.idle_for(now) >= idle) core_.close_idle();
}

bool Session::visit(std::span<char> scratch, SteadyClock::time_point now) {
  if (core_.state() == ConnectionCore::State::closed) return false;
  bool progress = false;
  const OutputQueue& queue = core_.queue();
  if (!queue.empty() && !queue.blocked()) {
    const std::size_t before = queue.bytes();
    core_.settle_with([this] { return send(); });
    if (core_.state() == ConnectionCore::State::closed) return true;
    progress = core_.queue().bytes() != before;
  }
  if (core_.wants_read() || core_.discarding()) {
    const ReadResult r = read_and_serve(core_, fd_.get(), scratch, /*blocking=*/false);
    if (r.n == 0) on_eof();
    progress = progress || r.n >= 0 || (r.error != EAGAIN && r.error != EWOULDBLOCK);
  }
  if (core_.state() != ConnectionCore::State::open) return progress;
  const auto idle = executor_.context().options().idle_timeout;
  if (idle.count() > 0 && core_.idle_for(now) >= idle) {
    core_.close_idle();
    progress = true;
  }
  return progress;
}

// EOF: the peer closed its side, or stop() shut ours (SHUT_RD) to wake this thread.
void Session::on_eof() {
  if (stop_ && stop_->requested() && core_.state() == ConnectionCore::State::open)
    core_.drain();
  else
    core_.peer_shutdown();
}

void Session::settle() {
  core_.settle_with([this] { return send(); });
}

void Session::shutdown_write() {
  ::shutdown(fd_.get(), SHUT_WR);
}

void Session::release_socket() {
  // Unregister before closing: from here on stop() cannot reach this fd number.
  if (stop_) stop_->unwatch(fd_.get());
  fd_.reset();
}

}  // namespace iomux::detail::blocking
