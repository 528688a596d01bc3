// When a connection sends, in each of the three shapes of load:
//   closed loop  each connection keeps `pipeline` requests in flight, stamped when sent;
//   open loop    requests wait in the connection's backlog (open_loop.cpp hands them out) and
//                go out as the pipeline has room, stamped with the time they were scheduled;
//   --churn      one request per connection: connect, send, read the reply, close, connect
//                again while the budget (closed loop) or the backlog (open loop) wants more.
// A request issued is only owed bytes of the request pattern; flush() (connection.cpp) sends.
#include "worker.hpp"

namespace iomux::loadgen::engine {

// A connect completed: the churn connection sends its one request, the others top up.
void Worker::on_connected(std::uint32_t i, std::int64_t now) {
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

// After replies arrived (or the connection opened): top the connection up again.
void Worker::after_progress(std::uint32_t i, std::int64_t now) {
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
void Worker::issue(Conn& c, std::uint32_t i, std::int64_t ts) {
  const std::uint32_t k = plan_.pipeline;
  std::uint32_t slot = c.head + c.count;
  if (slot >= k) slot -= k;
  ts_[static_cast<std::size_t>(i) * k + slot] = ts;
  ++c.count;
  ++inflight_total_;
  c.send_owed += plan_.req_size;
  if (ts >= tl_.measure_start) ++measured_issued_;
}

// --churn: connect again if a request wants the connection. The closed loop's request starts
// (and its latency counts from) now, before the connect.
void Worker::churn_reconnect(std::uint32_t i, std::int64_t now) {
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
