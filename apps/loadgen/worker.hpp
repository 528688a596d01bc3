// One load thread of `iomux bench` (a Worker) and what it shares with the coordinator (run.cpp).
//
// Each worker owns a share of the connections and runs an edge-triggered epoll loop over them.
// Per connection the hot path is: one recv into the worker's 256 KiB buffer, a memcmp against
// the expected reply stream, one histogram record per completed request, one send of the next
// request(s) from a prebuilt pattern. Sockets are registered once (EPOLLIN|EPOLLOUT|EPOLLET), so
// no epoll_ctl is needed per request, not even with --churn.
//
// The worker's methods live by job:
//   worker.cpp        the thread and its loop: start, wait, the 100 ms tick, the end
//   request_path.hpp  a request's way through a connection: event, read, reply check, top-up,
//                     send, and with --churn the connect and close (inline: the hot path)
//   connect.cpp       opening connections (the setup batches, reconnects), closing them, failures
//   open_loop.cpp     --rate: requests scheduled at fixed intervals, the backlog
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <latch>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "clock.hpp"
#include "core/fd.hpp"
#include "iomux/endpoint.hpp"
#include "iomux/loadgen/histogram.hpp"

namespace iomux::loadgen::engine {

using detail::UniqueFd;

inline constexpr std::int64_t kTickNs = 100'000'000;   // timeouts, reconnects, live stats
inline constexpr std::int64_t kRetryNs = 100'000'000;  // after a failed connect
inline constexpr std::size_t kReadBuffer = 256 * 1024;
inline constexpr int kMaxEvents = 1024;
inline constexpr std::size_t kConnectBatch = 512;  // connects in flight at once (all threads)
inline constexpr int kMaxReadsPerEvent = 64;       // then the connection waits its next turn

// What every worker does, read-only for them.
struct Plan {
  Endpoint ep;
  std::string stream;  // the request repeated pipeline + 1 times: any in-flight window is one slice
  std::size_t req_size = 0;
  std::string reply;  // the reply to one request
  std::uint32_t pipeline = 1;
  bool churn = false;
  bool open_loop = false;
  std::int64_t timeout_ns = 0;
  std::int64_t give_up_ns = 0;
  // Many connections to one destination: pick source ports ourselves (see connect_bound).
  bool bind_ports = false;
  std::size_t connect_batch = kConnectBatch;  // per worker
};

// Written by the coordinator before `go` is published.
struct Timeline {
  std::int64_t t0 = 0;
  std::int64_t measure_start = 0;
  std::int64_t end = kNever;
};

struct Shared {
  std::atomic<std::int64_t> go{0};  // 0 = wait, > 0 = start (timeline valid), < 0 = abort
  Timeline tl;
  std::atomic<bool> stop{false};
  const std::atomic<bool>* cancel = nullptr;
  std::latch ready;
  explicit Shared(std::ptrdiff_t workers) : ready(workers) {}
  [[nodiscard]] bool should_stop() const noexcept {
    return stop.load(std::memory_order_relaxed) || (cancel && cancel->load(std::memory_order_relaxed));
  }
};

// One writer (the worker), read by the coordinator for progress lines.
struct LiveStats {
  std::atomic<std::uint64_t> all_completed{0};
  std::atomic<std::uint64_t> measured{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> p99_ns{0};
  std::atomic<bool> done{false};
};

// One worker's part of the load.
struct WorkerShare {
  std::size_t active = 0;
  std::size_t idle = 0;
  double rate = 0;           // requests/s for this worker (open loop)
  std::uint64_t budget = 0;  // measured requests for this worker (0 = unlimited)
  int cpu = -1;
  std::uint32_t port_lo = 0, port_hi = 0;  // this worker's slice of the ephemeral port range
};

// What a worker counted, read by the coordinator once the worker's thread has ended (and the
// setup part of it once `ready` has been counted down).
struct WorkerOut {
  LatencyHistogram latency;
  std::uint64_t measured = 0;
  std::uint64_t all_completed = 0;
  std::uint64_t timeouts = 0, resets = 0, mismatches = 0, closed = 0, connect_failures = 0;
  std::size_t connections_open = 0, idle_open = 0, idle_lost = 0;
  std::int64_t cpu_ns = 0;
  std::int64_t measure_begin = 0;  // when this worker's CPU sampling began (0 = never)
  std::int64_t finish = 0;
  bool gave_up = false;
  std::string first_connect_error;
  std::string first_mismatch;  // what the first wrong bytes looked like
  std::string pin_error;
};

enum class Failure { timeout, reset, mismatch, closed };

class Worker {
 public:
  Worker(const Plan& plan, Shared& shared, LiveStats& live, WorkerShare share)
      : plan_(plan), shared_(shared), live_(live), share_(share) {}
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() { close_all(); }

  // The thread's body: connect, count down `ready`, wait for `go`, run the load, close.
  void run();
  WorkerOut out;

 private:
  enum : std::uint8_t { kDown, kConnecting, kOpen };
  struct Conn {
    int fd = -1;
    std::uint8_t state = kDown;
    bool idle = false;
    bool want_out = false;      // a send hit EAGAIN: flush on the next EPOLLOUT edge
    bool retry_listed = false;  // in down_ (waiting for a reconnect)
    std::uint32_t head = 0;     // in-flight ring: ts_[index * pipeline + ...]
    std::uint32_t count = 0;
    std::uint32_t rpos = 0;      // position in the expected reply of the oldest request
    std::uint32_t send_off = 0;  // position in the request pattern of the next byte to send
    std::uint64_t send_owed = 0;
    std::int64_t since = 0;      // kConnecting: connect start; kDown: retry time
    std::int64_t churn_ts = 0;   // --churn closed loop: when the current request began
    std::uint64_t bl_seq = 0;    // open loop: first queued sequence number...
    std::uint64_t bl_count = 0;  // ...and how many (every n-th sequence, n = active slots)
  };

  // worker.cpp: the loop
  void main_loop();
  void start_load(std::int64_t now);
  int wait(std::int64_t timeout_ns);
  void tick(std::int64_t now);
  void retry_connects(std::int64_t now);
  void publish_live();
  [[nodiscard]] bool finished(std::int64_t now) const noexcept;

  // request_path.hpp: the hot path
  void on_event(std::uint32_t i, std::uint32_t ev);
  // `peer_closed`: the event said the peer shut its side (EPOLLRDHUP): read to the end.
  void on_readable(std::uint32_t i, bool peer_closed);
  // False when the bytes were wrong (the connection has failed then).
  bool consume(Conn& c, std::uint32_t i, const char* p, std::size_t n, std::int64_t now);
  void after_progress(std::uint32_t i, std::int64_t now);
  void issue(Conn& c, std::uint32_t i, std::int64_t ts);
  bool flush(Conn& c, std::uint32_t i);
  void on_connected(std::uint32_t i, std::int64_t now);
  void churn_reconnect(std::uint32_t i, std::int64_t now);
  [[nodiscard]] bool may_issue(std::int64_t ts) const noexcept {
    return !stopping_ && (share_.budget == 0 || ts < tl_.measure_start || measured_issued_ < share_.budget);
  }

  // connect.cpp: opening, closing, failing
  bool setup();
  void start_connect(std::uint32_t i, std::int64_t now);
  UniqueFd connect_bound(std::error_code& ec);
  void connect_failed(std::uint32_t i, std::int64_t now, int err);
  void fail(std::uint32_t i, Failure why, std::int64_t now);
  void close_conn(Conn& c) noexcept;
  void close_all() noexcept;

  // open_loop.cpp: the schedule
  void start_schedule();
  void dispatch(std::int64_t now);
  void expire_backlog(Conn& c, std::int64_t limit) noexcept;
  [[nodiscard]] std::int64_t intended(std::uint64_t seq) const noexcept {
    return tl_.t0 + static_cast<std::int64_t>(static_cast<double>(seq) * interval_ns_);
  }
  // The oldest request of the connection's backlog, taken off it: its scheduled time. A
  // backlog holds every n-th sequence number from bl_seq on (n = the active connections).
  std::int64_t take_backlog(Conn& c) noexcept {
    const std::int64_t ts = intended(c.bl_seq);
    c.bl_seq += active_.size();
    --c.bl_count;
    --backlog_total_;
    return ts;
  }

  const Plan& plan_;
  Shared& shared_;
  LiveStats& live_;
  WorkerShare share_;
  Timeline tl_;

  UniqueFd ep_;
  bool use_pwait2_ = true;
  std::vector<Conn> conns_;
  std::vector<std::uint32_t> active_;  // indices of active connections (round-robin order)
  std::vector<std::int64_t> ts_;       // in-flight request timestamps, pipeline per connection
  std::vector<std::uint32_t> down_;    // connections waiting to reconnect
  std::vector<std::uint32_t> more_to_read_;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> setup_events_;
  std::unique_ptr<char[]> rbuf_;
  epoll_event evs_[kMaxEvents];

  bool running_ = false;
  bool stopping_ = false;
  bool measuring_ = false;
  std::size_t connecting_ = 0;
  std::uint64_t inflight_total_ = 0;
  std::uint64_t backlog_total_ = 0;
  std::uint64_t measured_issued_ = 0;
  std::int64_t last_progress_ = 0;
  std::int64_t next_tick_ = 0;
  int ticks_ = 0;

  std::uint32_t port_next_ = 0;

  // open loop
  double interval_ns_ = 0;
  std::uint64_t next_seq_ = 0;
  std::int64_t next_time_ = kNever;
  bool sched_active_ = false;
  std::uint64_t measured_dispatched_ = 0;
};

}  // namespace iomux::loadgen::engine
