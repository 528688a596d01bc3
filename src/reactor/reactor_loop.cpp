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
  stop_accepting();
  close_all("server stopped");
  close_mailbox();
  retired_.clear();
}

void ReactorLoop::stop(StopMode mode) noexcept {
  request_stop(mode);
}

void ReactorLoop::stop_accepting() {
  acceptor_.close();
}

void ReactorLoop::finish() {
  loop_.stop();
}

TimerId ReactorLoop::start_timer(Clock::time_point when, std::function<void()> callback) {
  return loop_.start_timer(when, std::move(callback));
}

bool ReactorLoop::cancel_timer(TimerId id) {
  return loop_.cancel_timer(id);
}

void ReactorLoop::adopt(UniqueFd fd, const Endpoint& peer, std::unique_ptr<Handler> handler) {
  const int f = fd.get();
  if (static_cast<std::size_t>(f) >= connections_.size()) connections_.resize(f + 1 + f / 2);
  connections_[f] = std::make_unique<ReactorTransport>(*this, std::move(fd), peer, std::move(handler));
  connections_[f]->start();
}

void ReactorLoop::retire(int fd) {
  if (fd < 0 || static_cast<std::size_t>(fd) >= connections_.size() || !connections_[fd]) return;
  retired_.push_back(std::move(connections_[fd]));
}

}  // namespace iomux::detail::reactor
