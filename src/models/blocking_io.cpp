#include "models/blocking_io.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "iomux/socket.hpp"

namespace iomux::detail {
namespace {

// After a protocol error: how long to keep discarding input so the error line is not lost to a
// reset (closing a socket with unread input sends RST). Same as the reactor.
constexpr std::chrono::milliseconds kLingerTime{2000};

UniqueFd open_spare() { return UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)); }

}  // namespace

// ---- StopControl ---------------------------------------------------------------------------

void StopControl::request(StopMode mode) noexcept {
  const Level want = mode == StopMode::immediate ? Level::cut : Level::draining;
  try {
    std::lock_guard lock(mutex_);
    if (level_.load(std::memory_order_relaxed) >= want) return;
    level_.store(want, std::memory_order_release);
    ++generation_;
    for (const auto& [fd, listener] : watched_) apply_locked(fd, listener);
    cv_.notify_all();
  } catch (...) {
    // The mutex failed (it does not, short of a corrupted process): at least raise the flag,
    // which every loop checks between blocking calls.
    level_.store(Level::cut, std::memory_order_release);
  }
}

void StopControl::apply_locked(int fd, bool listener) const noexcept {
  switch (level_.load(std::memory_order_relaxed)) {
    case Level::running: return;
    case Level::draining: ::shutdown(fd, listener ? SHUT_RDWR : SHUT_RD); return;
    case Level::cut: ::shutdown(fd, SHUT_RDWR); return;
  }
}

void StopControl::watch(int fd, bool listener) {
  std::lock_guard lock(mutex_);
  watched_[fd] = listener;
  apply_locked(fd, listener);
}

void StopControl::unwatch(int fd) noexcept {
  std::lock_guard lock(mutex_);
  watched_.erase(fd);
}

void StopControl::sleep_for(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  const std::uint64_t seen = generation_;
  cv_.wait_for(lock, d, [&] { return generation_ != seen; });
}

std::jthread StopControl::start_drain_watchdog(Logger& log) {
  return std::jthread([this, &log](std::stop_token done) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait(lock, done, [&] { return level_.load() != Level::running; })) return;
    if (cv_.wait_for(lock, done, drain_timeout_, [&] { return level_.load() == Level::cut; }))
      return;
    if (done.stop_requested()) return;
    log.warn("drain timeout ({} ms): closing the connections still open", drain_timeout_.count());
    level_.store(Level::cut, std::memory_order_release);
    ++generation_;
    for (const auto& [fd, listener] : watched_) apply_locked(fd, listener);
    cv_.notify_all();
  });
}

// ---- AcceptOne -----------------------------------------------------------------------------

AcceptOne::AcceptOne(ServerContext& ctx, ThreadStats& stats, int accept_flags)
    : ctx_(ctx), stats_(stats), flags_(accept_flags | SOCK_CLOEXEC), spare_(open_spare()) {}

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
    case ENFILE: {
      // Linux fails accept() for want of an fd before it looks at the queue, so first check
      // that a connection is waiting: on a blocking listener the shedding accept would sleep.
      spare_.reset();
      pollfd p{listener, POLLIN, 0};
      if (::poll(&p, 1, 0) == 1) {
        UniqueFd doomed(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
      }
      spare_ = open_spare();
      ctx_.accept_failed(err);
      stats_.connections_refused.add();
      r.error = err;
      return r;
    }
    default:
      ctx_.accept_failed(err);  // ENOBUFS, ENOMEM: transient
      r.error = err;
      return r;
  }
}

// ---- Session -------------------------------------------------------------------------------

Session::Session(ServerContext& ctx, ThreadStats& stats, UniqueFd fd, const Endpoint& peer,
                 StopControl* stop)
    : ctx_(ctx), stats_(stats), stop_(stop), fd_(std::move(fd)), peer_(peer),
      last_activity_(SteadyClock::now()) {
  try {
    if (stop_) stop_->watch(fd_.get(), /*listener=*/false);
  } catch (...) {
    ctx_.release();
    throw;
  }
  stats_.connections_open.add();
  ctx_.log_connect(peer_, fd_.get());
}

Session::~Session() { close("server stopped"); }

void Session::serve_until_closed(std::span<char> scratch) {
  const auto idle = ctx_.options().idle_timeout;
  if (idle.count() > 0) set_recv_timeout(fd_.get(), idle);
  while (state_ == State::open) {
    if (stop_ && stop_->requested()) {
      drain();  // nothing is pending: every reply went out before the next recv()
      return;
    }
    const Read r = read_some(scratch, SteadyClock::now());
    if (r == Read::failed) return;
    if (r == Read::again) {  // SO_RCVTIMEO expired: the client was silent for idle_timeout
      stats_.connections_timed_out.add();
      close(fmt::format("idle for {} ms (--idle-timeout)", idle.count()));
      return;
    }
    // One blocking send() takes everything unless a signal interrupts it; finish the job.
    while (!stream_.out.empty()) {
      const std::size_t old_pending = stream_.out.readable();
      const ssize_t n = stream_.out.write_to(fd_.get());
      if (n <= 0) {
        close(describe_errno(n < 0 ? errno : EPIPE));
        return;
      }
      stats_.bytes_out.add(static_cast<std::uint64_t>(n));
      after_output_change(old_pending);
    }
  }
  if (state_ == State::flushing) finish_or_linger(SteadyClock::now());
  while (state_ == State::lingering) {
    const auto left = linger_until_ - SteadyClock::now();
    if (left <= SteadyClock::duration::zero()) break;
    set_recv_timeout(fd_.get(), std::chrono::duration_cast<std::chrono::microseconds>(left) +
                                    std::chrono::microseconds(1));
    discard_input(scratch, SteadyClock::now());
  }
  close(close_reason_);
}

bool Session::visit(std::span<char> scratch, SteadyClock::time_point now) {
  if (state_ == State::closed) return false;
  bool progress = false;
  if (!stream_.out.empty()) {
    progress = flush_some();
    if (state_ == State::closed) return true;
  }
  if (state_ == State::open && !paused_) {
    const Read r = read_some(scratch, now);
    if (r == Read::failed) return true;
    progress = progress || r != Read::again;
  } else if (state_ == State::lingering) {
    progress = discard_input(scratch, now) || progress;
  }
  if (state_ == State::flushing && stream_.out.empty()) {
    finish_or_linger(now);
    progress = true;
  } else if (state_ == State::open) {
    const auto idle = ctx_.options().idle_timeout;
    if (idle.count() > 0 && now - last_activity_ >= idle) {
      stats_.connections_timed_out.add();
      close(fmt::format("idle for {} ms (--idle-timeout)", idle.count()));
      progress = true;
    }
  }
  return progress;
}

Session::Read Session::read_some(std::span<char> scratch, SteadyClock::time_point now) {
  const RequestStream::Chunk chunk = stream_.read(fd_.get(), scratch, stats_);
  const ssize_t n = chunk.n;
  if (n > 0) {
    last_activity_ = now;
    return process(chunk) ? Read::data : Read::failed;
  }
  if (n == 0) {
    // EOF: the peer closed its side, or stop() shut ours (SHUT_RD) to wake this thread.
    peer_closed_ = true;
    close_reason_ = stop_ && stop_->requested() ? "server shutting down" : "closed by peer";
    state_ = State::flushing;
    return Read::eof;
  }
  const int err = errno;
  if (err == EAGAIN || err == EWOULDBLOCK) return Read::again;
  close(describe_errno(err));
  return Read::failed;
}

bool Session::process(const RequestStream::Chunk& chunk) {
  const std::size_t old_pending = stream_.out.readable();
  const RequestStream::Fed fed = stream_.feed(ctx_, stats_, peer_, fd_.get(), chunk);
  if (fed.send_error) {
    close(describe_errno(fed.send_error));
    return false;
  }
  if (fed.line_too_long) {
    state_ = State::flushing;
    close_reason_ = "protocol error: line too long";
    protocol_error_ = true;
  }
  after_output_change(old_pending);
  return true;
}

bool Session::flush_some() {
  const std::size_t old_pending = stream_.out.readable();
  const ssize_t n = stream_.out.write_to(fd_.get());
  if (n < 0) {
    const int err = errno;
    if (err != EAGAIN && err != EWOULDBLOCK) {
      close(describe_errno(err));
      return true;
    }
  }
  if (n > 0) stats_.bytes_out.add(static_cast<std::uint64_t>(n));
  after_output_change(old_pending);
  return n > 0;
}

void Session::after_output_change(std::size_t old_pending) {
  const std::size_t pending = stream_.out.readable();
  if (pending > old_pending) {
    stats_.bytes_pending.add(pending - old_pending);
    if (pending > stats_.peak_pending_per_connection.get())
      stats_.peak_pending_per_connection.set(pending);
  } else if (pending < old_pending) {
    stats_.bytes_pending.sub(old_pending - pending);
  }
  const std::size_t high = ctx_.options().max_pending;
  if (!paused_ && high > 0 && pending >= high && state_ == State::open) {
    paused_ = true;
    stats_.connections_paused.add();
  } else if (paused_ && pending <= high / 2) {
    paused_ = false;
    stats_.connections_paused.sub();
  }
  if (pending == 0) stream_.out.release_if_empty();
}

void Session::finish_or_linger(SteadyClock::time_point now) {
  if (!protocol_error_ || peer_closed_) {
    close(close_reason_);
    return;
  }
  // Tell the peer we are done, then wait (bounded) for it to close, discarding its input.
  ::shutdown(fd_.get(), SHUT_WR);
  state_ = State::lingering;
  linger_until_ = now + kLingerTime;
}

bool Session::discard_input(std::span<char> scratch, SteadyClock::time_point now) {
  ssize_t n;
  do n = ::recv(fd_.get(), scratch.data(), scratch.size(), 0);
  while (n < 0 && errno == EINTR);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) || now >= linger_until_) {
    close(close_reason_);
    return true;
  }
  return n > 0;
}

void Session::drain() {
  if (state_ == State::lingering) {
    close(close_reason_);
    return;
  }
  if (state_ != State::open) return;
  state_ = State::flushing;
  close_reason_ = "server shutting down";
  if (stream_.out.empty()) close(close_reason_);
}

void Session::close(std::string_view why) {
  if (state_ == State::closed) return;
  state_ = State::closed;
  ctx_.log_disconnect(peer_, why, stream_.requests);
  // Unregister before closing: from here on stop() cannot reach this fd number.
  if (stop_) stop_->unwatch(fd_.get());
  fd_.reset();
  stats_.bytes_pending.sub(stream_.out.readable());
  if (paused_) stats_.connections_paused.sub();
  stats_.connections_open.sub();
  ctx_.release();
}

}  // namespace iomux::detail
