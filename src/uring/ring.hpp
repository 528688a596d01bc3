// The two kernel-shared structures of the uring model, each behind a small RAII class:
//
//   Ring        the submission/completion queue pair (io_uring_setup), created with the best
//               flags the kernel accepts;
//   BufferPool  a "provided buffer ring": receive buffers we lend the kernel up front, so a
//               multishot recv can pick one when data arrives instead of each recv naming its
//               buffer in advance (which would pin a buffer per idle connection).
//
// Both are single-threaded: after bind_to_this_thread() only the loop thread touches them.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace iomux::detail::uring {

// Throws ServerError unless this kernel lets us use every io_uring feature the model needs
// (provided buffer rings: 5.19; multishot recv: 6.0). It asks by trying them on a socketpair:
// opcode probes cannot tell a multishot-capable recv from an old one.
void check_kernel_support();

// True if this kernel (6.16+) caps a multishot recv at a byte count: the recv ends (a CQE
// without IORING_CQE_F_MORE) once that much has arrived since it was armed. Asked once per
// process, by trying it.
[[nodiscard]] bool kernel_limits_multishot_recv();
// Caps the multishot recv `sqe` at `bytes` (0: no cap). Only for kernels where the above holds;
// older ones reject the SQE.
void set_recv_byte_limit(io_uring_sqe* sqe, std::uint32_t bytes) noexcept;

class Ring {
 public:
  // Tries SINGLE_ISSUER + DEFER_TASKRUN (6.1), then COOP_TASKRUN (5.19), then no flags; falls
  // back only when the kernel answers EINVAL (a flag it does not know). Throws ServerError.
  Ring(unsigned sq_entries, unsigned cq_entries);
  ~Ring() { close(); }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // Loop thread, before the first submission: a SINGLE_ISSUER ring belongs to the thread that
  // enables it, so it is created disabled and enabled here. Also registers the ring fd with
  // this thread, which spares every io_uring_enter an fd lookup.
  void bind_to_this_thread();
  // Loop thread, after the last submission.
  void unbind_from_this_thread() noexcept;

  // Loop thread: a free SQE. When the submission queue is full, what is queued is submitted
  // first (an extra syscall, only under a burst bigger than the queue). Null when even then
  // there is no room (the kernel holding submissions back): never a throw on the request path;
  // the caller tries again after the batch.
  io_uring_sqe* sqe() noexcept {
    if (refuse_every_ != 0 && ++asked_ % refuse_every_ == 0) [[unlikely]]
      return nullptr;
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    return sqe ? sqe : sqe_after_submit();
  }

  // Tears the ring down (cancelling whatever is still in flight). Idempotent.
  void close() noexcept;

  io_uring* get() noexcept { return &ring_; }
  // True with DEFER_TASKRUN: completion work runs only inside our io_uring_enter.
  [[nodiscard]] bool defers_task_work() const noexcept { return defers_task_work_; }
  // E.g. "single-issuer, deferred task work" — which rung of the fallback ladder we got.
  [[nodiscard]] std::string_view description() const noexcept { return description_; }

 private:
  io_uring_sqe* sqe_after_submit() noexcept;

  io_uring ring_{};
  // Tests of the paths that find no SQE: IOMUX_URING_REFUSE_SQE=N makes every Nth sqe() null.
  unsigned refuse_every_ = 0;
  unsigned asked_ = 0;
  bool open_ = false;
  bool disabled_ = false;  // created with IORING_SETUP_R_DISABLED; enabled by the loop thread
  bool defers_task_work_ = false;
  std::string_view description_;
};

class BufferPool {
 public:
  static constexpr std::uint16_t kGroup = 0;  // the buffer group id recvs select from
  // 16 KiB: a request of up to 16 KiB arrives in one completion and, in echo mode, goes back
  // out in one send lent from its buffer (with 4 KiB buffers a 16 KiB echo took four
  // completions and two sends, 12 KiB copied). Safe for back-pressure only because every recv
  // is bounded: a multishot recv takes up to 32 buffers per wake-up before a cancel can land,
  // so it is armed with a byte limit, or not used at all (UringLoop::arm_recv).
  static constexpr unsigned kBufferSize = 16 * 1024;
  static constexpr unsigned kBuffersPerSlab = 256;  // we start with one slab: 4 MiB
  static constexpr unsigned kMaxBuffers = 1024;     // ring entries; the cap: 16 MiB

  // Registers the ring (size kMaxBuffers) and fills it with one slab. Throws ServerError.
  explicit BufferPool(io_uring& ring);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  [[nodiscard]] char* data(std::uint16_t bid) const noexcept {
    return slabs_[bid / kBuffersPerSlab] + std::size_t{bid % kBuffersPerSlab} * kBufferSize;
  }

  // Hands a buffer back to the kernel. Staged: it becomes visible at the next publish().
  void give_back(std::uint16_t bid) noexcept;
  // One release-store of the ring tail for every buffer given back since the last call.
  void publish() noexcept;

  // Adds another slab (after -ENOBUFS) unless the pool is at kMaxBuffers. True if it grew.
  bool grow();

  // Buffers kept past the completion batch that delivered them (lent to a send in flight).
  // Lending is allowed while few are out, so slow peers can never starve the ring.
  [[nodiscard]] bool can_lend() const noexcept { return lent_ < total_ / 4; }
  void lend() noexcept { ++lent_; }
  void unlend() noexcept { --lent_; }

  [[nodiscard]] unsigned total() const noexcept { return total_; }

 private:
  void add_slab();

  io_uring& ring_;
  io_uring_buf_ring* br_ = nullptr;  // kMaxBuffers entries, page aligned (mmap)
  std::vector<char*> slabs_;         // mmap'd, kBuffersPerSlab * kBufferSize each
  unsigned total_ = 0;
  unsigned lent_ = 0;
  int staged_ = 0;  // given back but not yet published
};

}  // namespace iomux::detail::uring
