// The request path of one client connection, shared by the reactor's Connection and the
// Session of the blocking, threaded, nonblocking and timeout models: read what has arrived, run
// it through the protocol core, and send the replies with one send() (ReplyBatch).
//
// Reads go into the caller's scratch area while no unfinished line is kept, so an idle
// connection owns no buffer; only an unfinished line waits in `in`, and only replies the socket
// did not take wait in `out`. (The uring model receives into kernel-chosen buffers instead: its
// own step is UringThread::process.) Inline: this is the path of every request.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <cstdint>
#include <span>
#include <string_view>

#include "iomux/buffer.hpp"
#include "iomux/endpoint.hpp"
#include "iomux/reply_batch.hpp"
#include "iomux/stats.hpp"
#include "server/server_context.hpp"

namespace iomux::detail {

struct RequestStream {
  Buffer in;                  // unconsumed input: an unfinished line
  Buffer out;                 // replies the socket did not take yet
  std::size_t scanned = 0;    // leading bytes of `in` already searched for a line end
  std::uint64_t requests = 0;

  struct Chunk {
    ssize_t n = 0;            // bytes read; 0 at EOF; < 0 when the read failed (see errno)
    std::size_t asked = 0;    // what the read asked for: a shorter read drained the socket
    bool from_scratch = false;
    std::string_view input;   // what feed() takes: the new bytes, or the whole of `in`
  };

  // One recv() (retried on EINTR): into `scratch` when `in` is empty, else appended to `in`.
  // Counts the bytes in `stats`. errno is intact when n < 0.
  [[gnu::always_inline]] Chunk read(int fd, std::span<char> scratch, ThreadStats& stats) {
    Chunk c;
    c.from_scratch = in.empty();
    if (c.from_scratch) {
      c.asked = scratch.size();
      do c.n = ::recv(fd, scratch.data(), c.asked, 0);
      while (c.n < 0 && errno == EINTR);
    } else {
      c.asked = in.writable() + scratch.size();
      c.n = in.read_from(fd, scratch);
    }
    if (c.n > 0) {
      stats.bytes_in.add(static_cast<std::uint64_t>(c.n));
      c.input = c.from_scratch ? std::string_view(scratch.data(), static_cast<std::size_t>(c.n)) : in.view();
    }
    return c;
  }

  struct Fed {
    bool line_too_long = false;  // the protocol core's verdict (logged here): flush, then close
    int send_error = 0;          // errno of a failed send (EAGAIN is not one: bytes wait in out)
  };

  // Answers the requests in `chunk` (from read()) and sends the replies on `fd`. Forced
  // inline: as a call it cost 20 of the ~500 user-space instructions of a request (callgrind).
  [[gnu::always_inline]] Fed feed(const ServerContext& ctx, ThreadStats& stats, const Endpoint& peer, int fd,
                                  const Chunk& chunk) {
    ReplyBatch batch(out, ctx.request_hook(&peer));
    const ConsumeResult r = ctx.protocol().consume(chunk.input, scanned, batch);
    requests += r.requests;
    stats.requests.add(r.requests);
    // Send before touching `in`: the batch may still point into it.
    const ReplyBatch::SendResult sent = batch.send(fd);
    stats.bytes_out.add(sent.written);
    if (chunk.from_scratch) {
      if (r.consumed < chunk.input.size()) in.append(chunk.input.substr(r.consumed));
    } else {
      in.consume(r.consumed);
      in.release_if_empty();
    }
    scanned = in.readable();
    Fed fed;
    fed.send_error = sent.error;
    if (r.close) [[unlikely]] {
      fed.line_too_long = true;
      drop_input(ctx, peer);
    }
    return fed;
  }

 private:
  // After a line over --max-line: the rest of the input is never looked at.
  void drop_input(const ServerContext& ctx, const Endpoint& peer) {
    ctx.log().warn("closing connection from {}: line longer than --max-line ({} bytes)", peer.to_string(),
                   ctx.options().protocol.max_line);
    in.clear();
    in.release_if_empty();
    scanned = 0;
  }
};

}  // namespace iomux::detail
