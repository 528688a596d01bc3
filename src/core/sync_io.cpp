#include "core/sync_io.hpp"

namespace iomux::detail {

int send_owed_slow(ConnectionCore& core, int fd, bool blocking, SendBatch* batch, const SendBatch::SendResult* sent) {
  std::size_t written = 0;
  int err = 0;
  bool socket_full = false;
  if (batch && !sent) {
    batch->spill(0, core.queue());  // a large batch for a blocking socket: see below
  } else if (batch) {
    // Sent once, not whole: what the socket did not take waits in the queue, in order.
    written = sent->written;
    err = sent->error;
    batch->spill(sent->written, core.queue());
    socket_full = !blocking;
    // A blocking socket that took nothing for its SO_SNDTIMEO (send_timeout).
    if (blocking && sent->written == 0 && sent->error == 0) err = ETIME;
  }
  OutputQueue& queue = core.queue();
  if (blocking && err == 0) {
    // What waits is counted before the thread sleeps in send() to a peer that may never read
    // (until send_timeout): the memory budget must see it, and may evict the connection now.
    core.output_changed();
    if (core.state() == ConnectionCore::State::closed) return 0;
  }
  while (err == 0 && !socket_full && !queue.empty() && !queue.blocked()) {
    iovec iov[SendBatch::kMaxIov];
    const std::size_t count = queue.gather(iov);
    if (count == 0) break;
    std::size_t asked = 0;
    for (std::size_t i = 0; i < count; ++i) asked += iov[i].iov_len;
    const ssize_t n = sys::sendv(fd, iov, count);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        err = errno;
      else if (blocking)
        err = ETIME;  // SO_SNDTIMEO (send_timeout) passed with nothing taken
      break;
    }
    queue.consume(static_cast<std::size_t>(n));
    written += static_cast<std::size_t>(n);
    if (static_cast<std::size_t>(n) < asked && !blocking) break;
  }
  if (written > 0) core.executor().stats().bytes_out.add(written);
  core.output_changed();
  return err;
}

}  // namespace iomux::detail
