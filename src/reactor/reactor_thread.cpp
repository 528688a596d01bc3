#include "reactor/reactor_thread.hpp"

#include "reactor/connection.hpp"

namespace iomux::detail {

ReactorThread::ReactorThread(ServerContext& ctx, PollerKind kind, UniqueFd listener)
    : ctx_(ctx), loop_(make_poller(kind)), acceptor_(*this, std::move(listener)) {
  loop_.set_iteration_hook([this] {
    if (!retired_.empty()) retired_.clear();
  });
}

ReactorThread::~ReactorThread() = default;

void ReactorThread::run() {
  acceptor_.start();
  loop_.run();
  close_all("server stopped");
  retired_.clear();
}

void ReactorThread::stop(StopMode mode) noexcept {
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

void ReactorThread::adopt(UniqueFd fd, const Endpoint& peer) {
  const int f = fd.get();
  auto conn = std::make_unique<Connection>(*this, std::move(fd), peer);
  stats_.connections_accepted.add();
  if (!conn->start()) {
    ctx_.release();
    stats_.connections_refused.add();
    return;
  }
  if (static_cast<std::size_t>(f) >= connections_.size()) connections_.resize(f + 1 + f / 2);
  connections_[f] = std::move(conn);
  ++live_;
  stats_.connections_open.add();
  ctx_.log_connect(peer, f);
}

void ReactorThread::retire(int fd) {
  if (fd < 0 || static_cast<std::size_t>(fd) >= connections_.size() || !connections_[fd]) return;
  retired_.push_back(std::move(connections_[fd]));
  --live_;
  stats_.connections_open.sub();
  ctx_.release();
  maybe_finish_drain();
}

void ReactorThread::begin_drain() {
  if (draining_) return;
  draining_ = true;
  acceptor_.close();
  for (auto& conn : connections_)
    if (conn) conn->drain();
  reaper_ = loop_.run_after(ctx_.options().drain_timeout, [this] {
    close_all("drain timeout");
    loop_.stop();
  });
  maybe_finish_drain();
}

void ReactorThread::close_all(std::string_view why) {
  acceptor_.close();
  for (auto& conn : connections_)
    if (conn) conn->close(why);
}

void ReactorThread::maybe_finish_drain() {
  if (draining_ && live_ == 0) loop_.stop();
}

}  // namespace iomux::detail
