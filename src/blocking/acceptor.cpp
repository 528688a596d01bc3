#include "blocking/acceptor.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "core/socket.hpp"

namespace iomux::detail::blocking {

Acceptor::Acceptor(ServerContext& ctx, ThreadStats& stats, int accept_flags)
    : ctx_(ctx), stats_(stats), flags_(accept_flags | SOCK_CLOEXEC) {}

Acceptor::Result Acceptor::accept(const ListenSocket& listen_socket) {
  const int listener = listen_socket.fd();
  Result r;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  const int fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&ss), &len, flags_);
  if (fd < 0) {
    r.failure = ctx_.accept_failed(errno, listener, spare_, stats_);
    return r;
  }
  r.fd.reset(fd);
  // Replies are whole messages: never hold one back for Nagle (TCP only).
  if (listen_socket.tcp()) set_no_delay(fd);
  r.peer = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  return r;
}

std::size_t Acceptor::wait_for_listener(const std::vector<SharedListener>& listeners, int stop_fd) {
  waiting_.resize(listeners.size());
  for (std::size_t i = 0; i < listeners.size(); ++i) waiting_[i] = {listeners[i]->fd(), POLLIN, 0};
  if (stop_fd >= 0) waiting_.push_back({stop_fd, POLLIN, 0});
  // EINTR, ENOMEM: the caller's non-blocking accept finds nothing and it comes back here.
  if (::poll(waiting_.data(), waiting_.size(), -1) <= 0) return last_ready_;
  for (std::size_t n = 1; n <= listeners.size(); ++n) {
    const std::size_t i = (last_ready_ + n) % listeners.size();
    if (waiting_[i].revents != 0) return last_ready_ = i;
  }
  return last_ready_;
}

}  // namespace iomux::detail::blocking
