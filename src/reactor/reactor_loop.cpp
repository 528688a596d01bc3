#include "reactor/reactor_loop.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <memory>
#include <string>
#include <system_error>

#include "core/socket.hpp"
#include "iomux/error.hpp"
#include "reactor/reactor_transport.hpp"

namespace iomux::detail::reactor {
namespace {

// How many connections one readiness event may accept: enough to keep up with a burst, few
// enough that the clients already connected are not starved by a connection storm.
constexpr int kAcceptBurst = 64;

}  // namespace

ReactorLoop::ReactorLoop(ServerContext& ctx, std::unique_ptr<Poller> poller, std::vector<SharedListener> listeners)
    : Executor(ctx, stats_, &batch_, [this] { loop_.wake(); }), loop_(std::move(poller)) {
  for (std::size_t i = 0; i < listeners.size(); ++i)
    listeners_.push_back(std::make_unique<Listener>(*this, std::move(listeners[i]), ctx.listening_on().at(i)));
  use_clock(loop_.now());
  loop_.set_iteration_hook([this] {
    deliver_mail();
    if (!retired_.empty()) retired_.clear();
  });
}

ReactorLoop::~ReactorLoop() = default;

void ReactorLoop::run() {
  bind_to_current_thread();
  for (auto& l : listeners_)
    if (auto ec = loop_.watch(l->socket->fd(), kReadable, l.get()))
      throw ServerError("cannot watch the listener on " + l->local.to_string() + ": " + ec.message());
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
  // A listener shared with other loops (Unix, --threads) closes with the last of them.
  for (auto& l : listeners_) loop_.unwatch_shared(l->socket->fd());
  listeners_.clear();
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

void ReactorLoop::accept_from(Listener& listener) {
  ServerContext& ctx = context();
  const int listen_fd = listener.socket->fd();
  const int fd_limit = loop_.poller().fd_limit();
  // Edge-triggered pollers report a queue of pending connections once, so accept until the
  // queue is empty; level-triggered ones report it again, so a bounded burst is fairer.
  const bool edge = loop_.edge_triggered();
  for (int i = 0; edge || i < kAcceptBurst; ++i) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      bool shed_more = false;
      switch (ctx.accept_failed(errno, listen_fd, spare_, stats_, &shed_more)) {
        case AcceptFailure::retry:
          continue;
        case AcceptFailure::out_of_fds:
          // The queue may hold more. Level-triggered pollers report the listener again; an
          // edge-triggered one will not, so come back next iteration (if the reserve fd came
          // back: otherwise shedding cannot make progress, and the next connection's edge will
          // bring us back).
          if (edge && shed_more) loop_.inject(listen_fd, kReadable);
          return;
        default:  // nothing waiting; closed; transient (ENOBUFS...): the next event retries
          return;
      }
    }
    UniqueFd conn(fd);
    Endpoint peer = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
    if (fd >= fd_limit) {
      ctx.refuse(stats_, "fd " + std::to_string(fd) + " of " + peer.to_string() + " is at or above FD_SETSIZE (" +
                             std::to_string(fd_limit) + "), which " + std::string(loop_.poller().name()) +
                             " cannot watch");
      continue;
    }
    std::unique_ptr<Handler> handler = ctx.admit(stats_, peer);
    if (!handler) continue;
    // Replies are whole messages: never hold one back for Nagle (TCP only).
    if (listener.socket->tcp()) set_no_delay(fd);
    adopt(std::move(conn), peer, listener.local, std::move(handler));
  }
}

void ReactorLoop::adopt(UniqueFd fd, const Endpoint& peer, const Endpoint& local, std::unique_ptr<Handler> handler) {
  const int f = fd.get();
  if (static_cast<std::size_t>(f) >= connections_.size()) connections_.resize(f + 1 + f / 2);
  connections_[f] = std::make_unique<ReactorTransport>(*this, std::move(fd), peer, local, std::move(handler));
  connections_[f]->start();
}

ConnectionCore* ReactorLoop::connect_out(const Endpoint& to, std::unique_ptr<Handler> handler, ConnectOptions options) {
  UniqueFd sock = open_outbound_socket(to, /*non_blocking=*/true);
  const int fd = sock.get();
  int failed = 0;
  if (fd >= loop_.poller().fd_limit()) {
    failed = EMFILE;  // select cannot watch it
  } else if (::connect(fd, to.sockaddr_ptr(), to.sockaddr_len()) != 0 && errno != EINPROGRESS) {
    // A Unix socket connects (or fails: ENOENT, ECONNREFUSED, EAGAIN with a full backlog) at
    // once; a TCP one fails at once only for a local reason (ENETUNREACH, EADDRNOTAVAIL).
    failed = errno;
  }
  if (static_cast<std::size_t>(fd) >= connections_.size()) connections_.resize(fd + 1 + fd / 2);
  auto& slot = connections_[fd];
  slot =
      std::make_unique<ReactorTransport>(*this, std::move(sock), to, std::move(handler), ReactorTransport::Outbound{});
  ReactorTransport& t = *slot;
  t.start_connect(failed, options.timeout);
  return &t.core();
}

void ReactorLoop::retire(int fd) {
  if (fd < 0 || static_cast<std::size_t>(fd) >= connections_.size() || !connections_[fd]) return;
  retired_.push_back(std::move(connections_[fd]));
}

}  // namespace iomux::detail::reactor
