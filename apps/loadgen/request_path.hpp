// The path of a request through a connection, the generator's hot loop: an epoll event, the
// reads, the reply check (every byte against the expected reply stream; a latency record per
// completed request), the top-up with the next requests, the sends. In each shape of load:
//   closed loop  each connection keeps `pipeline` requests in flight, stamped when sent;
//   open loop    requests wait in the connection's backlog (open_loop.cpp hands them out) and
//                go out as the pipeline has room, stamped with the time they were scheduled;
//   --churn      one request per connection: connect, send, read the reply, close, connect
//                again while the budget (closed loop) or the backlog (open loop) wants more.
//
// Inline, and included by each file that calls into it (worker.cpp's loop, open_loop.cpp,
// connect.cpp), so that the compiler can make one piece of code of it, as it did when the
// engine was one file. Called across files it cost 49 more user-space instructions per
// request: 551 -> 600, counted with `valgrind --tool=callgrind build/iomux bench
// 127.0.0.1:PORT -c 50 -n 50000 -d 0 --warmup 0` against `iomux serve --model epoll`; inline,
// 540.
#pragma once

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "core/socket.hpp"
#include "iomux/log.hpp"
#include "worker.hpp"

namespace iomux::loadgen::engine {

inline void Worker::on_event(std::uint32_t i, std::uint32_t ev) {
  Conn& c = conns_[i];
  if (c.fd < 0) return;
  if (c.state == kConnecting) {
    const std::int64_t now = now_ns();
    if (ev & (EPOLLERR | EPOLLHUP)) {
      connect_failed(i, now, detail::socket_error(c.fd).value());
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
  if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    on_readable(i, (ev & EPOLLRDHUP) != 0);
    if (c.state != kOpen) return;
  }
  if ((ev & EPOLLOUT) && c.want_out) flush(c, i);
}

inline void Worker::on_readable(std::uint32_t i, bool peer_closed) {
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
      // A short read drained the socket (edge-triggered), unless the peer's FIN is behind it.
      if (static_cast<std::size_t>(n) < kReadBuffer && !peer_closed) break;
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

inline bool Worker::consume(Conn& c, std::uint32_t i, const char* p, std::size_t n, std::int64_t now) {
  const char* expected = plan_.reply.data();
  const std::size_t rlen = plan_.reply.size();
  const std::uint32_t k = plan_.pipeline;
  std::uint64_t done_all = 0;
  while (n > 0) {
    if (c.count == 0) {  // bytes nobody asked for
      if (out.first_mismatch.empty() && !stopping_)
        out.first_mismatch = fmt::format("{} unexpected byte(s) with no request outstanding: \"{}\"", n,
                                         escape_bytes(std::string_view(p, n), 48));
      fail(i, Failure::mismatch, now);
      return false;
    }
    const std::size_t m = std::min(n, rlen - c.rpos);
    if (std::memcmp(p, expected + c.rpos, m) != 0) {
      if (out.first_mismatch.empty() && !stopping_) {
        std::size_t at = 0;
        while (at < m && p[at] == expected[c.rpos + at]) ++at;
        const std::size_t show = std::min<std::size_t>(32, m - at);
        out.first_mismatch =
            fmt::format("wrong bytes at offset {} of a {}-byte reply: expected \"{}\", got \"{}\"", c.rpos + at, rlen,
                        escape_bytes(std::string_view(expected + c.rpos + at, show), 48),
                        escape_bytes(std::string_view(p + at, std::min<std::size_t>(32, n - at)), 48));
      }
      fail(i, Failure::mismatch, now);
      return false;
    }
    c.rpos += static_cast<std::uint32_t>(m);
    p += m;
    n -= m;
    if (c.rpos == rlen) {
      c.rpos = 0;
      const std::int64_t ts = ts_[static_cast<std::size_t>(i) * k + c.head];
      c.head = (c.head + 1 == k) ? 0 : c.head + 1;
      --c.count;
      --inflight_total_;
      ++done_all;
      if (ts >= tl_.measure_start) {
        out.latency.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - ts)));
        ++out.measured;
      }
    }
  }
  if (done_all) {
    out.all_completed += done_all;
    last_progress_ = now;
  }
  return true;
}

// After replies arrived (or the connection opened): top the connection up again.
inline void Worker::after_progress(std::uint32_t i, std::int64_t now) {
  Conn& c = conns_[i];
  if (c.state != kOpen) return;
  if (plan_.churn) {
    if (c.count > 0 || c.send_owed > 0) return;  // reply not complete yet
    close_conn(c);
    if (stopping_) return;
    churn_reconnect(i, now);
    return;
  }
  if (plan_.open_loop) {
    while (c.count < plan_.pipeline && c.bl_count > 0) issue(c, i, take_backlog(c));
  } else {
    while (c.count < plan_.pipeline && may_issue(now)) issue(c, i, now);
  }
  if (c.send_owed > 0 && !c.want_out) flush(c, i);
}

// One more request in flight on `c`, sent (or scheduled) at `ts`.
inline void Worker::issue(Conn& c, std::uint32_t i, std::int64_t ts) {
  const std::uint32_t k = plan_.pipeline;
  std::uint32_t slot = c.head + c.count;
  if (slot >= k) slot -= k;
  ts_[static_cast<std::size_t>(i) * k + slot] = ts;
  ++c.count;
  ++inflight_total_;
  c.send_owed += plan_.req_size;
  if (ts >= tl_.measure_start) ++measured_issued_;
}

// Sends what the connection owes from the request pattern. False when the connection failed.
inline bool Worker::flush(Conn& c, std::uint32_t i) {
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

// A connect completed: the churn connection sends its one request, the others top up.
inline void Worker::on_connected(std::uint32_t i, std::int64_t now) {
  Conn& c = conns_[i];
  if (!plan_.churn) {
    after_progress(i, now);
    return;
  }
  if (plan_.open_loop) {
    if (c.bl_count == 0) {
      close_conn(c);
      return;
    }
    issue(c, i, take_backlog(c));
  } else {
    if (!may_issue(c.churn_ts)) {
      close_conn(c);
      return;
    }
    issue(c, i, c.churn_ts);
  }
  flush(c, i);
}

// --churn: connect again if a request wants the connection. The closed loop's request starts
// (and its latency counts from) now, before the connect.
inline void Worker::churn_reconnect(std::uint32_t i, std::int64_t now) {
  Conn& c = conns_[i];
  if (plan_.open_loop) {
    if (c.bl_count == 0) return;
  } else {
    if (!may_issue(now)) return;
    c.churn_ts = now;
  }
  start_connect(i, now);
}

}  // namespace iomux::loadgen::engine
