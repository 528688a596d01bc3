#include "blocking/acceptor.hpp"

#include <sys/socket.h>

#include <cerrno>

#include "core/socket.hpp"

namespace iomux::detail::blocking {

Acceptor::Acceptor(ServerContext& ctx, ThreadStats& stats, int accept_flags)
    : ctx_(ctx), stats_(stats), flags_(accept_flags | SOCK_CLOEXEC) {}

Acceptor::Result Acceptor::accept(int listener) {
  Result r;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  const int fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&ss), &len, flags_);
  if (fd < 0) {
    r.failure = ctx_.accept_failed(errno, listener, spare_, stats_);
    return r;
  }
  r.fd.reset(fd);
  set_no_delay(fd);  // replies are whole messages: never hold one back for Nagle
  r.peer = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  return r;
}

}  // namespace iomux::detail::blocking
