#include "iomux/reply_batch.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace iomux {

void ReplyBatch::reply(std::string_view bytes) {
  if (bytes.empty()) return;
  gathered_bytes_ += bytes.size();
  // Bytes already pending must leave first, and a full iovec array cannot take more: from then
  // on this batch copies into the pending buffer, keeping the order.
  if (!pending_.empty() || iov_count_ == kMaxIov) {
    spill_to_pending();
    pending_.append(bytes);
    return;
  }
  iov_[iov_count_++] = {const_cast<char*>(bytes.data()), bytes.size()};
}

void ReplyBatch::spill_to_pending() {
  for (std::size_t i = 0; i < iov_count_; ++i)
    pending_.append(iov_[i].iov_base, iov_[i].iov_len);
  iov_count_ = 0;
}

ReplyBatch::SendResult ReplyBatch::send(int fd) {
  SendResult result;
  if (iov_count_ == 1) {
    // The common case (one reply per read): send() is a little cheaper than sendmsg().
    ssize_t n;
    do n = ::send(fd, iov_[0].iov_base, iov_[0].iov_len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    std::size_t sent = n > 0 ? static_cast<std::size_t>(n) : 0;
    if (n < 0 && errno != EAGAIN) result.error = errno;
    result.written = sent;
    if (sent < iov_[0].iov_len)
      pending_.append(static_cast<const char*>(iov_[0].iov_base) + sent, iov_[0].iov_len - sent);
    iov_count_ = 0;
  } else if (iov_count_ > 0) {
    msghdr msg{};
    msg.msg_iov = iov_.data();
    msg.msg_iovlen = iov_count_;
    ssize_t n;
    do n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    std::size_t sent = n > 0 ? static_cast<std::size_t>(n) : 0;
    if (n < 0 && errno != EAGAIN) result.error = errno;
    result.written = sent;
    // Keep what the socket did not take; the views die when the caller's input changes.
    for (std::size_t i = 0; i < iov_count_; ++i) {
      std::size_t len = iov_[i].iov_len;
      if (sent >= len) {
        sent -= len;
        continue;
      }
      pending_.append(static_cast<const char*>(iov_[i].iov_base) + sent, len - sent);
      sent = 0;
    }
    iov_count_ = 0;
  } else if (!pending_.empty()) {
    ssize_t n = pending_.write_to(fd);
    if (n > 0) result.written = static_cast<std::size_t>(n);
    if (n < 0 && errno != EAGAIN) result.error = errno;
  }
  gathered_bytes_ = 0;
  return result;
}

}  // namespace iomux
