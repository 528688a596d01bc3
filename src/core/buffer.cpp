#include "core/buffer.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>

namespace iomux::detail {

void Buffer::consume(std::size_t n) noexcept {
  assert(n <= readable());
  read_pos_ += n;
  if (read_pos_ == write_pos_) read_pos_ = write_pos_ = 0;
}

void Buffer::append(std::string_view bytes) {
  if (bytes.empty()) return;
  ensure_writable(bytes.size());
  std::memcpy(write_ptr(), bytes.data(), bytes.size());
  commit(bytes.size());
}

void Buffer::ensure_writable(std::size_t n) {
  if (writable() >= n) return;
  std::size_t content = readable();
  if (read_pos_ > 0 && capacity_ - content >= n) {
    // Enough room once the consumed prefix is reclaimed: slide the content to the front.
    std::memmove(data_.get(), peek(), content);
    read_pos_ = 0;
    write_pos_ = content;
    return;
  }
  std::size_t new_capacity = std::max<std::size_t>(capacity_ * 2, 256);
  while (new_capacity < content + n) new_capacity *= 2;
  auto bigger = std::make_unique_for_overwrite<char[]>(new_capacity);
  if (content) std::memcpy(bigger.get(), peek(), content);
  data_ = std::move(bigger);
  capacity_ = new_capacity;
  read_pos_ = 0;
  write_pos_ = content;
}

void Buffer::release_if_empty() noexcept {
  if (!empty() || !data_) return;
  data_.reset();
  capacity_ = read_pos_ = write_pos_ = 0;
}

ssize_t Buffer::read_from(int fd, std::span<char> spill) {
  iovec iov[2];
  iov[0] = {write_ptr(), writable()};
  iov[1] = {spill.data(), spill.size()};
  // Skip an empty first region: an empty Buffer has no storage at all.
  iovec* first = writable() ? iov : iov + 1;
  int count = writable() ? 2 : 1;
  ssize_t n;
  do n = ::readv(fd, first, count);
  while (n < 0 && errno == EINTR);
  if (n <= 0) return n;
  auto total = static_cast<std::size_t>(n);
  std::size_t into_buffer = std::min(total, writable());
  commit(into_buffer);
  if (total > into_buffer) append(std::string_view(spill.data(), total - into_buffer));
  return n;
}

ssize_t Buffer::write_to(int fd) {
  ssize_t n;
  do n = ::send(fd, peek(), readable(), MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n > 0) consume(static_cast<std::size_t>(n));
  return n;
}

}  // namespace iomux::detail
