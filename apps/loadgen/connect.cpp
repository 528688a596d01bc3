// Opening and closing a worker's connections: the setup (connects in batches, before the load
// starts, a failure dropped), a connect during the run (churn, reconnects after a failure,
// retried after a back-off), the source-port choice that keeps thousands of connects to one
// address fast, and a failed connection: its requests in flight counted as lost, a new connect.
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/socket.hpp"
#include "request_path.hpp"

namespace iomux::loadgen::engine {

using detail::connect_tcp_nonblocking;
using detail::last_error;
using detail::set_no_delay;
using detail::socket_error;

bool Worker::setup() {
  ep_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep_) {
    out.first_connect_error = fmt::format("epoll_create1: {}", std::strerror(errno));
    return false;
  }
  conns_.resize(share_.active + share_.idle);
  for (std::size_t i = share_.active; i < conns_.size(); ++i) conns_[i].idle = true;
  ts_.assign(share_.active * plan_.pipeline, 0);

  // With --churn the active slots connect per request; at setup only the long-lived ones do.
  std::vector<std::uint32_t> todo;
  for (std::uint32_t i = 0; i < conns_.size(); ++i)
    if (!plan_.churn || conns_[i].idle) todo.push_back(i);

  const std::size_t batch = plan_.connect_batch;
  for (std::size_t b = 0; b < todo.size() && !shared_.should_stop(); b += batch) {
    const std::size_t e = std::min(todo.size(), b + batch);
    std::int64_t now = now_ns();
    for (std::size_t k = b; k < e; ++k) start_connect(todo[k], now);
    // The timeout runs from when the batch is out: connect() itself can be slow.
    now = now_ns();
    for (std::size_t k = b; k < e; ++k)
      if (conns_[todo[k]].state == kConnecting) conns_[todo[k]].since = now;
    const std::int64_t deadline = now + plan_.timeout_ns;
    while (connecting_ > 0 && !shared_.should_stop()) {
      now = now_ns();
      if (now >= deadline) break;
      const int n = wait(std::min<std::int64_t>(deadline - now, 50'000'000));
      for (int k = 0; k < n; ++k) {
        const auto i = static_cast<std::uint32_t>(evs_[k].data.u64);
        const std::uint32_t events = evs_[k].events;
        Conn& c = conns_[i];
        if (c.state == kConnecting) {
          if (events & (EPOLLERR | EPOLLHUP)) {
            connect_failed(i, now, socket_error(c.fd).value());
          } else {
            c.state = kOpen;
            --connecting_;
            if (events & EPOLLIN) setup_events_.emplace_back(i, events);
          }
        } else if (c.state == kOpen) {
          setup_events_.emplace_back(i, events);  // handled when the run starts
        }
      }
    }
    now = now_ns();
    std::size_t opened = 0;
    for (std::size_t k = b; k < e; ++k) {
      if (conns_[todo[k]].state == kConnecting) connect_failed(todo[k], now, ETIMEDOUT);
      if (conns_[todo[k]].state == kOpen) ++opened;
    }
    if (opened == 0 && e < todo.size()) {
      // A whole batch failed: the server is not accepting (backlog full, limit reached). More
      // batches would only wait out the timeout again; count the rest as failed.
      out.connect_failures += todo.size() - e;
      break;
    }
  }
  // At setup a failed connection is dropped, not retried.
  for (std::uint32_t i : down_) conns_[i].retry_listed = false;
  down_.clear();

  for (std::uint32_t i = 0; i < conns_.size(); ++i) {
    const Conn& c = conns_[i];
    if (c.idle) {
      if (c.state == kOpen) ++out.idle_open;
    } else if (plan_.churn || c.state == kOpen) {
      active_.push_back(i);
    }
  }
  out.connections_open = plan_.churn ? 0 : active_.size();
  return true;
}

void Worker::start_connect(std::uint32_t i, std::int64_t now) {
  Conn& c = conns_[i];
  std::error_code ec;
  UniqueFd fd = plan_.bind_ports ? connect_bound(ec) : connect_tcp_nonblocking(plan_.ep, ec);
  if (!fd || ec) {
    connect_failed(i, now, ec ? ec.value() : EIO);
    return;
  }
  (void)set_no_delay(fd.get());
  epoll_event ev{};
  // EPOLLRDHUP: a FIN that came with the last reply shows in the same event, so the read does
  // not stop at a short read (edge-triggered, no other event would come for it).
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = i;
  if (::epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
    connect_failed(i, now, errno);
    return;
  }
  c.fd = fd.release();
  c.state = kConnecting;
  c.since = now;
  ++connecting_;
}

// With thousands of connections to one address, connect()'s own port search gets slow (it
// scans the ports already used for that destination; past ~half the range, every connect scans
// thousands). Binding each socket to the next port of this worker's slice keeps it O(1). Ports
// that are taken (EADDRINUSE) or whose 4-tuple is still in TIME_WAIT (EADDRNOTAVAIL) are skipped.
UniqueFd Worker::connect_bound(std::error_code& ec) {
  const std::uint32_t span = share_.port_hi - share_.port_lo + 1;
  for (int attempt = 0; attempt < 64; ++attempt) {
    const auto port = static_cast<std::uint16_t>(share_.port_lo + port_next_ % span);
    ++port_next_;
    UniqueFd fd(::socket(plan_.ep.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
      ec = last_error();
      return {};
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_storage src{};
    socklen_t src_len = 0;
    if (plan_.ep.is_v6()) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&src);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_any;
      a->sin6_port = htons(port);
      src_len = sizeof(sockaddr_in6);
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&src);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_ANY);
      a->sin_port = htons(port);
      src_len = sizeof(sockaddr_in);
    }
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&src), src_len) != 0) {
      if (errno == EADDRINUSE || errno == EACCES) continue;
      break;
    }
    if (::connect(fd.get(), plan_.ep.sockaddr_ptr(), plan_.ep.sockaddr_len()) != 0 && errno != EINPROGRESS) {
      if (errno == EADDRNOTAVAIL || errno == EADDRINUSE) continue;
      ec = last_error();
      return {};
    }
    ec.clear();
    return fd;
  }
  return connect_tcp_nonblocking(plan_.ep, ec);  // let the kernel choose after all
}

void Worker::connect_failed(std::uint32_t i, std::int64_t now, int err) {
  Conn& c = conns_[i];
  if (c.state == kConnecting) --connecting_;
  ++out.connect_failures;
  if (out.first_connect_error.empty())
    out.first_connect_error = err == ETIMEDOUT ? std::string("connect timed out") : std::strerror(err ? err : EIO);
  close_conn(c);
  c.since = now + kRetryNs;
  if (!c.retry_listed && !c.idle) {
    c.retry_listed = true;
    down_.push_back(i);
  }
}

void Worker::fail(std::uint32_t i, Failure why, std::int64_t now) {
  Conn& c = conns_[i];
  if (!stopping_) {
    const std::uint64_t lost = std::max<std::uint64_t>(1, c.count);
    switch (why) {
      case Failure::timeout:
        out.timeouts += lost;
        break;
      case Failure::reset:
        out.resets += lost;
        break;
      case Failure::mismatch:
        out.mismatches += lost;
        break;
      case Failure::closed:
        out.closed += lost;
        break;
    }
  }
  inflight_total_ -= c.count;
  close_conn(c);
  if (stopping_ || !running_) return;
  // Reconnect at once; a failing connect backs off (connect_failed).
  if (plan_.churn)
    churn_reconnect(i, now);
  else
    start_connect(i, now);
}

void Worker::close_conn(Conn& c) noexcept {
  if (c.fd >= 0) ::close(c.fd);  // also leaves the epoll set (callers keep connecting_ right)
  c.fd = -1;
  c.state = kDown;
  c.want_out = false;
  c.head = c.count = c.rpos = c.send_off = 0;
  c.send_owed = 0;
}

void Worker::close_all() noexcept {
  for (Conn& c : conns_)
    if (c.fd >= 0) {
      ::close(c.fd);
      c.fd = -1;
    }
  ep_.reset();
}

}  // namespace iomux::loadgen::engine
