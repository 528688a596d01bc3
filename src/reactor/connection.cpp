#include "reactor/connection.hpp"

#include <sys/socket.h>

#include <cerrno>

#include "iomux/socket.hpp"
#include "reactor/reactor_thread.hpp"

namespace iomux::detail {
namespace {

// Edge-triggered reads per event before yielding to other connections (then the loop comes
// back by itself): a client that never stops sending cannot monopolise the thread.
constexpr int kMaxReadsPerEvent = 16;
// After a protocol error: how long to keep discarding input so the error line is not lost to
// a reset (closing a socket with unread input sends RST, which can destroy the reply in flight).
constexpr std::chrono::milliseconds kLingerTime{2000};

}  // namespace

Connection::Connection(ReactorThread& owner, UniqueFd fd, const Endpoint& peer)
    : owner_(owner), fd_(std::move(fd)), peer_(peer), last_activity_(owner.loop().now()) {}

Connection::~Connection() = default;

bool Connection::start() {
  EventLoop& loop = owner_.loop();
  // Edge-triggered: watch both directions once and never change it; readiness for writing
  // only fires after a full send buffer drains, so it costs nothing when unused.
  interest_ = loop.edge_triggered() ? (kReadable | kWritable) : kReadable;
  if (auto ec = loop.watch(fd_.get(), interest_, this)) {
    owner_.context().log().warn("cannot watch connection from {}: {}", peer_.to_string(), ec.message());
    return false;
  }
  arm_idle_timer();
  return true;
}

void Connection::handle_events(std::uint32_t events) {
  if (state_ == State::closed) return;
  if (events & kError) {
    std::error_code ec = socket_error(fd_.get());
    close(ec ? describe_errno(ec.value()) : std::string("socket error"));
    return;
  }
  if ((events & kHangup) && !(events & kReadable)) {
    close("hung up");
    return;
  }
  if ((events & kWritable) && !stream_.out.empty()) {
    on_writable();
    if (state_ == State::closed) return;
  }
  if (events & (kReadable | kHangup)) on_readable(events);
}

void Connection::on_readable(std::uint32_t events) {
  EventLoop& loop = owner_.loop();
  const bool edge = loop.edge_triggered();
  if (state_ == State::lingering) {
    // Discard whatever still arrives; the peer's close ends it.
    for (;;) {
      ssize_t n = ::recv(fd_.get(), loop.scratch().data(), loop.scratch().size(), 0);
      if (n > 0) continue;
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      close(close_reason_);
      return;
    }
  }
  if (state_ != State::open || paused_) return;

  std::span<char> scratch = loop.scratch();
  for (int round = 1;; ++round) {
    const RequestStream::Chunk chunk = stream_.read(fd_.get(), scratch, owner_.stats());
    const ssize_t n = chunk.n;
    if (n > 0) {
      last_activity_ = loop.now();
      if (!process(chunk)) return;
      if (state_ != State::open || paused_) return;
      // Level-triggered: one read per event; the poller reports the socket again if more is
      // waiting, which keeps every connection's turn short. Edge-triggered: drain, but a short
      // read already proves the socket empty (epoll(7)), which saves the EAGAIN round trip —
      // unless the peer's FIN is already queued: then read on to the EOF.
      if (!edge) return;
      if (static_cast<std::size_t>(n) < chunk.asked && !(events & kPeerShutdown)) return;
      if (round == kMaxReadsPerEvent) {
        loop.inject(fd_.get(), kReadable | (events & kPeerShutdown));
        return;
      }
      continue;
    }
    if (n == 0) {
      peer_closed_ = true;
      close_reason_ = "closed by peer";
      state_ = State::flushing;
      if (stream_.out.empty()) close(close_reason_);
      else update_interest();
      return;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    close(describe_errno(errno));
    return;
  }
}

bool Connection::process(const RequestStream::Chunk& chunk) {
  const std::size_t old_pending = stream_.out.readable();
  const RequestStream::Fed fed = stream_.feed(owner_.context(), owner_.stats(), peer_, fd_.get(), chunk);
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
  if (state_ == State::flushing && stream_.out.empty()) finish_or_linger();
  return state_ != State::closed;
}

void Connection::on_writable() {
  const bool edge = owner_.loop().edge_triggered();
  const std::size_t old_pending = stream_.out.readable();
  while (!stream_.out.empty()) {
    ssize_t n = stream_.out.write_to(fd_.get());
    if (n > 0) {
      owner_.stats().bytes_out.add(static_cast<std::uint64_t>(n));
      if (!edge) break;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    close(describe_errno(n < 0 ? errno : EPIPE));
    return;
  }
  after_output_change(old_pending);
  if (state_ == State::flushing && stream_.out.empty()) finish_or_linger();
}

void Connection::after_output_change(std::size_t old_pending) {
  const std::size_t pending = stream_.out.readable();
  // The common case: every reply went out at once and nothing was or is owed; no counter, no
  // pause, no interest changes.
  if (pending == 0 && old_pending == 0 && !paused_ && state_ == State::open) return;
  ThreadStats& stats = owner_.stats();
  if (pending > old_pending) {
    stats.bytes_pending.add(pending - old_pending);
    if (pending > stats.peak_pending_per_connection.get()) stats.peak_pending_per_connection.set(pending);
  } else if (pending < old_pending) {
    stats.bytes_pending.sub(old_pending - pending);
  }
  const std::size_t high = owner_.context().options().max_pending;
  if (!paused_ && high > 0 && pending >= high && state_ == State::open) {
    paused_ = true;
    stats.connections_paused.add();
  } else if (paused_ && pending <= high / 2) {
    paused_ = false;
    stats.connections_paused.sub();
    // Bytes may have arrived while we were not reading; an edge-triggered poller will not say
    // so again, so look now.
    // A FIN may have arrived meanwhile too, hence kPeerShutdown: read on to EOF or EAGAIN.
    if (state_ == State::open && owner_.loop().edge_triggered())
      owner_.loop().inject(fd_.get(), kReadable | kPeerShutdown);
  }
  if (pending == 0) stream_.out.release_if_empty();
  update_interest();
}

void Connection::update_interest() {
  if (state_ == State::closed || owner_.loop().edge_triggered()) return;
  std::uint32_t want = 0;
  if ((state_ == State::open && !paused_) || state_ == State::lingering) want |= kReadable;
  if (!stream_.out.empty()) want |= kWritable;
  if (want == interest_) return;
  interest_ = want;
  if (auto ec = owner_.loop().update(fd_.get(), want)) close("poller refused an update: " + ec.message());
}

void Connection::finish_or_linger() {
  // Closing a socket whose input we have not read makes the kernel send RST, and a RST can
  // destroy replies the peer has not read yet. After a protocol error or during a graceful
  // drain the peer may well still be sending, so tell it we are done (FIN after the replies)
  // and wait, bounded, for its close while discarding its input.
  if (peer_closed_ || (!protocol_error_ && !owner_.draining())) {
    close(close_reason_);
    return;
  }
  ::shutdown(fd_.get(), SHUT_WR);
  state_ = State::lingering;
  EventLoop& loop = owner_.loop();
  if (timer_ != kNoTimer) loop.cancel(timer_);
  timer_ = loop.run_after(kLingerTime, [this] {
    timer_ = kNoTimer;
    close(close_reason_);
  });
  update_interest();
  if (loop.edge_triggered()) loop.inject(fd_.get(), kReadable);
}

void Connection::drain() {
  if (state_ == State::lingering) {
    close(close_reason_);
    return;
  }
  if (state_ != State::open) return;
  state_ = State::flushing;
  close_reason_ = "server shutting down";
  if (stream_.out.empty()) close(close_reason_);
  else update_interest();
}

void Connection::arm_idle_timer() {
  const auto timeout = owner_.context().options().idle_timeout;
  if (timeout.count() <= 0) return;
  // One timer per connection, re-armed only when it fires: activity just moves last_activity_,
  // so a busy connection costs no timer work per request.
  timer_ = owner_.loop().run_at(last_activity_ + timeout, [this] {
    timer_ = kNoTimer;
    on_idle_timer();
  });
}

void Connection::on_idle_timer() {
  if (state_ != State::open) return;
  const auto timeout = owner_.context().options().idle_timeout;
  if (owner_.loop().now() - last_activity_ >= timeout) {
    owner_.stats().connections_timed_out.add();
    close(fmt::format("idle for {} ms (--idle-timeout)", timeout.count()));
    return;
  }
  arm_idle_timer();
}

void Connection::close(std::string_view why) {
  if (state_ == State::closed) return;
  state_ = State::closed;
  EventLoop& loop = owner_.loop();
  if (timer_ != kNoTimer) loop.cancel(timer_);
  timer_ = kNoTimer;
  loop.unwatch(fd_.get());
  ThreadStats& stats = owner_.stats();
  stats.bytes_pending.sub(stream_.out.readable());
  if (paused_) stats.connections_paused.sub();
  owner_.context().log_disconnect(peer_, why, stream_.requests);
  const int fd = fd_.get();
  fd_.reset();
  owner_.retire(fd);  // destroys *this after the current iteration
}

}  // namespace iomux::detail
