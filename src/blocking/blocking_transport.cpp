#include "blocking/blocking_transport.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "core/server_context.hpp"
#include "core/socket.hpp"

namespace iomux::detail::blocking {

BlockingTransport::BlockingTransport(BlockingLoop& executor, UniqueFd fd, const Endpoint& peer, const Endpoint& local,
                                     std::unique_ptr<Handler> handler, StopControl* stop, bool blocking_sends)
    : executor_(executor),
      stop_(stop),
      fd_(std::move(fd)),
      blocking_(blocking_sends),
      core_(executor, *this, std::move(handler), peer, local, fd_.get()) {
  if (stop_) stop_->watch(fd_.get());
  const auto send_timeout = executor.context().options().send_timeout;
  if (blocking_ && send_timeout.count() > 0) set_send_timeout(fd_.get(), send_timeout);
  core_.open([this] { return send(); });
  // The visiting models' thread runs its timers every pass: the idle timeout is a timer there,
  // as on the event loops. (blocking and threaded sleep in recv(): SO_RCVTIMEO, in serve().)
  if (!blocking_ && core_.state() != ConnectionCore::State::closed) core_.start_idle_timer();
}

BlockingTransport::BlockingTransport(BlockingLoop& executor, UniqueFd fd, const Endpoint& to,
                                     std::unique_ptr<Handler> handler, StopControl* stop, Outbound outbound)
    : executor_(executor),
      stop_(stop),
      fd_(std::move(fd)),
      blocking_(false),
      outbound_(std::make_unique<Connecting>()),
      core_(executor, *this, std::move(handler), to, outbound_->local, fd_.get(), /*outbound=*/true) {
  outbound_->failed = outbound.failed;
  outbound_->blocking_after = outbound.blocking_after;
  if (stop_) stop_->watch(fd_.get());
  if (outbound.failed == 0 && outbound.timeout.count() > 0)
    outbound_->timer = executor_.start_timer(executor_.now() + outbound.timeout, [this, timeout = outbound.timeout] {
      outbound_->timer = kNoTimer;
      core_.close(CloseReason::connect_timeout, ETIMEDOUT,
                  "connect to " + core_.peer_endpoint().to_string() + ": not established within " +
                      std::to_string(timeout.count()) + " ms");
    });
}

BlockingTransport::~BlockingTransport() {
  close("server stopped");
}

bool BlockingTransport::visit_connecting() {
  int err = outbound_->failed;
  if (err == 0) {
    pollfd p{fd_.get(), POLLOUT, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    if (std::error_code ec = socket_error(fd_.get())) {
      err = ec.value();
    } else {
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      if (::getpeername(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        if (errno == ENOTCONN && !(p.revents & (POLLERR | POLLHUP))) return false;
        err = errno == ENOTCONN ? ECONNREFUSED : errno;
      }
    }
  }
  if (outbound_->timer != kNoTimer) executor_.cancel_timer(std::exchange(outbound_->timer, kNoTimer));
  if (err == 0 && outbound_->blocking_after) {
    if (std::error_code ec = set_non_blocking(fd_.get(), false)) err = ec.value();
  }
  if (err != 0) {
    core_.close(CloseReason::connect_failed, err,
                "connect to " + core_.peer_endpoint().to_string() + ": " + describe_errno(err));
    return true;
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0)
    outbound_->local = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  if (!core_.peer_endpoint().is_unix()) set_no_delay(fd_.get());
  core_.connected();
  // What was written while connecting goes now; then as the constructor does for an accepted one.
  core_.open([this] { return send(); });
  if (core_.state() != ConnectionCore::State::closed) core_.start_idle_timer();
  return true;
}

void BlockingTransport::serve(std::span<char> scratch) {
  const auto idle = executor_.context().options().idle_timeout;
  if (idle.count() > 0) set_recv_timeout(fd_.get(), idle);
  while (core_.state() != ConnectionCore::State::closed) {
    if (stop_ && stop_->cut()) {
      close("server stopped");
      break;  // the companions close next
    }
    if (stop_ && stop_->requested() && core_.state() == ConnectionCore::State::open) {
      core_.drain(/*may_keep_reading=*/stop_->handing_over());
      drain_companions();
    }
    executor_.run_due();
    if (core_.state() == ConnectionCore::State::closed) break;
    if (core_.wants_read() && !core_.reachable() && executor_.companions().empty()) {
      // The plain blocking model: sleep in recv() until the client speaks (or SO_RCVTIMEO, the
      // idle timeout, passes).
      const ReadResult r = read_and_serve</*kBlocking=*/true>(core_, fd_.get(), scratch);
      if (r.n == 0)
        on_eof();
      else if (r.n < 0 && r.error == EAGAIN)
        core_.close_idle();
      continue;
    }
    wait_and_serve(scratch);
  }
  serve_companions(scratch);
}

void BlockingTransport::drain_companions() {
  if (std::exchange(companions_drained_, true)) return;
  for (auto& c : executor_.companions()) c->drain();
}

void BlockingTransport::serve_companions(std::span<char> scratch) {
  auto& companions = executor_.companions();
  for (;;) {
    executor_.reap_companions();
    if (companions.empty()) return;
    if (stop_ && stop_->cut()) {
      for (auto& c : companions) c->close("server stopped");
      executor_.reap_companions();
      return;
    }
    if (stop_ && stop_->requested()) drain_companions();
    executor_.run_due();
    executor_.reap_companions();
    if (companions.empty()) return;
    wait_with_companions(scratch, /*with_client=*/false);
  }
}

short BlockingTransport::companion_events() noexcept {
  if (core_.state() == ConnectionCore::State::closed) return 0;
  if (core_.connecting()) return POLLOUT;
  const OutputQueue& q = core_.queue();
  return static_cast<short>(((core_.wants_read() || core_.discarding()) ? POLLIN : 0) |
                            (!q.empty() && !q.blocked() ? POLLOUT : 0));
}

void BlockingTransport::wait_with_companions(std::span<char> scratch, bool with_client) {
  auto& companions = executor_.companions();
  // A connect that failed at once is reported now: poll() would not.
  visit_companions(scratch, [&](std::size_t i) {
    const BlockingTransport& c = *companions[i];
    return c.outbound_ && c.outbound_->failed != 0 && c.core_.connecting();
  });
  std::vector<pollfd> fds;
  const bool reading = with_client && (core_.wants_read() || core_.discarding());
  if (reading) fds.push_back({fd_.get(), POLLIN, 0});
  const int wake = executor_.wake_fd();
  fds.push_back({wake, POLLIN, 0});
  executor_.deliver_mail();  // mail that came before the eventfd existed
  if (with_client && core_.state() == ConnectionCore::State::closed) return;
  const std::size_t first = fds.size();
  const std::size_t count = companions.size();
  for (const auto& c : companions) {
    const short events = c->companion_events();
    fds.push_back({events != 0 ? c->fd_.get() : -1, events, 0});
  }
  // A stop shuts the sockets down, which wakes a poll on them; not one on the eventfd alone.
  const int n =
      ::poll(fds.data(), fds.size(), poll_timeout(SteadyClock::now(), with_client, /*tick_for_stop=*/stop_ != nullptr));
  if (n < 0) return;  // EINTR: look around again
  executor_.drain_wake_fd();
  const SteadyClock::time_point now = SteadyClock::now();
  executor_.set_now(now);
  if (reading && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
    const ReadResult r = read_and_serve</*kBlocking=*/true>(core_, fd_.get(), scratch);
    if (r.n == 0) on_eof();
  }
  // A companion opened by a turn has no pollfd: it waits for the next poll().
  visit_companions(scratch, [&](std::size_t i) { return i < count && fds[first + i].revents != 0; });
  if (with_client) close_if_idle(now);
}

template <typename Ready>
void BlockingTransport::visit_companions(std::span<char> scratch, Ready&& ready) {
  auto& companions = executor_.companions();
  // By index, not iterator: a turn may open another companion (appended), and `ready` is asked
  // about it too.
  for (std::size_t i = 0; i < companions.size(); ++i)
    if (ready(i)) companions[i]->visit(scratch);
  executor_.reap_companions();
}

int BlockingTransport::poll_timeout(SteadyClock::time_point now, bool with_client, bool tick_for_stop) {
  int timeout = -1;
  auto consider = [&](SteadyClock::time_point deadline) {
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    const int t = ms < 0 ? 0 : static_cast<int>(std::min<long long>(ms, 60'000));
    if (timeout < 0 || t < timeout) timeout = t;
  };
  if (auto next = executor_.next_deadline()) consider(*next);
  const auto idle = executor_.context().options().idle_timeout;
  if (with_client && core_.wants_read() && idle.count() > 0) consider(now + idle - core_.idle_for(now));
  if (tick_for_stop) consider(now + std::chrono::milliseconds(100));
  return timeout;
}

void BlockingTransport::close_if_idle(SteadyClock::time_point now) {
  const auto idle = executor_.context().options().idle_timeout;
  if (core_.wants_read() && idle.count() > 0 && core_.idle_for(now) >= idle) core_.close_idle();
}

// A connection something else may act on (mail, timers), or one that is not reading (flushing
// behind a deferred reply, lingering, paused): sleep in poll() on what it waits for.
void BlockingTransport::wait_and_serve(std::span<char> scratch) {
  if (!executor_.companions().empty()) {
    wait_with_companions(scratch, /*with_client=*/true);
    return;
  }
  pollfd fds[2];
  nfds_t count = 0;
  const bool reading = core_.wants_read() || core_.discarding();
  if (reading) fds[count++] = {fd_.get(), POLLIN, 0};
  const int wake = core_.reachable() ? executor_.wake_fd() : -1;
  if (wake >= 0) fds[count++] = {wake, POLLIN, 0};
  if (wake >= 0) executor_.deliver_mail();  // mail that came before the eventfd existed
  if (core_.state() == ConnectionCore::State::closed) return;
  // A stop cuts the wait short by shutting the socket down, which only wakes a poll on it.
  const bool tick_for_stop = stop_ && count == (wake >= 0 ? 1u : 0u);
  const int n = ::poll(fds, count, poll_timeout(SteadyClock::now(), /*with_client=*/true, tick_for_stop));
  if (n < 0) return;  // EINTR: look around again
  if (wake >= 0) executor_.drain_wake_fd();
  const SteadyClock::time_point now = SteadyClock::now();
  // The event starts now, not when the wait began: a handler's conn.now() (its timeouts) must
  // not be a whole poll() behind.
  executor_.set_now(now);
  if (reading && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
    const ReadResult r = read_and_serve</*kBlocking=*/true>(core_, fd_.get(), scratch);
    if (r.n == 0) on_eof();
    return;
  }
  close_if_idle(now);
}

bool BlockingTransport::visit(std::span<char> scratch) {
  if (core_.state() == ConnectionCore::State::closed) return false;
  if (core_.connecting()) [[unlikely]]
    return visit_connecting();
  bool progress = false;
  const OutputQueue& queue = core_.queue();
  if (!queue.empty() && !queue.blocked()) {
    const std::size_t before = queue.bytes();
    core_.settle_with([this] { return send(); });
    if (core_.state() == ConnectionCore::State::closed) return true;
    progress = core_.queue().bytes() != before;
  }
  if (core_.wants_read() || core_.discarding()) {
    const ReadResult r = read_and_serve</*kBlocking=*/false>(core_, fd_.get(), scratch);
    if (r.n == 0) on_eof();
    progress = progress || r.n >= 0 || (r.error != EAGAIN && r.error != EWOULDBLOCK);
  }
  return progress;
}

// EOF: the peer closed its side, or stop() shut ours (SHUT_RD) to wake this thread.
void BlockingTransport::on_eof() {
  if (stop_ && stop_->requested() && core_.state() == ConnectionCore::State::open)
    core_.drain(/*may_keep_reading=*/false);
  else
    core_.peer_shutdown();
}

void BlockingTransport::settle() {
  if (core_.connecting()) [[unlikely]] {
    // Nothing can be sent yet: account for what was queued (budget, back-pressure).
    core_.output_changed();
    return;
  }
  core_.settle_with([this] { return send(); });
}

void BlockingTransport::shutdown_write() {
  ::shutdown(fd_.get(), SHUT_WR);
}

void BlockingTransport::release_socket() {
  // Unregister before closing: from here on stop() cannot reach this fd number.
  if (stop_) stop_->unwatch(fd_.get());
  if (outbound_ && outbound_->timer != kNoTimer) executor_.cancel_timer(std::exchange(outbound_->timer, kNoTimer));
  fd_.reset();
}

}  // namespace iomux::detail::blocking
