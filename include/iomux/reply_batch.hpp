// Gathers the replies of one read's worth of requests and sends them with one sendmsg.
//
// The protocol core hands out views (into the bytes just read, or the fixed reply text). While
// nothing is pending on the connection, ReplyBatch keeps them as iovecs and sends them without
// a copy; whatever the socket does not take is copied into the connection's pending Buffer,
// whose bytes must go out first from then on. This is the whole write path of every
// readiness-based model: one syscall per read in the common case, a copy only under
// back-pressure.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <string_view>

#include "iomux/buffer.hpp"
#include "iomux/protocol.hpp"

namespace iomux {

// Called for each request (e.g. to log it at -v); a plain function pointer and an argument, so
// a batch costs nothing when nobody listens.
struct RequestHook {
  void (*fn)(const void* arg, std::string_view request) = nullptr;
  const void* arg = nullptr;
};

class ReplyBatch final : public ReplySink {
 public:
  explicit ReplyBatch(Buffer& pending, RequestHook hook = {}) noexcept
      : pending_(pending), hook_(hook) {}

  void reply(std::string_view bytes) override;
  void on_request(std::string_view request) override {
    if (hook_.fn) hook_.fn(hook_.arg, request);
  }

  struct SendResult {
    std::size_t written = 0;
    int error = 0;  // errno of a failed send (EAGAIN is not an error: it leaves bytes pending)
  };
  // Sends gathered replies (or, if bytes were already pending, as much of them as the socket
  // takes). Afterwards every unsent byte is in `pending`, and the batch is empty.
  SendResult send(int fd);

  [[nodiscard]] std::size_t gathered_bytes() const noexcept { return gathered_bytes_; }

 private:
  void spill_to_pending();

  static constexpr std::size_t kMaxIov = 64;
  Buffer& pending_;
  RequestHook hook_;
  // Not zeroed: only [0, iov_count_) is ever read, and zeroing 1 KiB per read was the largest
  // single user-space cost of a small request.
  std::array<iovec, kMaxIov> iov_;
  std::size_t iov_count_ = 0;
  std::size_t gathered_bytes_ = 0;
};

}  // namespace iomux
