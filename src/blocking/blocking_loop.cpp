#include "blocking/blocking_loop.hpp"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "blocking/blocking_transport.hpp"
#include "core/socket.hpp"

namespace iomux::detail::blocking {

BlockingLoop::BlockingLoop(ServerContext& ctx, ThreadStats& stats, StopControl* stop, Wake wake)
    : Executor(ctx, stats, &batch_, [this] { this->wake(); }), stop_(stop), wake_mode_(wake) {
  set_now(Clock::now());
}

ConnectionCore* BlockingLoop::connect_out(const Endpoint& to, std::unique_ptr<Handler> handler,
                                          ConnectOptions options) {
  if (connector_) return connector_(to, std::move(handler), options);
  UniqueFd sock = open_outbound_socket(to, /*non_blocking=*/true);
  const int fd = sock.get();
  BlockingTransport::Outbound out;
  out.timeout = options.timeout;
  // A Unix socket connects (or fails) at once; a TCP one fails at once only for a local reason.
  if (::connect(fd, to.sockaddr_ptr(), to.sockaddr_len()) != 0 && errno != EINPROGRESS) out.failed = errno;
  companions_.push_back(
      std::make_unique<BlockingTransport>(*this, std::move(sock), to, std::move(handler), stop_, out));
  return &companions_.back()->core();
}

void BlockingLoop::reap_companions() {
  std::erase_if(companions_, [](const auto& c) { return c->is_closed(); });
}

BlockingLoop::~BlockingLoop() {
  companions_.clear();
  close_mailbox();  // no wake-up may reach the eventfd once it is closed
  const int fd = wake_fd_.load();
  if (fd >= 0) ::close(fd);
}

TimerId BlockingLoop::start_timer(Clock::time_point when, std::function<void()> callback) {
  return timers_.start(when, std::move(callback));
}

bool BlockingLoop::cancel_timer(TimerId id) {
  return timers_.cancel(id);
}

void BlockingLoop::run_due() {
  set_now(Clock::now());
  timers_.run_expired(now());
  deliver_mail();
}

int BlockingLoop::wake_fd() {
  int fd = wake_fd_.load(std::memory_order_acquire);
  if (fd >= 0) return fd;
  fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  wake_fd_.store(fd, std::memory_order_release);
  return fd;
}

void BlockingLoop::drain_wake_fd() noexcept {
  const int fd = wake_fd_.load(std::memory_order_relaxed);
  std::uint64_t count;
  if (fd >= 0) {
    [[maybe_unused]] ssize_t n = ::read(fd, &count, sizeof count);
  }
}

// Any thread (under the mailbox's lock). Mail that comes before the eventfd exists is found
// anyway: the owner makes the eventfd, then looks at its mailbox before it sleeps.
void BlockingLoop::wake() noexcept {
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

}  // namespace iomux::detail::blocking
