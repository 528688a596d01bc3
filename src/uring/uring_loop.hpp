// One completion loop of the uring model: a ring, its provided buffers, its listeners with a
// multishot accept each, and the connections they accepted. The server runs one per thread. As the
// connections' Executor it lends them its timers (a TimerQueue the wait honours) and its
// mailbox (woken through an eventfd the loop keeps a read on): mail and stop() come that way.
//
// Each iteration is one io_uring_submit_and_wait: every SQE queued since the last one goes in,
// and the thread sleeps until at least one completion is out. Then the whole batch of CQEs is
// handled and the CQ ring advanced once. Nothing on the request path makes a syscall of its
// own: recvs are multishot where the kernel can bound them (re-armed after at most 64 KiB),
// else one-shot (an SQE per read; see arm_recv), and sends are SQEs in the next batch.
//
// Lifetime rule: a connection slot is recycled only when none of its requests is in flight
// (recv armed, send pending), because the kernel may still write into a provided buffer or
// read from the send's bytes until the request's last CQE. Closing a connection therefore
// cancels its requests and frees the slot when their final CQEs arrive; until then its output
// queue keeps the segments the send references (OutputQueue::clear keeps the frozen front).
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/connection_core.hpp"
#include "core/executor.hpp"
#include "core/fd.hpp"
#include "core/listener.hpp"
#include "core/server_context.hpp"
#include "core/spare_fd.hpp"
#include "core/thread_stats.hpp"
#include "core/timer_queue.hpp"
#include "iomux/endpoint.hpp"
#include "iomux/server.hpp"
#include "iomux/stats.hpp"
#include "uring/ring.hpp"
#include "uring/uring_transport.hpp"
#include "uring/user_data.hpp"

namespace iomux::detail::uring {

class UringLoop final : public Executor {
 public:
  // Sets up the ring, the buffers and the wake-up eventfd. Throws ServerError.
  // `listeners` in ServerOptions::listeners' order (ServerContext::listening_on()'s).
  UringLoop(ServerContext& ctx, std::vector<SharedListener> listeners);
  ~UringLoop() override;

  // Loop thread (the thread that calls it becomes the ring's only submitter). Serves until
  // stopped.
  void run();
  // Any thread; never blocks. A second graceful stop, or an immediate one, cuts a drain short.
  void stop(StopMode mode) noexcept;

  const ThreadStats& thread_stats() const noexcept { return stats_; }
  std::string_view ring_description() const noexcept { return ring_.description(); }
  bool multishot_recvs() const noexcept { return multishot_recv_; }

  // Executor: timers the loop's wait honours.
  TimerId start_timer(Clock::time_point when, std::function<void()> callback) override;
  bool cancel_timer(TimerId id) override;
  // Executor: Loop::connect, an IORING_OP_CONNECT.
  ConnectionCore* connect_out(const Endpoint& to, std::unique_ptr<Handler> handler, ConnectOptions options) override;

 private:
  friend struct UringTransport;

  // Executor: the engine's part of a stop.
  void stop_accepting() override;
  void finish() override;

  // The loop (uring_loop.cpp).
  [[nodiscard]] std::string wait_for_completions();
  void handle_batch();
  void dispatch(const io_uring_cqe& cqe);
  void after_batch();
  void teardown();
  void arm_accept(std::uint32_t index);
  void on_accept(std::uint32_t index, const io_uring_cqe& cqe);
  // The connection's slot, or nullopt when it was refused or closed at once.
  std::optional<std::uint32_t> adopt(UniqueFd fd, std::uint32_t index);
  [[nodiscard]] bool accepts_in_flight() const noexcept;
  // A connection accepted once the drain began: served in it.
  void adopt_late(UniqueFd fd, std::uint32_t index);
  void take_queued(std::uint32_t index);
  // A free connection slot (a new one if none), owner and fd set.
  std::uint32_t take_slot(UniqueFd fd);
  void on_connect(std::uint32_t slot, const io_uring_cqe& cqe);
  void stop_listener();
  void arm_wake();
  void on_wake(const io_uring_cqe& cqe);
  [[nodiscard]] bool sweeps_active() const noexcept;
  void sweep();
  void probe_stalled_recvs();
  void mark_probe_due(UringTransport& c) noexcept;
  void clear_probe_due(UringTransport& c) noexcept;
  void cancel(std::uint64_t user_data);
  void retry_sqes();

  // A connection's requests (uring_transport.cpp).
  std::uint64_t tag(Op op, std::uint32_t slot) const noexcept { return pack(op, slot, conns_[slot].generation); }
  void arm_recv(std::uint32_t slot);
  [[nodiscard]] std::uint32_t recv_budget(const UringTransport& c) const noexcept;
  void on_recv(std::uint32_t slot, const io_uring_cqe& cqe);
  void process(std::uint32_t slot, std::uint16_t bid, std::size_t len);
  bool try_lend(std::uint32_t slot, std::uint16_t bid, std::string_view chunk);
  void submit_output(std::uint32_t slot);
  void on_send(std::uint32_t slot, const io_uring_cqe& cqe);
  void settle(std::uint32_t slot);
  void apply_reading(std::uint32_t slot);
  void on_closed(std::uint32_t slot);
  void release_if_idle(std::uint32_t slot);
  int sender(std::uint32_t slot) {
    submit_output(slot);
    return 0;
  }

  ThreadStats stats_;
  Ring ring_;
  BufferPool pool_;            // after ring_: registered with it, and unmapped after it closes
  const bool multishot_recv_;  // recvs are multishot with a byte limit, or one-shot (arm_recv)
  // A listener and its multishot accept, whose user_data carries the index here.
  struct Listening {
    SharedListener socket;  // null once closed (a shared one closes with its last loop)
    const Endpoint* local;  // ServerContext::listening_on()'s
    bool armed = false;
    bool retry = false;  // its accept failed oddly: re-arm at the next sweep
  };
  std::vector<Listening> listeners_;
  SpareFd spare_;                 // for EMFILE
  UniqueFd wake_fd_;              // eventfd: stop() and the mailbox write, a pending read SQE completes
  std::uint64_t wake_value_ = 0;  // the read's target; stable for the loop's life
  TimerQueue timers_;

  std::deque<UringTransport> conns_;  // indexed by slot; a deque never moves its elements

  // The header and iovecs of a gathered send (sendmsg). The kernel copies them when it consumes
  // the SQE (IORING_FEAT_SUBMIT_STABLE, Linux 5.5+; the payload, in the output queue, stays put
  // until the CQE), so they are needed only until the next submit: a small pool of the thread's,
  // reused once the submission queue is empty, instead of 184 bytes in every idle connection.
  struct SendHeader {
    msghdr msg;
    std::array<iovec, UringTransport::kMaxSendIov> iov;
  };
  static constexpr std::size_t kSendHeaders = 64;
  // A header no SQE waiting for submission points to, or null when all are taken and a
  // submit could not empty the queue.
  SendHeader* send_header();
  std::array<SendHeader, kSendHeaders> send_headers_{};
  std::size_t send_headers_used_ = 0;
  std::vector<std::uint32_t> free_slots_;
  std::vector<std::uint64_t> starved_;  // tags of recvs to re-arm after the batch
  // Requests that found no free SQE (Ring::sqe: the kernel held submissions back), made again
  // after the batch.
  struct SqeRetries {
    std::vector<std::uint64_t> recvs;    // tags
    std::vector<std::uint64_t> sends;    // tags
    std::vector<std::uint64_t> cancels;  // the user_data to cancel
    bool wake = false;
    [[nodiscard]] bool due() const noexcept { return wake || !recvs.empty() || !sends.empty() || !cancels.empty(); }
  };
  SqeRetries sqe_retries_;
  std::vector<std::uint32_t> to_release_;  // closed slots to recycle once idle
  std::size_t in_flight_ = 0;              // requests whose final CQE has not arrived
  std::size_t probes_due_ = 0;             // connections with probe_due set
  std::vector<pollfd> probe_fds_;          // probe_stalled_recvs' scratch
  std::vector<std::uint32_t> probe_slots_;

  Clock::time_point now_;
  Clock::time_point next_sweep_;
  bool accept_retry_ = false;  // some listener's retry is set
  bool wake_armed_ = false;
  bool done_ = false;
  // The executor is done with this loop (its drain ended, or an immediate stop), but a
  // cancelled multishot accept has not reported its last CQE: a connection it accepted in the
  // race is still served (drained), and the loop ends once none is left.
  bool finish_requested_ = false;
  TimerId late_drain_timer_ = kNoTimer;  // bounds the drain of those late connections
  std::atomic<bool> cut_{false};         // an immediate stop was asked for: nothing late is served
};

}  // namespace iomux::detail::uring
