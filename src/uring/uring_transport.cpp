// A connection's IO on the ring: its recv, its one send in flight, and closing without freeing
// memory the kernel still uses. The connection's lifecycle (flushing, lingering, back-pressure,
// timeouts) is the ConnectionCore's; this file only moves bytes.
//
// Who owns which bytes:
//   * received bytes sit in a provided buffer (BufferPool). The handler sees them in place;
//     after its call the buffer goes straight back to the ring, unless it is lent (below);
//   * replies wait in the core's OutputQueue; the one send in flight points into its
//     segments, which stay put until the send's CQE (OutputQueue::freeze). One send at a time
//     keeps replies in order: two sends on one socket may complete in either order after a
//     short write;
//   * zero copy for echo: when nothing is queued and the only reply is bytes of the received
//     chunk itself, the send goes out of the provided buffer, which is *lent* to it and given
//     back only when the send's CQE arrives. Lending stops while a quarter of the pool is out,
//     so peers that do not read cannot starve the ring; their echo is copied instead, into
//     output bounded by --max-pending.
#include "uring/uring_transport.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <utility>

#include "uring/uring_loop.hpp"

namespace iomux::detail::uring {
namespace {

// The most one arming of a multishot recv delivers: re-arming every 64 KiB costs an SQE, and
// bounds what arrives between a back-pressure decision and the recv's end.
constexpr std::size_t kRecvBurst = 4 * BufferPool::kBufferSize;

bool within(std::string_view inner, std::string_view outer) noexcept {
  std::less_equal<const char*> le;
  return !outer.empty() && le(outer.data(), inner.data()) &&
         le(inner.data() + inner.size(), outer.data() + outer.size());
}

}  // namespace

void UringTransport::settle() {
  owner->settle(slot);
}

void UringTransport::shutdown_write() {
  ::shutdown(fd.get(), SHUT_WR);
}

void UringTransport::release_socket() {
  owner->on_closed(slot);
}

// Multishot where it can be bounded: one SQE per burst of data instead of one per read. Each
// arrival of data picks a buffer from the group and posts a CQE. A multishot recv is greedy,
// though: it reads while data and buffers last (up to 32 buffers per wake-up), and only a
// cancel stops it, too late for back-pressure. So it is armed with a byte limit (Linux 6.16+):
// at most what the connection may still owe before --max-pending, at most kRecvBurst; then it
// ends and is re-armed here (an SQE, no syscall). Without DEFER_TASKRUN the recv could also
// run whenever the thread returns to user space, even mid-batch. Where either is missing,
// plain one-shot recvs (still with buffer selection, re-armed per CQE) keep back-pressure
// exact: one buffer per recv.
void UringLoop::arm_recv(std::uint32_t slot) {
  UringTransport& c = conns_[slot];
  io_uring_sqe* sqe = ring_.sqe();
  if (!sqe) {
    sqe_retries_.recvs.push_back(tag(Op::recv, slot));
    return;
  }
  if (multishot_recv_) {
    io_uring_prep_recv_multishot(sqe, c.fd.get(), nullptr, 0, 0);
    set_recv_byte_limit(sqe, recv_budget(c));
  } else {
    io_uring_prep_recv(sqe, c.fd.get(), nullptr, 0, 0);
  }
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = BufferPool::kGroup;
  io_uring_sqe_set_data64(sqe, tag(Op::recv, slot));
  c.recv_armed = true;
  c.recv_cancelled = false;
  ++in_flight_;
  mark_probe_due(c);  // a FIN or RST may race the arming as well
}

// Bytes a multishot recv may deliver before it must be re-armed: the room left under
// --max-pending (echo owes what it receives), between one buffer and kRecvBurst. The kernel
// may overshoot the limit by the rest of the last buffer it fills.
std::uint32_t UringLoop::recv_budget(const UringTransport& c) const noexcept {
  const std::size_t high = context().options().max_pending;
  const std::size_t owed = c.core->pending_output();
  const std::size_t room = high == 0 ? kRecvBurst : high - std::min(owed, high);
  return static_cast<std::uint32_t>(std::clamp<std::size_t>(room, BufferPool::kBufferSize, kRecvBurst));
}

void UringLoop::on_recv(std::uint32_t slot, const io_uring_cqe& cqe) {
  UringTransport& c = conns_[slot];
  const int res = cqe.res;
  if (!(cqe.flags & IORING_CQE_F_MORE)) {
    c.recv_armed = false;
    c.recv_cancelled = false;
    --in_flight_;
  }
  if (cqe.flags & IORING_CQE_F_BUFFER) {
    const auto bid = static_cast<std::uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    if (res > 0 && !c.closed() && c.core->state() == ConnectionCore::State::open)
      process(slot, bid, res);
    else
      pool_.give_back(bid);  // flushing, lingering, closed: input is discarded
  }
  if (c.closed()) {
    release_if_idle(slot);
    return;
  }
  if (res == 0) {
    c.core->peer_shutdown();  // the peer shut down its side
  } else if (res == -ENOBUFS) {
    // The ring ran dry and the recv ended. Re-arming now would fail the same way; after the
    // batch, buffers are back (and the pool maybe bigger).
    if (!c.starved) {
      c.starved = true;
      starved_.push_back(tag(Op::recv, slot));
    }
  } else if (res < 0 && res != -ECANCELED) {
    c.core->io_failed(-res);
  }
  if (c.closed()) {
    release_if_idle(slot);
    return;
  }
  if (res != 0) apply_reading(slot);
}

// Runs received bytes through the connection core and sends (or queues) the replies.
void UringLoop::process(std::uint32_t slot, std::uint16_t bid, std::size_t len) {
  UringTransport& c = conns_[slot];
  ConnectionCore& core = *c.core;
  c.last_recv = now_;
  mark_probe_due(c);
  stats_.bytes_in.add(len);
  const std::string_view chunk(pool_.data(bid), len);
  if (core.hand_paused()) [[unlikely]] {
    // The recv was in flight when the handler paused reading: keep the bytes for its resume
    // (apply_reading cancels the recv after this).
    core.keep_while_paused(chunk);
    pool_.give_back(bid);
    return;
  }
  if (!core.keeps_input()) {
    core.deliver(chunk);
    const bool lent = !c.closed() && try_lend(slot, bid, chunk);
    core.finish_delivery(chunk, false, lent);
    if (!lent) pool_.give_back(bid);
  } else {
    core.kept_input().append(chunk);
    pool_.give_back(bid);
    const std::string_view kept = core.kept_input().view();
    core.deliver(kept);
    core.finish_delivery(kept, true);
  }
  if (c.closed()) return;
  core.settle_with([this, slot] { return sender(slot); });
}

// The handler's only reply is bytes of the received chunk and nothing else is owed: send them
// from the provided buffer itself, which goes back to the ring when the send completes.
bool UringLoop::try_lend(std::uint32_t slot, std::uint16_t bid, std::string_view chunk) {
  UringTransport& c = conns_[slot];
  OutputQueue& queue = c.core->queue();
  const std::string_view lone = queue.lone_transient();
  if (lone.empty() || c.send_inflight || !pool_.can_lend() || !within(lone, chunk)) return false;
  io_uring_sqe* sqe = ring_.sqe();
  if (!sqe) return false;  // copied and queued instead
  queue.drop_lone_transient();
  c.lent_bid = bid;
  c.lent_data = lone.data();
  c.lent_len = static_cast<std::uint32_t>(lone.size());
  pool_.lend();
  c.core->set_lent(lone.size());
  io_uring_prep_send(sqe, c.fd.get(), lone.data(), lone.size(), MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, tag(Op::send, slot));
  c.send_inflight = true;
  ++in_flight_;
  return true;
}

// The queue's sendable bytes become the send in flight (unless one is in flight already: its
// CQE comes back here).
void UringLoop::submit_output(std::uint32_t slot) {
  UringTransport& c = conns_[slot];
  ConnectionCore& core = *c.core;
  OutputQueue& queue = core.queue();
  if (!c.send_inflight && !queue.empty() && !queue.blocked()) {
    std::array<iovec, UringTransport::kMaxSendIov> iov;
    const std::size_t count = queue.gather(iov);
    // Several pieces go out as one sendmsg whose header lives until the submit; without a
    // free header (never seen: the pool outlasts any batch) the first piece alone is sent.
    SendHeader* h = count > 1 ? send_header() : nullptr;
    io_uring_sqe* sqe = count > 0 ? ring_.sqe() : nullptr;
    if (count > 0 && !sqe) sqe_retries_.sends.push_back(tag(Op::send, slot));
    if (sqe) {
      queue.freeze();
      if (h == nullptr) {
        io_uring_prep_send(sqe, c.fd.get(), iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
      } else {
        std::copy_n(iov.begin(), count, h->iov.begin());
        h->msg = {};
        h->msg.msg_iov = h->iov.data();
        h->msg.msg_iovlen = count;
        io_uring_prep_sendmsg(sqe, c.fd.get(), &h->msg, MSG_NOSIGNAL);
      }
      io_uring_sqe_set_data64(sqe, tag(Op::send, slot));
      c.send_inflight = true;
      ++in_flight_;
    }
  }
  core.output_changed();
}

UringLoop::SendHeader* UringLoop::send_header() {
  // No SQE is waiting for submission: every header has been copied by the kernel.
  if (io_uring_sq_ready(ring_.get()) == 0) send_headers_used_ = 0;
  if (send_headers_used_ == kSendHeaders) {
    io_uring_submit(ring_.get());
    if (io_uring_sq_ready(ring_.get()) != 0) return nullptr;
    send_headers_used_ = 0;
  }
  return &send_headers_[send_headers_used_++];
}

void UringLoop::on_send(std::uint32_t slot, const io_uring_cqe& cqe) {
  UringTransport& c = conns_[slot];
  const int res = cqe.res;
  c.send_inflight = false;
  --in_flight_;
  if (c.lent_bid >= 0) {
    // The send is done with the provided buffer: keep (copy) what it did not take, in front of
    // everything queued since, and give the buffer back to the ring only now.
    if (res > 0 && static_cast<std::uint32_t>(res) < c.lent_len && !c.closed())
      c.core->queue().prepend_copy({c.lent_data + res, c.lent_len - static_cast<std::uint32_t>(res)});
    pool_.give_back(static_cast<std::uint16_t>(c.lent_bid));
    pool_.unlend();
    c.lent_bid = -1;
    c.lent_data = nullptr;
    c.lent_len = 0;
    if (!c.closed()) {
      c.core->set_lent(0);
      if (res > 0) stats_.bytes_out.add(static_cast<std::uint64_t>(res));
    }
  } else if (!c.closed()) {
    c.core->queue().unfreeze();
    if (res > 0) c.core->sent(static_cast<std::size_t>(res));
  }
  if (c.closed()) {
    release_if_idle(slot);
    return;
  }
  if (res <= 0) {
    c.core->io_failed(res < 0 ? -res : EPIPE);
    release_if_idle(slot);
    return;
  }
  settle(slot);
  if (c.closed()) release_if_idle(slot);
}

// After the core changed: send what is owed, then read or stop reading as it wants.
void UringLoop::settle(std::uint32_t slot) {
  UringTransport& c = conns_[slot];
  if (c.core->connecting()) [[unlikely]] {
    // Nothing can be sent or read yet: account for what was queued (budget, back-pressure).
    c.core->output_changed();
    return;
  }
  c.core->settle_with([this, slot] { return sender(slot); });
  if (!c.closed()) apply_reading(slot);
}

// Arms the recv when the core wants input (or is discarding it while lingering), cancels it
// when the core paused or stopped reading.
void UringLoop::apply_reading(std::uint32_t slot) {
  UringTransport& c = conns_[slot];
  const ConnectionCore& core = *c.core;
  const bool want = core.wants_read() || core.discarding();
  if (want) {
    if (!c.recv_armed && !c.starved) arm_recv(slot);
    return;
  }
  if (c.recv_armed && !c.recv_cancelled) {
    // Submitted at once, not with the batch: the recv keeps reading until the cancel lands.
    // Pausing is rare, so it can afford a syscall of its own.
    c.recv_cancelled = true;
    cancel(tag(Op::recv, slot));
    io_uring_submit(ring_.get());
  }
}

// The core closed (logged, counted, handler told): cancel what is in flight; the slot follows
// once their final CQEs are in (release_if_idle, never from inside the core's own call).
void UringLoop::on_closed(std::uint32_t slot) {
  UringTransport& c = conns_[slot];
  clear_probe_due(c);
  if (c.recv_armed && !c.recv_cancelled) {
    c.recv_cancelled = true;
    cancel(tag(Op::recv, slot));
  }
  if (c.send_inflight) cancel(tag(Op::send, slot));
  if (c.outbound) {
    if (c.connect_inflight) cancel(tag(Op::connect, slot));
    if (c.outbound->timer != kNoTimer) timers_.cancel(std::exchange(c.outbound->timer, kNoTimer));
  }
  if (!c.release_due) {
    c.release_due = true;
    to_release_.push_back(slot);
  }
}

void UringLoop::release_if_idle(std::uint32_t slot) {
  UringTransport& c = conns_[slot];
  if (!c.core || !c.closed() || c.busy()) return;
  c.core.reset();
  c.outbound.reset();
  c.fd.reset();
  c.starved = c.release_due = false;
  ++c.generation;  // completions still carrying the old generation are stale from now on
  free_slots_.push_back(slot);
}

}  // namespace iomux::detail::uring
