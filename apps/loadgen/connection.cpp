// One connection's events, in the worker's epoll loop: a connect completing, bytes to read
// (checked by replies.cpp, then the connection is topped up by requests.cpp), room to send, and
// failures, which count the requests in flight as lost and connect again.
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "core/socket.hpp"
#include "worker.hpp"

namespace iomux::loadgen::engine {

using detail::socket_error;

void Worker::on_event(std::uint32_t i, std::uint32_t ev) {
  Conn& c = conns_[i];
  if (c.fd < 0) return;
  if (c.state == kConnecting) {
    const std::int64_t now = now_ns();
    if (ev & (EPOLLERR | EPOLLHUP)) {
      connect_failed(i, now, socket_error(c.fd).value());
      return;
    }
    --connecting_;
    c.state = kOpen;
    on_connected(i, now);
    if (c.state != kOpen || !(ev & EPOLLIN)) return;
  }
  if (c.idle) {
    // An idle connection must stay silent both ways: data or a close from the server ends it.
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      ++out.idle_lost;
      close_conn(c);
    }
    return;
  }
  if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    on_readable(i);
    if (c.state != kOpen) return;
  }
  if ((ev & EPOLLOUT) && c.want_out) flush(c, i);
}

void Worker::on_readable(std::uint32_t i) {
  Conn& c = conns_[i];
  char* buf = rbuf_.get();
  std::int64_t now = 0;
  bool got = false;
  for (int round = 0;; ++round) {
    if (round == kMaxReadsPerEvent) {
      more_to_read_.push_back(i);  // fairness: come back after the other ready connections
      break;
    }
    const ssize_t n = ::recv(c.fd, buf, kReadBuffer, 0);
    if (n > 0) {
      now = now_ns();
      got = true;
      if (!consume(c, i, buf, static_cast<std::size_t>(n), now)) return;
      if (static_cast<std::size_t>(n) < kReadBuffer) break;  // drained (edge-triggered)
      continue;
    }
    if (n == 0) {
      fail(i, Failure::closed, now_ns());
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    fail(i, Failure::reset, now_ns());
    return;
  }
  if (got) after_progress(i, now);
}

// Sends what the connection owes from the request pattern. False when the connection failed.
bool Worker::flush(Conn& c, std::uint32_t i) {
  while (c.send_owed > 0) {
    const std::size_t off = c.send_off;
    const std::size_t len = std::min<std::uint64_t>(c.send_owed, plan_.stream.size() - off);
    const ssize_t w = ::send(c.fd, plan_.stream.data() + off, len, MSG_NOSIGNAL);
    if (w > 0) {
      c.send_owed -= static_cast<std::uint64_t>(w);
      c.send_off = static_cast<std::uint32_t>((off + static_cast<std::size_t>(w)) % plan_.req_size);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      c.want_out = true;  // the EPOLLOUT edge comes when the peer has taken some bytes
      return true;
    }
    fail(i, Failure::reset, now_ns());
    return false;
  }
  c.want_out = false;
  return true;
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

}  // namespace iomux::loadgen::engine
