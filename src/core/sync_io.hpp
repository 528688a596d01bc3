// How the synchronous engines (the reactor and the blocking family) move a connection's bytes:
// recv() what has arrived into the thread's scratch area (or onto the connection's kept input),
// run it through the connection core, send the replies with one sendmsg. The uring engine
// receives into kernel-chosen buffers and sends asynchronously instead (src/uring/).
#pragma once

#include <sys/types.h>

#include <cerrno>
#include <cstddef>
#include <span>
#include <string_view>

#include "core/connection_core.hpp"
#include "core/executor.hpp"
#include "core/send_batch.hpp"
#include "core/sys.hpp"

namespace iomux::detail {

// The rest of send_owed(), after the common case: a batch the socket did not take whole (it
// was sent once, with `*sent`), a large batch for a blocking socket (not sent yet: `sent` is
// null), or a queue with something to send.
int send_owed_slow(ConnectionCore& core, int fd, bool blocking, SendBatch* batch, const SendBatch::SendResult* sent);

// A blocking send of more than this waits in the connection's queue, where the memory budget
// counts it, rather than in the thread's batch, where it would not be counted while the thread
// sleeps in send() to a peer that does not read.
inline constexpr std::size_t kBlockingBatchLimit = 64 * 1024;

// Sends what `core` owes on `fd`: the batch of the handler call just made, then what the queue
// may send now, while the socket takes it all (a short send means it is full). `kBlocking`: the
// socket blocks, so go on until everything is sent (or the send times out: ETIME). Accounts
// (output_changed). Returns the errno of a failed send, 0 otherwise. Inline, and `kBlocking` a
// template argument: the common case is one send() that takes the whole batch, and the
// readiness engines' code carries nothing of the blocking one.
template <bool kBlocking>
[[gnu::always_inline]] inline int send_owed(ConnectionCore& core, int fd) {
  SendBatch* batch = core.batch();
  if (batch) {
    core.detach_batch();
    if (batch->empty()) [[unlikely]] {
      batch = nullptr;
    } else {
      const std::size_t total = batch->bytes();
      if (kBlocking && total > kBlockingBatchLimit) [[unlikely]]
        return send_owed_slow(core, fd, kBlocking, batch, nullptr);
      const SendBatch::SendResult r = batch->send(fd);
      if (r.written == total) [[likely]] {
        batch->clear();
        core.executor().stats().bytes_out.add(total);
        if (core.queue().empty()) [[likely]] {
          core.output_changed();
          return 0;
        }
        return send_owed_slow(core, fd, kBlocking, nullptr, nullptr);
      }
      return send_owed_slow(core, fd, kBlocking, batch, &r);
    }
  }
  if (core.queue().empty()) {
    core.output_changed();
    return 0;
  }
  return send_owed_slow(core, fd, kBlocking, nullptr, nullptr);
}

struct ReadResult {
  ssize_t n = 0;          // bytes read; 0 at EOF (the caller decides: the peer's FIN, or a stop);
                          // < 0: failed (error says why; EAGAIN: nothing there)
  std::size_t asked = 0;  // what the read asked for: a shorter read drained the socket
  int error = 0;
};

// One read on `fd` and everything that follows from it: the handler's call and the send of its
// replies; a failure (the core closes); while lingering, the input discarded. EOF is left to
// the caller (core.peer_shutdown(), unless it knows better). `kBlocking`: as send_owed's.
// Inline: this is the path of every request.
template <bool kBlocking>
[[gnu::always_inline]] inline ReadResult read_and_serve(ConnectionCore& core, int fd, std::span<char> scratch) {
  ReadResult r;
  if (core.discarding()) [[unlikely]] {
    r.asked = scratch.size();
    r.n = sys::recv(fd, scratch.data(), scratch.size());
  } else if (!core.keeps_input()) {
    r.asked = scratch.size();
    r.n = sys::recv(fd, scratch.data(), scratch.size());
    if (r.n > 0) {
      core.executor().stats().bytes_in.add(static_cast<std::uint64_t>(r.n));
      core.serve(std::string_view(scratch.data(), static_cast<std::size_t>(r.n)), false,
                 [&] { return send_owed<kBlocking>(core, fd); });
      return r;
    }
  } else {
    // Onto the kept input: its free space first, then the scratch area, within the bound.
    Buffer& kept = core.kept_input();
    const std::size_t room = core.read_room();
    const std::size_t into_kept = std::min(kept.writable(), room);
    iovec iov[2] = {{kept.write_ptr(), into_kept}, {scratch.data(), std::min(scratch.size(), room - into_kept)}};
    const int first = into_kept > 0 ? 0 : 1;
    r.asked = iov[0].iov_len + iov[1].iov_len;
    r.n = sys::readv(fd, iov + first, 2 - first);
    if (r.n > 0) {
      const auto n = static_cast<std::size_t>(r.n);
      core.executor().stats().bytes_in.add(n);
      kept.commit(std::min(n, into_kept));
      if (n > into_kept) kept.append(std::string_view(scratch.data(), n - into_kept));
      core.serve(kept.view(), true, [&] { return send_owed<kBlocking>(core, fd); });
      return r;
    }
  }
  if (r.n < 0) {
    r.error = errno;
    if (r.error != EAGAIN && r.error != EWOULDBLOCK) core.io_failed(r.error);
  }
  return r;
}

}  // namespace iomux::detail
