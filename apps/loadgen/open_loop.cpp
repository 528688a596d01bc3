// The open loop's schedule (--rate): request n of a worker is due at t0 + n / rate, whatever
// the server does, and goes to the worker's active connections round-robin. A connection that
// cannot send it now (its pipeline is full, it is reconnecting) keeps it in its backlog, and
// its latency still counts from the scheduled time: a stalled server shows up as latency
// instead of a lower offered load (no coordinated omission). A backlog entry older than the
// request timeout counts as a timeout.
#include "request_path.hpp"

namespace iomux::loadgen::engine {

void Worker::start_schedule() {
  sched_active_ = !active_.empty() && share_.rate > 0;
  interval_ns_ = share_.rate > 0 ? 1e9 / share_.rate : 0;
  next_seq_ = 0;
  next_time_ = sched_active_ ? tl_.t0 : kNever;
}

// Hands every request whose time has come to its connection.
void Worker::dispatch(std::int64_t now) {
  const std::size_t slots = active_.size();
  while (next_time_ <= now) {
    if (next_time_ >= tl_.end ||
        (share_.budget > 0 && next_time_ >= tl_.measure_start && measured_dispatched_ >= share_.budget)) {
      sched_active_ = false;
      next_time_ = kNever;
      return;
    }
    if (next_time_ >= tl_.measure_start) ++measured_dispatched_;
    const std::uint32_t i = active_[next_seq_ % slots];
    Conn& c = conns_[i];
    if (c.bl_count == 0 && c.state == kOpen && c.count < plan_.pipeline && !plan_.churn) {
      issue(c, i, next_time_);
      if (!c.want_out) flush(c, i);
    } else {
      if (c.bl_count == 0) c.bl_seq = next_seq_;
      ++c.bl_count;
      ++backlog_total_;
      if (plan_.churn && c.state == kDown && !c.retry_listed) start_connect(i, now);
    }
    ++next_seq_;
    next_time_ = intended(next_seq_);
  }
}

// Drops the backlog's requests scheduled before `limit`, as timeouts.
void Worker::expire_backlog(Conn& c, std::int64_t limit) noexcept {
  std::uint64_t dropped = 0;
  while (c.bl_count > 0 && intended(c.bl_seq) < limit) {
    c.bl_seq += active_.size();
    --c.bl_count;
    ++dropped;
  }
  backlog_total_ -= dropped;
  out.timeouts += dropped;
}

}  // namespace iomux::loadgen::engine
