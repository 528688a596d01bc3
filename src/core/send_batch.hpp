// The replies one handler call writes, gathered for one send, on the engines that send
// synchronously (the reactor and the blocking family). It belongs to the thread, not to a
// connection, and is reused by every call, so a connection that owes nothing holds no memory.
//
// Views (the input of the call, constants) go in as iovecs without a copy; copies go into a
// staging area (consecutive copies coalesce into one iovec); moved-in buffers and the owners of
// shared views are held until the send. After one sendmsg, whatever the socket did not take is spilled into the
// connection's OutputQueue (copied, except constants and moved-in buffers), where it must leave
// before anything written later. This is the whole write path of the common request: one
// syscall, no allocation, a copy only under back-pressure.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/poison.hpp"
#include "core/sys.hpp"

namespace iomux::detail {

class OutputQueue;

class SendBatch {
 public:
  static constexpr std::size_t kMaxIov = 64;
  static constexpr std::size_t kStagingSize = 16 * 1024;

  SendBatch();
  SendBatch(const SendBatch&) = delete;
  SendBatch& operator=(const SendBatch&) = delete;

  // Each returns false, adding nothing, when the batch has no room (the caller spills it and
  // appends to the queue instead). `transient`: the bytes die when the handler call ends.
  bool add_view(std::string_view bytes, bool transient) noexcept {
    if (count_ == kMaxIov) [[unlikely]]
      return false;
    iov_[count_] = {const_cast<char*>(bytes.data()), bytes.size()};
    kind_[count_] = transient ? Kind::transient : Kind::stable;
    ++count_;
    bytes_ += bytes.size();
    return true;
  }
  bool add_copy(std::string_view bytes) noexcept;
  bool add_owned(std::string&& bytes);
  bool add_owned(std::unique_ptr<char[]>& bytes, std::size_t size);
  bool add_shared(std::shared_ptr<const void>& owner, std::string_view bytes);

  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }

  struct SendResult {
    std::size_t written = 0;
    int error = 0;  // errno of a failed send; EAGAIN is not an error (the bytes stay owed): then
                    // written is 0 too (a stream socket takes at least one byte or fails)
  };
  // One send()/sendmsg() of everything gathered (EINTR retried).
  SendResult send(int fd) noexcept {
    SendResult r;
    const ssize_t n = sys::sendv(fd, iov_.data(), count_);
    if (n > 0)
      r.written = static_cast<std::size_t>(n);
    else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
      r.error = errno;
    return r;
  }
  // Moves what is left after `written` bytes were sent into `queue`, then empties the batch.
  void spill(std::size_t written, OutputQueue& queue);
  // Empties the batch (after a send that took everything).
  void clear() noexcept {
    if constexpr (kPoisonFreed) poison_storage();
    count_ = 0;
    bytes_ = 0;
    staged_ = 0;
    if (owns_) [[unlikely]]
      drop_owned();
  }

 private:
  enum class Kind : std::uint8_t { stable, transient, staged, owned_string, owned_array, shared };
  void drop_owned() noexcept;
  // Debug builds: overwrites the copies and moved-in buffers about to be dropped.
  void poison_storage() noexcept;

  std::array<iovec, kMaxIov> iov_;  // [0, count_) only: not zeroed per call, on purpose
  std::array<Kind, kMaxIov> kind_;
  std::array<std::uint16_t, kMaxIov> owner_;  // index into strings_ / arrays_ / shared_
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;
  std::unique_ptr<char[]> staging_;
  std::size_t staged_ = 0;
  std::vector<std::string> strings_;
  std::vector<std::unique_ptr<char[]>> arrays_;
  std::vector<std::shared_ptr<const void>> shared_;
  bool owns_ = false;  // strings_, arrays_ or shared_ hold something
};

}  // namespace iomux::detail
