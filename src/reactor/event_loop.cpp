#include "reactor/event_loop.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cassert>
#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include "iomux/error.hpp"

namespace iomux::detail {

// Wakes a blocked wait from another thread. A pipe rather than an eventfd: a pipe also
// supports O_ASYNC, so the same waker works under the signal-driven poller.
class EventLoop::Waker final : public IoHandler {
 public:
  Waker() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
      throw ServerError(std::string("event loop: pipe2: ") + std::strerror(errno));
    read_end_.reset(fds[0]);
    write_end_.reset(fds[1]);
  }
  int fd() const noexcept { return read_end_.get(); }
  void wake() noexcept {
    char byte = 1;
    // A full pipe already guarantees a wake-up, so EAGAIN is fine to ignore.
    [[maybe_unused]] ssize_t n = ::write(write_end_.get(), &byte, 1);
  }
  void handle_events(std::uint32_t) override {
    char drain[256];
    while (::read(read_end_.get(), drain, sizeof drain) > 0) {
    }
  }

 private:
  UniqueFd read_end_;
  UniqueFd write_end_;
};

EventLoop::EventLoop(std::unique_ptr<Poller> poller)
    : poller_(std::move(poller)),
      edge_triggered_(poller_->edge_triggered()),
      ready_(kMaxEvents),
      now_(Clock::now()),
      scratch_(std::make_unique_for_overwrite<char[]>(kScratchSize)),
      waker_(std::make_unique<Waker>()) {
  if (auto ec = watch(waker_->fd(), kReadable, waker_.get()))
    throw ServerError("event loop: cannot watch its waker: " + ec.message());
}

EventLoop::~EventLoop() = default;

bool EventLoop::in_loop_thread() const noexcept {
  auto owner = owner_.load(std::memory_order_relaxed);
  return owner == std::thread::id() || owner == std::this_thread::get_id();
}

std::error_code EventLoop::watch(int fd, std::uint32_t interest, IoHandler* handler) {
  assert(in_loop_thread());
  if (auto ec = poller_->add(fd, interest)) return ec;
  if (static_cast<std::size_t>(fd) >= handlers_.size()) handlers_.resize(fd + 1 + fd / 2, nullptr);
  handlers_[fd] = handler;
  return {};
}

std::error_code EventLoop::update(int fd, std::uint32_t interest) {
  assert(in_loop_thread());
  return poller_->modify(fd, interest);
}

std::error_code EventLoop::unwatch(int fd) {
  assert(in_loop_thread());
  if (fd >= 0 && static_cast<std::size_t>(fd) < handlers_.size()) handlers_[fd] = nullptr;
  return poller_->remove(fd);
}

std::error_code EventLoop::unwatch_shared(int fd) {
  assert(in_loop_thread());
  if (fd >= 0 && static_cast<std::size_t>(fd) < handlers_.size()) handlers_[fd] = nullptr;
  return poller_->remove_shared(fd);
}

void EventLoop::rebind(int fd, IoHandler* handler) {
  assert(in_loop_thread());
  if (fd >= 0 && static_cast<std::size_t>(fd) < handlers_.size() && handlers_[fd]) handlers_[fd] = handler;
}

TimerId EventLoop::start_timer(Clock::time_point when, std::function<void()> fn) {
  assert(in_loop_thread());
  return timers_.start(when, std::move(fn));
}

bool EventLoop::cancel_timer(TimerId id) {
  assert(in_loop_thread());
  return timers_.cancel(id);
}

void EventLoop::inject(int fd, std::uint32_t events) {
  assert(in_loop_thread());
  injected_.push_back({fd, events});
}

void EventLoop::stop() noexcept {
  stop_.store(true, std::memory_order_relaxed);
  wake();
}

void EventLoop::wake() noexcept {
  waker_->wake();
}

void EventLoop::run_once(std::chrono::milliseconds max_wait) {
  int timeout = static_cast<int>(max_wait.count());
  if (auto deadline = timers_.next_deadline()) {
    auto until = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now()).count();
    if (until < 0) until = 0;
    if (timeout < 0 || until < timeout) timeout = static_cast<int>(until);
  }
  if (!injected_.empty()) timeout = 0;
  int n = poller_->wait(ready_, timeout);
  if (n < 0) throw ServerError(std::string("event loop: wait failed: ") + std::strerror(errno));
  now_ = Clock::now();
  for (int i = 0; i < n; ++i) dispatch(ready_[i]);
  if (!injected_.empty()) {
    injected_now_.swap(injected_);
    for (const ReadyEvent& ev : injected_now_) dispatch(ev);
    injected_now_.clear();
  }
  timers_.run_expired(now_);
  if (iteration_hook_) iteration_hook_();
}

void EventLoop::run() {
  owner_.store(std::this_thread::get_id());
  while (!stop_.load(std::memory_order_relaxed)) run_once(std::chrono::milliseconds(-1));
}

}  // namespace iomux::detail
