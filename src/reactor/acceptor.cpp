#include "reactor/acceptor.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <memory>

#include "core/socket.hpp"
#include "reactor/reactor_loop.hpp"

namespace iomux::detail::reactor {
namespace {

// How many connections one readiness event may accept: enough to keep up with a burst, few
// enough that the clients already connected are not starved by a connection storm.
constexpr int kAcceptBurst = 64;

}  // namespace

Acceptor::Acceptor(ReactorLoop& owner, UniqueFd listener) : owner_(owner), listener_(std::move(listener)) {}

void Acceptor::start() {
  if (auto ec = owner_.loop().watch(listener_.get(), kReadable, this))
    throw ServerError("cannot watch the listener: " + ec.message());
}

void Acceptor::close() {
  if (!listener_) return;
  owner_.loop().unwatch(listener_.get());
  listener_.reset();
}

void Acceptor::handle_events(std::uint32_t) {
  ServerContext& ctx = owner_.context();
  const int fd_limit = owner_.loop().poller().fd_limit();
  // Edge-triggered pollers report a queue of pending connections once, so accept until the
  // queue is empty; level-triggered ones report it again, so a bounded burst is fairer.
  const bool edge = owner_.loop().edge_triggered();
  for (int i = 0; edge || i < kAcceptBurst; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      bool shed_more = false;
      switch (ctx.accept_failed(errno, listener_.get(), spare_, owner_.stats(), &shed_more)) {
        case AcceptFailure::retry:
          continue;
        case AcceptFailure::out_of_fds:
          // The queue may hold more. Level-triggered pollers report the listener again; an
          // edge-triggered one will not, so come back next iteration (if the reserve fd came
          // back: otherwise shedding cannot make progress, and the next connection's edge will
          // bring us back).
          if (edge && shed_more) owner_.loop().inject(listener_.get(), kReadable);
          return;
        default:  // nothing waiting; closed; transient (ENOBUFS...): the next event retries
          return;
      }
    }
    UniqueFd conn(fd);
    Endpoint peer = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    if (fd >= fd_limit) {
      ctx.refuse(owner_.stats(), "fd " + std::to_string(fd) + " of " + peer.to_string() +
                                     " is at or above FD_SETSIZE (" + std::to_string(fd_limit) + "), which " +
                                     std::string(owner_.loop().poller().name()) + " cannot watch");
      continue;
    }
    std::unique_ptr<Handler> handler = ctx.admit(owner_.stats(), peer);
    if (!handler) continue;
    set_no_delay(fd);  // replies are whole messages: never hold one back for Nagle
    owner_.adopt(std::move(conn), peer, std::move(handler));
  }
}

}  // namespace iomux::detail::reactor
