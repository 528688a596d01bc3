#include "reactor/reactor_loop.hpp"

#include "reactor/reactor_transport.hpp"

namespace iomux::detail::reactor {

ReactorLoop::ReactorLoop(ServerContext& ctx, std::unique_ptr<Poller> poller, UniqueFd listener)
    : Executor(ctx, stats_, &batch_, [this] { loop_.wake(); }),
      loop_(std::move(poller)),
      acceptor_(*this, std::move(listener)) {
  use_clock(loop_.now());
  loop_.set_iteration_hook([this] {
    deliver_mail();
    if (!retired_.empty()) retired_.clear();
  });
}

ReactorLoop::~ReactorLoop() = default;

void ReactorLoop::run() {
  bind_to_current_thread();
  acceptor_.start();
  loop_.run();
  close_all("server stopped");
  close_mailbox();
  retired_.clear();
}

void ReactorLoop::stop(StopMode mode) noexcept {
  try {
    loop_.post([this, mode] {
      // A second graceful stop during the drain cuts it short, as an immediate one does.
      if (mode == StopMode::immediate || draining_) {
        close_all("server stopped");
        loop_.stop();
      } else {
        begin_drain();
      }
    });
  } catch (...) {
    loop_.stop();  // out of memory for the task: stop without the drain
  }
}

TimerId ReactorLoop::start_timer(Clock::time_point when, std::function<void()> callback) {
  return loop_.run_at(when, std::move(callback));
}

bool ReactorLoop::cancel_timer(TimerId id) {
  loop_.cancel(id);
  return true;
}

void ReactorLoop::adopt(UniqueFd fd, const Endpoint& peer, std::unique_ptr<Handler> handler) {
  const int f = fd.get();
  if (static_cast<std::size_t>(f) >= connections_.size()) connections_.resize(f + 1 + f / 2);
  connections_[f] = std::make_unique<ReactorTransport>(*this, std::move(fd), peer, std::move(handler));
  ++live_;
  connections_[f]->start();
}

void ReactorLoop::retire(int fd) {
  if (fd < 0 || static_cast<std::size_t>(fd) >= connections_.size() || !connections_[fd]) return;
  retired_.push_back(std::move(connections_[fd]));
  --live_;
  maybe_finish_drain();
}

void ReactorLoop::begin_drain() {
  if (draining_) return;
  draining_ = true;
  acceptor_.close();
  for (auto& conn : connections_)
    if (conn) conn->core().drain();
  reaper_ = loop_.run_after(context().options().drain_timeout, [this] {
    close_all("drain timeout");
    loop_.stop();
  });
  maybe_finish_drain();
}

void ReactorLoop::close_all(std::string_view why) {
  acceptor_.close();
  for (auto& conn : connections_)
    if (conn) conn->core().close(CloseReason::server_stopped, 0, why);
}

void ReactorLoop::maybe_finish_drain() {
  if (draining_ && live_ == 0) loop_.stop();
}

}  // namespace iomux::detail::reactor
