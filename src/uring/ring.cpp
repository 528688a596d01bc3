#include "uring/ring.hpp"

#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "core/fd.hpp"
#include "iomux/server.hpp"

namespace iomux::detail::uring {
namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

// Anonymous, page-aligned memory: what a provided buffer ring must live in.
void* map_anonymous(std::size_t bytes) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

constexpr std::size_t kRingBytes = BufferPool::kMaxBuffers * sizeof(io_uring_buf);
constexpr std::size_t kSlabBytes = std::size_t{BufferPool::kBuffersPerSlab} * BufferPool::kBufferSize;

// One recv on a throwaway ring, a one-buffer provided ring and a socketpair holding one byte:
// what the kernel answers to the SQE `prepare` writes. The way to ask the kernel about recv
// features (opcode probes cannot tell a multishot-capable recv from an old one). Fills
// `result`, or returns why it could not ask.
std::string try_recv(void (*prepare)(io_uring_sqe*, int fd), io_uring_cqe& result) {
  io_uring ring;
  if (int rc = io_uring_queue_init(8, &ring, 0); rc < 0)
    return "io_uring_setup failed: " + errno_text(-rc) +
           " (kernel without io_uring, or refused by the sandbox / io_uring_disabled)";
  // Everything below is undone in reverse order whatever happens.
  char buffer[64];
  void* ring_mem = nullptr;
  UniqueFd ends[2];
  auto cleanup = [&] {
    io_uring_queue_exit(&ring);  // cancels a multishot recv before its buffer goes away
    if (ring_mem) ::munmap(ring_mem, 4096);
  };
  std::string failure;
  do {
    ring_mem = map_anonymous(4096);
    if (!ring_mem) {
      failure = "cannot map a buffer ring: " + errno_text(errno);
      break;
    }
    auto* br = static_cast<io_uring_buf_ring*>(ring_mem);
    io_uring_buf_ring_init(br);
    io_uring_buf_ring_add(br, buffer, sizeof buffer, 0, io_uring_buf_ring_mask(8), 0);
    io_uring_buf_ring_advance(br, 1);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(ring_mem);
    reg.ring_entries = 8;
    reg.bgid = 0;
    if (int rc = io_uring_register_buf_ring(&ring, &reg, 0); rc < 0) {
      failure = "provided buffer rings are unsupported (need Linux 5.19): " + errno_text(-rc);
      break;
    }
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      failure = "socketpair: " + errno_text(errno);
      break;
    }
    ends[0].reset(sv[0]);
    ends[1].reset(sv[1]);
    if (::write(ends[1].get(), "x", 1) != 1) {
      failure = "socketpair write: " + errno_text(errno);
      break;
    }
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    prepare(sqe, ends[0].get());
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = 0;
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec ts{2, 0};
    int rc = io_uring_submit(&ring);
    if (rc == 1) rc = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
    if (rc < 0) {
      failure = "the recv did not complete: " + errno_text(-rc);
      break;
    }
    result = *cqe;
    io_uring_cqe_seen(&ring, cqe);
  } while (false);
  cleanup();
  return failure;
}

}  // namespace

void set_recv_byte_limit(io_uring_sqe* sqe, std::uint32_t bytes) noexcept {
  // Linux 6.16+ reads the limit from sqe->optlen, which shares offset 44 with file_index in
  // liburing 2.3's older view of the SQE (the field is unused by recv before 6.16, which
  // rejects a non-zero value with EINVAL: the probe below relies on that).
  static_assert(offsetof(io_uring_sqe, file_index) == 44);
  sqe->file_index = bytes;
}

void check_kernel_support() {
  io_uring_cqe cqe{};
  const std::string failure =
      try_recv([](io_uring_sqe* sqe, int fd) { io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0); }, cqe);
  if (!failure.empty()) throw ServerError("io_uring: " + failure);
  if (cqe.res < 0)
    throw ServerError("io_uring: multishot recv is unsupported (need Linux 6.0): " + errno_text(-cqe.res));
  if (cqe.res != 1 || !(cqe.flags & IORING_CQE_F_BUFFER) || !(cqe.flags & IORING_CQE_F_MORE))
    throw ServerError("io_uring: multishot recv did not stay armed (need Linux 6.0)");
}

bool kernel_limits_multishot_recv() {
  static const bool supported = [] {
    io_uring_cqe cqe{};
    // A limit of one byte, one byte waiting: a kernel that honours the limit delivers it and
    // ends the recv (no IORING_CQE_F_MORE); an older one refuses the SQE with EINVAL.
    const std::string failure = try_recv(
        [](io_uring_sqe* sqe, int fd) {
          io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
          set_recv_byte_limit(sqe, 1);
        },
        cqe);
    return failure.empty() && cqe.res == 1 && !(cqe.flags & IORING_CQE_F_MORE);
  }();
  return supported;
}

// ---------------------------------------------------------------------------------------- Ring

Ring::Ring(unsigned sq_entries, unsigned cq_entries) {
  if (const char* every = std::getenv("IOMUX_URING_REFUSE_SQE")) refuse_every_ = std::atoi(every);
  struct Rung {
    unsigned flags;
    std::string_view what;
  };
  // Best first. SINGLE_ISSUER promises one submitting thread, so the kernel skips locking;
  // DEFER_TASKRUN runs completion work only when we wait for it (in our io_uring_enter),
  // instead of interrupting us with task-work IPIs mid-batch; it needs SINGLE_ISSUER, hence
  // R_DISABLED (see bind_to_this_thread). COOP_TASKRUN is the weaker pre-6.1 form of the same.
  // SUBMIT_ALL keeps submitting the batch past an SQE that fails at once.
  static constexpr Rung kLadder[] = {
      {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED | IORING_SETUP_SUBMIT_ALL,
       "single issuer, deferred task work"},
      {IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL, "cooperative task work"},
      {0, "no setup flags"},
  };
  int rc = -EINVAL;
  for (const Rung& rung : kLadder) {
    io_uring_params p{};
    p.flags = rung.flags | IORING_SETUP_CQSIZE;
    p.cq_entries = cq_entries;
    rc = io_uring_queue_init_params(sq_entries, &ring_, &p);
    if (rc == 0) {
      open_ = true;
      disabled_ = rung.flags & IORING_SETUP_R_DISABLED;
      defers_task_work_ = rung.flags & IORING_SETUP_DEFER_TASKRUN;
      description_ = rung.what;
      return;
    }
    if (rc != -EINVAL) break;  // not a flag problem: out of memory, not permitted, ...
  }
  throw ServerError("io_uring_setup failed: " + errno_text(-rc));
}

void Ring::bind_to_this_thread() {
  if (disabled_) {
    // io_uring_enable_rings() is declared by liburing 2.3 but missing from its shared
    // library, so the register opcode is issued directly (it returns -errno).
    if (int rc = io_uring_register(ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0); rc < 0)
      throw ServerError("io_uring: cannot enable the ring: " + errno_text(-rc));
    disabled_ = false;
  }
  (void)io_uring_register_ring_fd(&ring_);  // an optimisation only: fine if refused
}

void Ring::unbind_from_this_thread() noexcept {
  // A registered ring fd belongs to the registering thread and pins the ring until that
  // thread exits; give it back here, where it was taken.
  if (open_) (void)io_uring_unregister_ring_fd(&ring_);
}

io_uring_sqe* Ring::sqe_after_submit() noexcept {
  io_uring_submit(&ring_);
  return io_uring_get_sqe(&ring_);
}

void Ring::close() noexcept {
  if (!std::exchange(open_, false)) return;
  io_uring_queue_exit(&ring_);
}

// ---------------------------------------------------------------------------------- BufferPool

BufferPool::BufferPool(io_uring& ring) : ring_(ring) {
  void* mem = map_anonymous(kRingBytes);
  if (!mem) throw ServerError("io_uring: cannot map the buffer ring: " + errno_text(errno));
  br_ = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(br_);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uintptr_t>(mem);
  reg.ring_entries = kMaxBuffers;
  reg.bgid = kGroup;
  if (int rc = io_uring_register_buf_ring(&ring_, &reg, 0); rc < 0) {
    ::munmap(br_, kRingBytes);
    throw ServerError("io_uring: cannot register the buffer ring: " + errno_text(-rc));
  }
  try {
    add_slab();
  } catch (...) {
    // The ring stays registered (no request uses it yet); the ring's teardown drops it.
    for (char* s : slabs_) ::munmap(s, kSlabBytes);
    ::munmap(br_, kRingBytes);
    throw;
  }
  publish();
}

// Must run after the Ring is closed: the kernel may write into these buffers until then.
BufferPool::~BufferPool() {
  for (char* s : slabs_) ::munmap(s, kSlabBytes);
  ::munmap(br_, kRingBytes);
}

void BufferPool::add_slab() {
  void* mem = map_anonymous(kSlabBytes);
  if (!mem) throw ServerError("io_uring: cannot map receive buffers: " + errno_text(errno));
  slabs_.push_back(static_cast<char*>(mem));
  const unsigned first = total_;
  total_ += kBuffersPerSlab;
  for (unsigned bid = first; bid < total_; ++bid) give_back(static_cast<std::uint16_t>(bid));
}

bool BufferPool::grow() {
  if (total_ + kBuffersPerSlab > kMaxBuffers) return false;
  try {
    add_slab();
  } catch (const ServerError&) {
    return false;
  }
  return true;
}

void BufferPool::give_back(std::uint16_t bid) noexcept {
  io_uring_buf_ring_add(br_, data(bid), kBufferSize, bid, io_uring_buf_ring_mask(kMaxBuffers), staged_++);
}

void BufferPool::publish() noexcept {
  if (staged_ == 0) return;
  io_uring_buf_ring_advance(br_, staged_);
  staged_ = 0;
}

}  // namespace iomux::detail::uring
