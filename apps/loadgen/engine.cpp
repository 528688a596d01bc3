// The load engine: worker threads with an edge-triggered epoll loop each, and the coordinator
// (run_bench / run_bench_at) that spawns, connects, times, samples /proc and merges.
//
// Per connection the hot path is: one recv into the worker's 256 KiB buffer, a memcmp against
// the expected reply stream, one histogram record per completed request, one send of the next
// request(s) from a prebuilt pattern. Sockets are registered once (EPOLLIN|EPOLLOUT|EPOLLET), so
// no epoll_ctl is needed per request, not even with --churn.
#include <netinet/in.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <latch>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "core/fd.hpp"
#include "core/socket.hpp"
#include "iomux/loadgen/bench.hpp"
#include "iomux/loadgen/procfs.hpp"
#include "iomux/loadgen/spawn.hpp"
#include "iomux/log.hpp"

namespace iomux::loadgen {

// The library's socket helpers (src/core/socket.hpp): the load generator is a client of them.
using detail::connect_tcp;
using detail::connect_tcp_nonblocking;
using detail::last_error;
using detail::raise_fd_limit;
using detail::set_no_delay;
using detail::socket_error;
using detail::UniqueFd;

namespace {

constexpr std::int64_t kNsPerSec = 1'000'000'000;
constexpr std::int64_t kNever = INT64_MAX;
constexpr std::int64_t kTickNs = 100'000'000;   // timeouts, reconnects, live stats
constexpr std::int64_t kRetryNs = 100'000'000;  // after a failed connect
constexpr std::size_t kReadBuffer = 256 * 1024;
constexpr int kMaxEvents = 1024;
constexpr std::size_t kConnectBatch = 512;  // connects in flight at once (all threads)
constexpr int kMaxReadsPerEvent = 64;       // then the connection waits its next turn

std::int64_t now_ns() noexcept {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * kNsPerSec + ts.tv_nsec;
}

std::int64_t seconds_to_ns(double s) noexcept {
  if (!(s > 0)) return 0;
  if (s > 1e9) return kNever / 4;
  return static_cast<std::int64_t>(std::llround(s * 1e9));
}

std::int64_t thread_cpu_ns() noexcept {
  rusage ru{};
  if (::getrusage(RUSAGE_THREAD, &ru) != 0) return 0;
  auto tv = [](const timeval& t) { return static_cast<std::int64_t>(t.tv_sec) * kNsPerSec + t.tv_usec * 1000; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

// Read-only for the workers.
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

struct WorkerShare {
  std::size_t active = 0;
  std::size_t idle = 0;
  double rate = 0;           // requests/s for this worker (open loop)
  std::uint64_t budget = 0;  // measured requests for this worker (0 = unlimited)
  int cpu = -1;
  std::uint32_t port_lo = 0, port_hi = 0;  // this worker's slice of the ephemeral port range
};

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

  // setup & teardown
  bool setup();
  void close_all() noexcept;
  void start_connect(std::uint32_t i, std::int64_t now);
  UniqueFd connect_bound(std::error_code& ec);
  void connect_failed(std::uint32_t i, std::int64_t now, int err);
  void close_conn(Conn& c) noexcept;

  // the run
  void main_loop();
  void start_load(std::int64_t now);
  int wait(std::int64_t timeout_ns);
  void on_event(std::uint32_t i, std::uint32_t ev);
  void on_connected(std::uint32_t i, std::int64_t now);
  void on_readable(std::uint32_t i);
  bool consume(Conn& c, std::uint32_t i, const char* p, std::size_t n, std::int64_t now);
  void after_progress(std::uint32_t i, std::int64_t now);
  void issue(Conn& c, std::uint32_t i, std::int64_t ts);
  bool flush(Conn& c, std::uint32_t i);
  void fail(std::uint32_t i, Failure why, std::int64_t now);
  void dispatch(std::int64_t now);
  void tick(std::int64_t now);
  [[nodiscard]] bool may_issue(std::int64_t ts) const noexcept {
    return !stopping_ && (share_.budget == 0 || ts < tl_.measure_start || measured_issued_ < share_.budget);
  }
  [[nodiscard]] bool finished(std::int64_t now) const noexcept;
  [[nodiscard]] std::int64_t intended(std::uint64_t seq) const noexcept {
    return tl_.t0 + static_cast<std::int64_t>(static_cast<double>(seq) * interval_ns_);
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

void Worker::run() {
  if (share_.cpu >= 0) out.pin_error = pin_to_cpu(0, share_.cpu);
  if (plan_.open_loop) ::prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);  // wake on time for the schedule
  rbuf_ = std::make_unique<char[]>(kReadBuffer);
  const bool ok = setup();
  shared_.ready.count_down();
  std::int64_t go = 0;
  while ((go = shared_.go.load(std::memory_order_acquire)) == 0) shared_.go.wait(0, std::memory_order_acquire);
  if (ok && go > 0) {
    tl_ = shared_.tl;
    main_loop();
  }
  out.finish = now_ns();
  if (measuring_)
    out.cpu_ns = thread_cpu_ns() - out.cpu_ns;
  else
    out.cpu_ns = 0;
  close_all();
  live_.done.store(true, std::memory_order_release);
}

// ---------------------------------------------------------------------------------- setup

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
  ev.events = c.idle ? (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) : (EPOLLIN | EPOLLOUT | EPOLLET);
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

int Worker::wait(std::int64_t timeout_ns) {
  timeout_ns = std::max<std::int64_t>(0, timeout_ns);
  for (;;) {
    int n;
    if (use_pwait2_) {
      timespec ts{static_cast<time_t>(timeout_ns / kNsPerSec), static_cast<long>(timeout_ns % kNsPerSec)};
      n = ::epoll_pwait2(ep_.get(), evs_, kMaxEvents, &ts, nullptr);
      if (n < 0 && errno == ENOSYS) {
        use_pwait2_ = false;
        continue;
      }
    } else {
      // Millisecond resolution: round up, so a short wait is not a busy loop.
      n = ::epoll_wait(ep_.get(), evs_, kMaxEvents, static_cast<int>((timeout_ns + 999'999) / 1'000'000));
    }
    if (n >= 0) return n;
    if (errno != EINTR) return 0;
    return 0;  // a signal: let the caller re-check the clock and the stop flags
  }
}

// ---------------------------------------------------------------------------------- the run

void Worker::start_load(std::int64_t now) {
  running_ = true;
  last_progress_ = now;
  next_tick_ = now + kTickNs;
  // Events that arrived during setup (a server that wrote or closed early).
  auto early = std::move(setup_events_);
  for (auto [i, ev] : early) on_event(i, ev);
  if (plan_.open_loop) {
    sched_active_ = !active_.empty() && share_.rate > 0;
    interval_ns_ = share_.rate > 0 ? 1e9 / share_.rate : 0;
    next_seq_ = 0;
    next_time_ = sched_active_ ? tl_.t0 : kNever;
    return;
  }
  for (std::uint32_t i : active_) {
    Conn& c = conns_[i];
    if (plan_.churn) {
      c.churn_ts = now;
      start_connect(i, now);
    } else if (c.state == kOpen) {
      after_progress(i, now);
    }
  }
}

void Worker::main_loop() {
  start_load(now_ns());
  for (;;) {
    std::int64_t now = now_ns();
    if (shared_.should_stop() || now >= tl_.end) break;
    if (!measuring_ && now >= tl_.measure_start) {
      measuring_ = true;
      out.cpu_ns = thread_cpu_ns();
      out.measure_begin = now;
    }
    if (plan_.open_loop && sched_active_) dispatch(now);
    if (!more_to_read_.empty()) {
      auto again = std::move(more_to_read_);
      more_to_read_.clear();
      for (std::uint32_t i : again)
        if (conns_[i].state == kOpen) on_event(i, EPOLLIN);
    }
    if (now >= next_tick_) {
      tick(now);
      if (out.gave_up) break;
      next_tick_ = now + kTickNs;
    }
    if (finished(now)) break;
    std::int64_t wake = std::min(next_tick_, tl_.end);
    if (!measuring_) wake = std::min(wake, tl_.measure_start);
    if (plan_.open_loop && sched_active_) wake = std::min(wake, next_time_);
    const int n = wait(more_to_read_.empty() ? wake - now : 0);
    for (int k = 0; k < n; ++k) on_event(static_cast<std::uint32_t>(evs_[k].data.u64), evs_[k].events);
  }
  stopping_ = true;
}

bool Worker::finished(std::int64_t now) const noexcept {
  if (share_.budget == 0 || now < tl_.measure_start) return false;
  if (active_.empty()) return true;  // every connection of this thread failed at setup
  if (plan_.open_loop) return !sched_active_ && inflight_total_ == 0 && backlog_total_ == 0;
  return measured_issued_ >= share_.budget && inflight_total_ == 0 && connecting_ == 0;
}

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

void Worker::on_connected(std::uint32_t i, std::int64_t now) {
  Conn& c = conns_[i];
  if (plan_.churn) {
    if (plan_.open_loop) {
      if (c.bl_count == 0) {
        close_conn(c);
        return;
      }
      const std::int64_t ts = intended(c.bl_seq);
      c.bl_seq += active_.size();
      --c.bl_count;
      --backlog_total_;
      issue(c, i, ts);
    } else {
      if (!may_issue(c.churn_ts)) {
        close_conn(c);
        return;
      }
      issue(c, i, c.churn_ts);
    }
    flush(c, i);
    return;
  }
  after_progress(i, now);
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

bool Worker::consume(Conn& c, std::uint32_t i, const char* p, std::size_t n, std::int64_t now) {
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
void Worker::after_progress(std::uint32_t i, std::int64_t now) {
  Conn& c = conns_[i];
  if (c.state != kOpen) return;
  if (plan_.churn) {
    if (c.count > 0 || c.send_owed > 0) return;  // reply not complete yet
    close_conn(c);
    if (stopping_) return;
    if (plan_.open_loop) {
      if (c.bl_count > 0) start_connect(i, now);
    } else if (may_issue(now)) {
      c.churn_ts = now;
      start_connect(i, now);
    }
    return;
  }
  if (plan_.open_loop) {
    while (c.count < plan_.pipeline && c.bl_count > 0) {
      const std::int64_t ts = intended(c.bl_seq);
      c.bl_seq += active_.size();
      --c.bl_count;
      --backlog_total_;
      issue(c, i, ts);
    }
  } else {
    while (c.count < plan_.pipeline && may_issue(now)) issue(c, i, now);
  }
  if (c.send_owed > 0 && !c.want_out) flush(c, i);
}

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
  if (plan_.churn) {
    if (plan_.open_loop) {
      if (c.bl_count > 0) start_connect(i, now);
    } else if (may_issue(now)) {
      c.churn_ts = now;
      start_connect(i, now);
    }
  } else {
    start_connect(i, now);
  }
}

// Open loop: hand every request whose time has come to its connection, round-robin.
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

void Worker::tick(std::int64_t now) {
  // Timeouts: the oldest request in flight, a connect, queued open-loop requests.
  const std::int64_t limit = now - plan_.timeout_ns;
  const std::uint32_t k = plan_.pipeline;
  for (std::uint32_t i : active_) {
    Conn& c = conns_[i];
    if (c.state == kConnecting) {
      if (c.since < limit) connect_failed(i, now, ETIMEDOUT);
    } else if (c.state == kOpen && c.count > 0 && ts_[static_cast<std::size_t>(i) * k + c.head] < limit) {
      fail(i, Failure::timeout, now);
    }
    if (plan_.open_loop && c.bl_count > 0) {
      std::uint64_t dropped = 0;
      while (c.bl_count > 0 && intended(c.bl_seq) < limit) {
        c.bl_seq += active_.size();
        --c.bl_count;
        ++dropped;
      }
      backlog_total_ -= dropped;
      out.timeouts += dropped;
    }
  }
  // Reconnects after failed connects.
  if (!down_.empty()) {
    std::vector<std::uint32_t> still;
    auto list = std::move(down_);
    down_.clear();
    for (std::uint32_t i : list) {
      Conn& c = conns_[i];
      c.retry_listed = false;
      if (c.state != kDown) continue;
      if (c.since > now) {
        c.retry_listed = true;
        still.push_back(i);
        continue;
      }
      const bool wanted = !plan_.churn || (plan_.open_loop ? c.bl_count > 0 : may_issue(now));
      if (!wanted) continue;
      if (plan_.churn && !plan_.open_loop) c.churn_ts = now;
      start_connect(i, now);
    }
    down_.insert(down_.end(), still.begin(), still.end());
  }
  // Nothing answered for a long time although something is owed: the server is gone.
  const bool waiting = inflight_total_ > 0 || backlog_total_ > 0 || connecting_ > 0 || !down_.empty();
  if (waiting && now - last_progress_ > plan_.give_up_ns) out.gave_up = true;
  // Live numbers for the progress line.
  live_.all_completed.store(out.all_completed, std::memory_order_relaxed);
  live_.measured.store(out.measured, std::memory_order_relaxed);
  live_.errors.store(out.timeouts + out.resets + out.mismatches + out.closed, std::memory_order_relaxed);
  if (++ticks_ % 10 == 0) live_.p99_ns.store(out.latency.percentile(99), std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------------- coordinator

// net.ipv4.ip_local_port_range, e.g. {32768, 60999}.
std::pair<int, int> local_port_range() {
  std::pair<int, int> r{32768, 60999};
  if (FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
    int lo = 0, hi = 0;
    if (std::fscanf(f, "%d %d", &lo, &hi) == 2 && lo > 0 && hi <= 65535 && lo <= hi) r = {lo, hi};
    std::fclose(f);
  }
  return r;
}

struct CpuPlan {
  int server_cpu = -1;
  std::vector<int> load_cpus;  // one per load thread; empty = no pinning
};

CpuPlan plan_cpus(const BenchConfig& cfg, bool spawned, std::vector<std::string>& notes) {
  CpuPlan p;
  if (!cfg.pin || !spawned) return p;
  const int ncpu = usable_cpu_count();
  if (ncpu < 2) {
    notes.push_back("only one CPU is usable: server and load generator are not pinned and share it");
    return p;
  }
  if (cfg.server_cpu == cfg.load_cpu) {
    notes.push_back(fmt::format("--server-cpu and --load-cpu are both {}: not pinning", cfg.server_cpu));
    return p;
  }
  if (!cpu_usable(cfg.server_cpu) || !cpu_usable(cfg.load_cpu)) {
    notes.push_back(fmt::format("CPU {} or {} is not usable here: not pinning", cfg.server_cpu, cfg.load_cpu));
    return p;
  }
  p.server_cpu = cfg.server_cpu;
  std::vector<int> usable;
  for (int c = 0; c < CPU_SETSIZE && static_cast<int>(usable.size()) < ncpu; ++c)
    if (cpu_usable(c)) usable.push_back(c);
  std::vector<int> order;  // load_cpu first, then the following usable CPUs, wrapping; never the server's
  const auto start = std::find(usable.begin(), usable.end(), cfg.load_cpu) - usable.begin();
  for (std::size_t k = 0; k < usable.size(); ++k) {
    const int c = usable[(static_cast<std::size_t>(start) + k) % usable.size()];
    if (c != p.server_cpu) order.push_back(c);
  }
  for (int t = 0; t < cfg.threads; ++t) p.load_cpus.push_back(order[static_cast<std::size_t>(t) % order.size()]);
  if (static_cast<std::size_t>(cfg.threads) > order.size())
    notes.push_back(fmt::format("{} load threads share {} CPU(s)", cfg.threads, order.size()));
  return p;
}

std::vector<WorkerShare> split(const BenchConfig& cfg, const CpuPlan& cpus, std::pair<int, int> port_range) {
  const auto t = static_cast<std::size_t>(cfg.threads);
  std::vector<WorkerShare> shares(t);
  for (std::size_t w = 0; w < t; ++w) {
    WorkerShare& s = shares[w];
    s.active = cfg.connections / t + (w < cfg.connections % t ? 1 : 0);
    s.idle = cfg.idle / t + (w < cfg.idle % t ? 1 : 0);
    s.rate = cfg.rate * static_cast<double>(s.active) / static_cast<double>(cfg.connections);
    if (cfg.requests > 0) s.budget = cfg.requests / t + (w < cfg.requests % t ? 1 : 0);
    if (!cpus.load_cpus.empty()) s.cpu = cpus.load_cpus[w];
  }
  if (port_range.second > port_range.first) {
    const std::uint32_t lo = port_range.first;
    const std::uint32_t span = (port_range.second - port_range.first + 1) / static_cast<std::uint32_t>(t);
    for (std::size_t w = 0; w < t; ++w) {
      shares[w].port_lo = lo + static_cast<std::uint32_t>(w) * span;
      shares[w].port_hi = shares[w].port_lo + span - 1;
    }
  }
  // A worker with a zero budget would run unlimited: requests < threads is refused by validate()
  // only indirectly, so give such workers one request at least.
  for (auto& s : shares)
    if (cfg.requests > 0 && s.budget == 0) s.budget = 1;
  return shares;
}

BenchResult run_impl(const BenchConfig& cfg, const Endpoint& ep, std::optional<pid_t> server_pid, const RunHooks& hooks,
                     const CpuPlan& cpus, std::vector<std::string> notes) {
  const long limit = raise_fd_limit();
  if (auto why = check_fd_budget(cfg, limit)) throw BenchError(*why);

  // One blocking probe first: a clear error when nothing listens.
  {
    std::error_code ec;
    UniqueFd probe = connect_tcp(ep, std::chrono::milliseconds(seconds_to_ns(cfg.timeout_s) / 1'000'000), ec);
    if (ec || !probe)
      throw BenchError(fmt::format("cannot connect to {}: {}", ep.to_string(), ec ? ec.message() : "unknown error"));
  }

  Plan plan;
  plan.ep = ep;
  const std::string req = make_request(cfg);
  plan.req_size = req.size();
  for (std::size_t k = 0; k <= cfg.pipeline; ++k) plan.stream += req;
  plan.reply = expected_reply(cfg);
  plan.pipeline = static_cast<std::uint32_t>(cfg.pipeline);
  plan.churn = cfg.churn;
  plan.open_loop = cfg.rate > 0;
  plan.timeout_ns = seconds_to_ns(cfg.timeout_s);
  plan.give_up_ns = 2 * plan.timeout_ns + kNsPerSec;
  plan.connect_batch = std::max<std::size_t>(64, kConnectBatch / static_cast<std::size_t>(cfg.threads));

  // Past a quarter of the ephemeral range the kernel's port search starts to hurt (see
  // connect_bound); --churn keeps few sockets open and relies on the kernel (TIME_WAIT reuse).
  const auto range = local_port_range();
  const std::size_t long_lived = (cfg.churn ? 0 : cfg.connections) + cfg.idle;
  const int range_size = range.second - range.first + 1;
  plan.bind_ports =
      range_size > 0 && long_lived > static_cast<std::size_t>(range_size) / 4 && range_size / cfg.threads >= 1024;
  if (long_lived + 16 > static_cast<std::size_t>(std::max(range_size, 0)))
    notes.push_back(
        fmt::format("{} connections to one address need more source ports than the {} of "
                    "net.ipv4.ip_local_port_range: expect connect failures",
                    long_lived, range_size));
  const auto shares = split(cfg, cpus, plan.bind_ports ? range : std::pair<int, int>{0, 0});
  Shared shared(static_cast<std::ptrdiff_t>(shares.size()));
  shared.cancel = hooks.cancel;
  std::vector<std::unique_ptr<LiveStats>> live;
  std::vector<std::unique_ptr<Worker>> workers;
  for (const auto& s : shares) {
    live.push_back(std::make_unique<LiveStats>());
    workers.push_back(std::make_unique<Worker>(plan, shared, *live.back(), s));
  }
  std::vector<std::thread> threads;
  threads.reserve(workers.size());
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
  auto join_all = [&] {
    for (auto& t : threads)
      if (t.joinable()) t.join();
  };

  const std::int64_t setup_begin = now_ns();
  shared.ready.wait();
  const double connect_s = static_cast<double>(now_ns() - setup_begin) / 1e9;
  std::size_t open = 0;
  std::size_t idle_open = 0;
  std::string first_error;
  for (auto& w : workers) {
    open += w->out.connections_open;
    idle_open += w->out.idle_open;
    if (first_error.empty()) first_error = w->out.first_connect_error;
    if (!w->out.pin_error.empty()) notes.push_back("pinning a load thread failed: " + w->out.pin_error);
  }
  if ((!cfg.churn && open == 0) || (hooks.cancel && hooks.cancel->load())) {
    shared.go.store(-1, std::memory_order_release);
    shared.go.notify_all();
    join_all();
    if (hooks.cancel && hooks.cancel->load()) throw BenchError("cancelled");
    throw BenchError(fmt::format("none of the {} connections to {} could be established: {}", cfg.connections,
                                 ep.to_string(), first_error.empty() ? "unknown error" : first_error));
  }
  if (!cfg.churn && open < cfg.connections)
    notes.push_back(
        fmt::format("only {} of {} connections could be established ({})", open, cfg.connections, first_error));
  if (idle_open < cfg.idle)
    notes.push_back(
        fmt::format("only {} of {} idle connections could be established ({})", idle_open, cfg.idle, first_error));

  // Go.
  const std::int64_t t0 = now_ns();
  shared.tl.t0 = t0;
  shared.tl.measure_start = t0 + seconds_to_ns(cfg.warmup_s);
  shared.tl.end = cfg.duration_s > 0 ? shared.tl.measure_start + seconds_to_ns(cfg.duration_s) : kNever;
  shared.go.store(t0, std::memory_order_release);
  shared.go.notify_all();

  // The server is sampled as a process tree (a shell wrapper, pre-forked workers).
  std::optional<TreeStat> server_start;
  std::int64_t server_start_ns = 0;
  std::optional<TreeStat> server_end;
  std::int64_t server_end_ns = 0;
  bool server_end_sampled = false;
  std::optional<std::uint64_t> rss;
  auto sample_end = [&] {
    if (!server_pid || server_end_sampled) return;
    server_end_sampled = true;
    server_end = read_tree_stat(*server_pid);
    server_end_ns = now_ns();
    if (server_end) rss = read_tree_rss_kib(server_end->pids);
  };
  std::int64_t next_progress = t0 + kNsPerSec;
  std::uint64_t last_all = 0;
  std::int64_t last_progress_ns = t0;
  bool cancelled = false;
  for (;;) {
    const std::int64_t now = now_ns();
    if (server_pid && !server_start && now >= shared.tl.measure_start) {
      server_start = read_tree_stat(*server_pid);
      server_start_ns = now_ns();
      if (!server_start) server_start.emplace();  // gone: sampled (as nothing) all the same
    }
    bool all_done = true;
    for (auto& l : live) all_done = all_done && l->done.load(std::memory_order_acquire);
    if (now >= shared.tl.end) sample_end();
    if (all_done) break;
    if (hooks.cancel && hooks.cancel->load()) cancelled = true;
    if (hooks.on_progress && now >= next_progress) {
      Progress p;
      p.elapsed_s = static_cast<double>(now - t0) / 1e9;
      p.warming_up = now < shared.tl.measure_start;
      std::uint64_t all = 0;
      std::uint64_t p99 = 0;
      for (auto& l : live) {
        all += l->all_completed.load(std::memory_order_relaxed);
        p.requests += l->measured.load(std::memory_order_relaxed);
        p.errors += l->errors.load(std::memory_order_relaxed);
        p99 = std::max(p99, l->p99_ns.load(std::memory_order_relaxed));
      }
      p.interval_rps = static_cast<double>(all - last_all) * 1e9 / static_cast<double>(now - last_progress_ns);
      p.p99_us = static_cast<double>(p99) / 1000.0;
      last_all = all;
      last_progress_ns = now;
      hooks.on_progress(p);
      next_progress += kNsPerSec;
      if (next_progress <= now) next_progress = now + kNsPerSec;
    }
    std::int64_t wake = now + 50'000'000;
    if (server_pid && !server_start) wake = std::min(wake, shared.tl.measure_start);
    if (server_pid && !server_end_sampled) wake = std::min(wake, shared.tl.end);
    if (hooks.on_progress) wake = std::min(wake, next_progress);
    if (wake > now) std::this_thread::sleep_for(std::chrono::nanoseconds(wake - now));
  }
  sample_end();
  join_all();

  BenchResult r;
  r.target = ep.to_string();
  r.server_pid = server_pid;
  r.connect_s = connect_s;
  r.notes = std::move(notes);
  r.cancelled = cancelled || (hooks.cancel && hooks.cancel->load());
  std::int64_t finish = 0;
  std::int64_t cpu_ns = 0;
  std::string first_mismatch;
  for (auto& w : workers) {
    const WorkerOut& o = w->out;
    r.latency.merge(o.latency);
    r.requests += o.measured;
    r.all_requests += o.all_completed;
    r.timeouts += o.timeouts;
    r.resets += o.resets;
    r.mismatches += o.mismatches;
    r.closed += o.closed;
    r.connect_failures += o.connect_failures;
    r.connections_open += o.connections_open;
    r.idle_open += o.idle_open;
    r.idle_lost += o.idle_lost;
    r.gave_up = r.gave_up || o.gave_up;
    cpu_ns += o.cpu_ns;
    if (!o.first_mismatch.empty() && first_mismatch.empty()) first_mismatch = o.first_mismatch;
    finish = std::max(finish, o.finish);
  }
  if (cfg.churn) r.connections_open = cfg.connections;
  r.errors = r.timeouts + r.resets + r.mismatches + r.closed;
  const std::int64_t measure_end = std::min(finish, shared.tl.end);
  const std::int64_t measured_ns = std::max<std::int64_t>(0, measure_end - shared.tl.measure_start);
  r.measured_s = static_cast<double>(measured_ns) / 1e9;
  if (measured_ns > 0) {
    r.rps = static_cast<double>(r.requests) / r.measured_s;
    r.bytes_out = r.requests * plan.req_size;
    r.bytes_in = r.requests * plan.reply.size();
    r.mib_s = static_cast<double>(r.bytes_out + r.bytes_in) / (1024.0 * 1024.0) / r.measured_s;
    r.client_cpu_pct = static_cast<double>(cpu_ns) * 100.0 / static_cast<double>(measured_ns);
  }
  if (server_pid) {
    if (server_start && server_start->processes > 0 && server_end && server_end_ns > server_start_ns) {
      const std::uint64_t a = server_start->total.cpu_ticks();
      const std::uint64_t b = server_end->total.cpu_ticks();
      const double us = ticks_to_us(b >= a ? b - a : 0);
      if (r.requests > 0) r.server_cpu_us_per_req = us / static_cast<double>(r.requests);
      r.server_cpu_pct = us * 100.0 / (static_cast<double>(server_end_ns - server_start_ns) / 1000.0);
      r.server_threads = server_end->total.num_threads;
      if (server_end->processes > 1)
        r.notes.push_back(fmt::format("the server was measured as {} processes (pid {} and its descendants)",
                                      server_end->processes, *server_pid));
      if (server_end->total.state == 'Z' || server_end->total.state == 'X')
        r.notes.push_back("the server exited during the run");
    }
    r.server_rss_kib = rss;
  }
  if (!first_mismatch.empty()) r.notes.push_back("first mismatch: " + first_mismatch);
  if (cfg.protocol == ProtocolMode::ack && cfg.size > 16 * 1024)
    r.notes.push_back(
        "ack mode with large requests: a server that reads a request in several chunks answers "
        "each chunk, and the extra replies count as wrong bytes (use echo or line)");
  if (r.gave_up)
    r.notes.push_back(fmt::format("stopped early: no reply for {:g} s although requests were outstanding",
                                  static_cast<double>(plan.give_up_ns) / 1e9));
  if (r.idle_lost > 0) r.notes.push_back(fmt::format("{} idle connections were closed by the server", r.idle_lost));
  return r;
}

}  // namespace

BenchResult run_bench_at(const BenchConfig& cfg, const Endpoint& ep, std::optional<pid_t> server_pid,
                         const RunHooks& hooks) {
  if (auto why = validate(cfg)) throw BenchError(*why);
  std::vector<std::string> notes;
  const CpuPlan cpus = plan_cpus(cfg, server_pid.has_value(), notes);
  CpuPlan load_only = cpus;
  load_only.server_cpu = -1;  // the caller started the server; pinning it is the caller's business
  return run_impl(cfg, ep, server_pid, hooks, load_only, std::move(notes));
}

BenchResult run_bench(const BenchConfig& cfg, const RunHooks& hooks) {
  if (auto why = validate(cfg)) throw BenchError(*why);
  std::vector<std::string> notes;
  if (!cfg.spawns()) {
    Endpoint ep;
    try {
      ep = resolve_one(cfg.target);
    } catch (const std::exception& e) {
      throw BenchError(e.what());
    }
    return run_impl(cfg, ep, std::nullopt, hooks, CpuPlan{}, std::move(notes));
  }
  const CpuPlan cpus = plan_cpus(cfg, true, notes);
  SpawnSpec spec;
  try {
    std::vector<std::string> extra = cfg.server_args;
    if (cfg.reply != kDefaultReply) extra.insert(extra.begin(), {"--reply", cfg.reply});
    spec = cfg.model.empty() ? SpawnSpec::shell(cfg.spawn_command)
                             : SpawnSpec::iomux_model(cfg.model, to_string(cfg.protocol), extra, cfg.iomux_exe);
  } catch (const SpawnError& e) {
    throw BenchError(e.what());
  }
  spec.cpu = cpus.server_cpu;
  spec.ready_timeout = std::chrono::milliseconds(seconds_to_ns(cfg.spawn_timeout_s) / 1'000'000);
  std::unique_ptr<SpawnedServer> server;
  try {
    server = SpawnedServer::start(spec);
  } catch (const SpawnError& e) {
    throw BenchError(e.what());
  }
  BenchResult r;
  try {
    r = run_impl(cfg, server->endpoint(), server->pid(), hooks, cpus, std::move(notes));
  } catch (const BenchError& e) {
    const bool died = !server->alive();
    std::string msg = e.what();
    if (died)
      msg += fmt::format("\nthe server {}; its last output:\n{}", server->exit_description(), server->recent_output());
    server->stop();
    throw BenchError(msg);
  }
  r.server_command = server->command_line();
  if (!server->alive()) {
    r.server_exit = server->exit_description();
    r.notes.push_back("the server " + r.server_exit + " during the run; its last output:\n" + server->recent_output());
  }
  server->stop();
  return r;
}

}  // namespace iomux::loadgen
