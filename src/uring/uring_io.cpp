// A connection's IO on the ring: its multishot recv, its one send in flight, back-pressure,
// and closing without freeing memory the kernel still uses.
//
// Who owns which bytes:
//   * received bytes sit in a provided buffer (BufferPool). After the protocol core has seen
//     them the buffer goes straight back to the ring, unless it is lent (below);
//   * replies are copied into the connection's `out` Buffer; `sending` holds the bytes of the
//     one send in flight and is not touched until that send's CQE. When it completes the two
//     swap, so steady traffic allocates nothing. One send at a time keeps replies in order:
//     two sends on one socket may complete in either order after a short write;
//   * zero copy for echo: when nothing is queued and the only reply is the received chunk
//     itself, the send goes out of the provided buffer, which is *lent* to it and given back
//     only when the send's CQE arrives. Lending stops while a quarter of the pool is out, so
//     peers that do not read cannot starve the ring; their echo is copied instead, into
//     output bounded by --max-pending.
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <utility>

#include "uring/uring_thread.hpp"

namespace iomux::detail::uring {
namespace {

using State = Connection::State;

// After a protocol error: how long to discard input before closing (as the reactor does), so
// the error line is not destroyed by the reset that closing over unread input would send.
constexpr std::chrono::milliseconds kLingerTime{2000};
// An emptied output buffer keeps its storage up to this size, for the next replies.
constexpr std::size_t kKeepCapacity = 16 * 1024;
// The most one arming of a multishot recv delivers: re-arming every 64 KiB costs an SQE, and
// bounds what arrives between a back-pressure decision and the recv's end.
constexpr std::size_t kRecvBurst = 4 * BufferPool::kBufferSize;

void trim(Buffer& b) noexcept {
  if (b.empty() && b.capacity() > kKeepCapacity) b.release_if_empty();
}

bool within(std::string_view inner, std::string_view outer) noexcept {
  std::less_equal<const char*> le;
  return !outer.empty() && le(outer.data(), inner.data()) &&
         le(inner.data() + inner.size(), outer.data() + outer.size());
}

// Where the protocol core's replies go: copied into `out` (they must outlive consume()), or,
// for a lone reply lying inside `lendable` (the received buffer), only remembered, so that
// the caller can send it from there.
class OutputSink final : public ReplySink {
 public:
  OutputSink(Buffer& out, RequestHook hook, std::string_view lendable) noexcept
      : out_(out), hook_(hook), lendable_(lendable) {}

  void reply(std::string_view bytes) override {
    if (bytes.empty()) return;
    if (lent_.empty() && out_.empty() && within(bytes, lendable_)) {
      lent_ = bytes;
      return;
    }
    if (!lent_.empty()) out_.append(std::exchange(lent_, {}));  // a second reply: copy both
    lendable_ = {};
    out_.append(bytes);
  }
  void on_request(std::string_view request) override {
    if (hook_.fn) hook_.fn(hook_.arg, request);
  }
  [[nodiscard]] std::string_view lent() const noexcept { return lent_; }

 private:
  Buffer& out_;
  RequestHook hook_;
  std::string_view lendable_;
  std::string_view lent_;
};

}  // namespace

bool UringThread::wants_recv(const Connection& c) const noexcept {
  return (c.state == State::open && !c.paused) || c.state == State::lingering;
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
void UringThread::arm_recv(std::uint32_t slot) {
  Connection& c = conns_[slot];
  io_uring_sqe* sqe = ring_.sqe();
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
  ++in_flight_;
  mark_probe_due(c);  // a FIN or RST may race the arming as well
}

// Bytes a multishot recv may deliver before it must be re-armed: the room left under
// --max-pending (echo owes what it receives), between one buffer and kRecvBurst. The kernel
// may overshoot the limit by the rest of the last buffer it fills.
std::uint32_t UringThread::recv_budget(const Connection& c) const noexcept {
  const std::size_t high = ctx_.options().max_pending;
  const std::size_t room = high == 0 ? kRecvBurst : high - std::min(c.pending, high);
  return static_cast<std::uint32_t>(std::clamp<std::size_t>(room, BufferPool::kBufferSize, kRecvBurst));
}

void UringThread::on_recv(std::uint32_t slot, const io_uring_cqe& cqe) {
  Connection& c = conns_[slot];
  const int res = cqe.res;
  if (!(cqe.flags & IORING_CQE_F_MORE)) {
    c.recv_armed = false;
    --in_flight_;
  }
  if (cqe.flags & IORING_CQE_F_BUFFER) {
    const auto bid = static_cast<std::uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    if (res > 0 && c.state == State::open) process(slot, bid, static_cast<std::size_t>(res));
    else pool_.give_back(bid);  // flushing, lingering, closed: input is discarded
  }
  if (res == 0) {  // the peer shut down its side
    if (c.state == State::open) {
      c.state = State::flushing;
      c.close_reason = "closed by peer";
    }
    c.peer_closed = true;
    if ((c.state == State::flushing && c.pending == 0) || c.state == State::lingering) close(slot, c.close_reason);
  } else if (res == -ENOBUFS) {
    // The ring ran dry and the multishot recv ended. Re-arming now would fail the same way;
    // after the batch, buffers are back (and the pool maybe bigger).
    if (!c.starved && c.state != State::closed) {
      c.starved = true;
      starved_.push_back(tag(Op::recv, slot));
    }
  } else if (res < 0 && res != -ECANCELED) {
    close(slot, describe_errno(-res));
  }
  if (c.recv_armed) return;
  if (c.state == State::closed) release_if_idle(slot);
  else if (res != 0 && !c.starved && wants_recv(c)) arm_recv(slot);
}

// Runs received bytes through the protocol core and queues (or sends) the replies.
void UringThread::process(std::uint32_t slot, std::uint16_t bid, std::size_t len) {
  Connection& c = conns_[slot];
  c.last_activity = now_;
  mark_probe_due(c);
  stats_.bytes_in.add(len);
  const std::string_view chunk(pool_.data(bid), len);
  const bool may_lend = !c.send_inflight && c.out.empty() && pool_.can_lend();
  OutputSink sink(c.out, ctx_.request_hook(&c.peer), may_lend ? chunk : std::string_view());
  const Protocol& protocol = ctx_.protocol();
  ConsumeResult r;
  if (c.in.empty()) {
    r = protocol.consume(chunk, 0, sink);
    if (r.consumed < len) c.in.append(chunk.substr(r.consumed));
  } else {
    c.in.append(chunk);
    r = protocol.consume(c.in.view(), c.scanned, sink);
    c.in.consume(r.consumed);
    trim(c.in);
  }
  c.scanned = c.in.readable();
  c.requests += r.requests;
  stats_.requests.add(r.requests);

  if (const std::string_view lent = sink.lent(); !lent.empty()) {
    c.lent_bid = bid;
    c.lent_data = lent.data();
    c.lent_len = static_cast<std::uint32_t>(lent.size());
    pool_.lend();
    submit_send(slot, lent.data(), lent.size());
  } else {
    pool_.give_back(bid);
    if (!c.send_inflight && !c.out.empty()) start_send(slot);
  }

  if (r.close) {
    ctx_.log().warn("closing connection from {}: line longer than --max-line ({} bytes)", c.peer.to_string(),
                    ctx_.options().protocol.max_line);
    c.state = State::flushing;
    c.close_reason = "protocol error: line too long";
    c.protocol_error = true;
    c.in.clear();
    c.in.release_if_empty();
    c.scanned = 0;
    if (c.recv_armed) cancel(tag(Op::recv, slot));
  }
  update_pending(slot);
  if (c.state == State::flushing && c.pending == 0) finish_flush(slot);
}

void UringThread::submit_send(std::uint32_t slot, const char* data, std::size_t len) {
  Connection& c = conns_[slot];
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_send(sqe, c.fd.get(), data, len, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, tag(Op::send, slot));
  c.send_inflight = true;
  ++in_flight_;
}

// The queued replies become the send in flight.
void UringThread::start_send(std::uint32_t slot) {
  Connection& c = conns_[slot];
  std::swap(c.out, c.sending);
  submit_send(slot, c.sending.peek(), c.sending.readable());
}

void UringThread::on_send(std::uint32_t slot, const io_uring_cqe& cqe) {
  Connection& c = conns_[slot];
  const int res = cqe.res;
  c.send_inflight = false;
  --in_flight_;
  if (c.lent_bid >= 0) {
    // The send is done with the provided buffer: keep (copy) what it did not take, and give
    // the buffer back to the ring only now.
    if (res > 0 && static_cast<std::uint32_t>(res) < c.lent_len && c.state != State::closed)
      c.sending.append(c.lent_data + res, c.lent_len - static_cast<std::uint32_t>(res));
    pool_.give_back(static_cast<std::uint16_t>(c.lent_bid));
    pool_.unlend();
    c.lent_bid = -1;
    c.lent_data = nullptr;
    c.lent_len = 0;
  } else if (res > 0) {
    c.sending.consume(static_cast<std::size_t>(res));
  }
  if (c.state == State::closed) {
    release_if_idle(slot);
    return;
  }
  if (res <= 0) {
    close(slot, describe_errno(res < 0 ? -res : EPIPE));
    return;
  }
  stats_.bytes_out.add(static_cast<std::uint64_t>(res));
  if (!c.sending.empty()) {
    submit_send(slot, c.sending.peek(), c.sending.readable());  // a short send: the rest first
  } else {
    trim(c.sending);
    if (!c.out.empty()) start_send(slot);
  }
  update_pending(slot);
  if (c.state == State::flushing && c.pending == 0) finish_flush(slot);
}

// Accounts the connection's owed bytes and applies back-pressure: at --max-pending its recv
// is cancelled (data already received is still answered: the bound is soft by one batch), and
// below half of it the recv is armed again.
void UringThread::update_pending(std::uint32_t slot) {
  Connection& c = conns_[slot];
  const std::size_t pending = c.out.readable() + c.sending.readable() + c.lent_len;
  if (pending > c.pending) {
    stats_.bytes_pending.add(pending - c.pending);
    if (pending > stats_.peak_pending_per_connection.get()) stats_.peak_pending_per_connection.set(pending);
  } else if (pending < c.pending) {
    stats_.bytes_pending.sub(c.pending - pending);
  }
  c.pending = pending;
  const std::size_t high = ctx_.options().max_pending;
  if (!c.paused && high > 0 && pending >= high && c.state == State::open) {
    c.paused = true;
    stats_.connections_paused.add();
    if (c.recv_armed) {
      // Submitted at once, not with the batch: the recv keeps reading until the cancel lands.
      // Pausing is rare, so it can afford a syscall of its own.
      cancel(tag(Op::recv, slot));
      io_uring_submit(ring_.get());
    }
  } else if (c.paused && pending <= high / 2) {
    c.paused = false;
    stats_.connections_paused.sub();
    if (!c.recv_armed && !c.starved && wants_recv(c)) arm_recv(slot);
  }
  if (pending == 0) trim(c.out);
}

// Everything owed has been sent on a connection that is to close.
void UringThread::finish_flush(std::uint32_t slot) {
  Connection& c = conns_[slot];
  if (!c.protocol_error || c.peer_closed) {
    close(slot, c.close_reason);
    return;
  }
  // Tell the peer we are done, then discard its input until it closes (bounded).
  ::shutdown(c.fd.get(), SHUT_WR);
  c.state = State::lingering;
  c.last_activity = now_ + kLingerTime;  // the deadline, for sweep_timers()
  ++lingering_;
  if (!c.recv_armed) arm_recv(slot);
}

// Graceful stop: no more reading; close once owed replies are out.
void UringThread::drain_connection(std::uint32_t slot) {
  Connection& c = conns_[slot];
  if (c.state == State::lingering) {
    close(slot, c.close_reason);
    return;
  }
  if (c.state != State::open) return;
  c.state = State::flushing;
  c.close_reason = "server shutting down";
  if (c.pending == 0) {
    close(slot, c.close_reason);
    return;
  }
  if (c.recv_armed) cancel(tag(Op::recv, slot));
}

// The connection is gone as far as anyone can tell (logged, counted); its slot follows once
// its requests have reported back (release_if_idle).
void UringThread::close(std::uint32_t slot, std::string_view why) {
  Connection& c = conns_[slot];
  if (c.state == State::free || c.state == State::closed) return;
  if (c.state == State::lingering) --lingering_;
  c.state = State::closed;
  clear_probe_due(c);
  stats_.bytes_pending.sub(c.pending);
  c.pending = 0;
  if (c.paused) stats_.connections_paused.sub();
  c.paused = false;
  stats_.connections_open.sub();
  ctx_.release();
  --live_;
  ctx_.log_disconnect(c.peer, why, c.requests);
  if (c.recv_armed) cancel(tag(Op::recv, slot));
  if (c.send_inflight) cancel(tag(Op::send, slot));
  release_if_idle(slot);
}

void UringThread::release_if_idle(std::uint32_t slot) {
  Connection& c = conns_[slot];
  if (c.state != State::closed || c.busy()) return;
  c.fd.reset();
  for (Buffer* b : {&c.in, &c.out, &c.sending}) {
    b->clear();
    trim(*b);
  }
  c.scanned = 0;
  c.requests = 0;
  c.close_reason = "";
  c.starved = c.peer_closed = c.protocol_error = false;
  ++c.generation;  // completions still carrying the old generation are stale from now on
  c.state = State::free;
  free_slots_.push_back(slot);
}

}  // namespace iomux::detail::uring
