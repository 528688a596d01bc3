// A growable byte buffer with a read cursor and a write cursor:
//
//   +-------------------+------------------+------------------+
//   |  consumed bytes   |  readable bytes  |  writable bytes  |
//   |  (reclaimable)    |     (content)    |                  |
//   +-------------------+------------------+------------------+
//   0       <=      read_pos    <=    write_pos    <=     capacity
//
// An empty Buffer owns no memory, which is what keeps idle connections small: a connection
// only holds bytes it could not hand on yet (a partial request, a reply the peer has not
// taken). read_from() reads with readv into the writable region *and* a caller-provided spill
// area (usually 64 KiB on the event loop's stack), so one syscall takes whatever is waiting
// without first growing the buffer.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

#include <sys/types.h>

namespace iomux::detail {

class Buffer {
 public:
  Buffer() noexcept = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&&) noexcept = default;
  Buffer& operator=(Buffer&&) noexcept = default;

  [[nodiscard]] std::size_t readable() const noexcept { return write_pos_ - read_pos_; }
  [[nodiscard]] std::size_t writable() const noexcept { return capacity_ - write_pos_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] bool empty() const noexcept { return read_pos_ == write_pos_; }

  [[nodiscard]] const char* peek() const noexcept { return data_.get() + read_pos_; }
  [[nodiscard]] std::string_view view() const noexcept { return {peek(), readable()}; }

  // Marks n readable bytes as consumed (n <= readable()). When everything is consumed the
  // cursors go back to zero, so the space is reused without a memmove.
  void consume(std::size_t n) noexcept;
  void clear() noexcept { read_pos_ = write_pos_ = 0; }

  void append(std::string_view bytes);
  void append(const void* data, std::size_t len) { append(std::string_view(static_cast<const char*>(data), len)); }

  // Makes room for at least n writable bytes: first by moving content to the front, then by
  // growing (doubling).
  void ensure_writable(std::size_t n);
  [[nodiscard]] char* write_ptr() noexcept { return data_.get() + write_pos_; }
  void commit(std::size_t n) noexcept { write_pos_ += n; }

  // Frees the storage if the buffer is empty; keeps an idle connection at zero heap bytes.
  void release_if_empty() noexcept;

  // One readv into (writable region, spill). Bytes that land in spill are appended. Returns
  // what read() returns: > 0 bytes, 0 at EOF, -1 with errno set (EINTR is retried).
  ssize_t read_from(int fd, std::span<char> spill);

  // One write of the readable bytes (MSG_NOSIGNAL); consumes what was written. Returns what
  // send() returns, with errno set on -1.
  ssize_t write_to(int fd);

 private:
  std::unique_ptr<char[]> data_;
  std::size_t capacity_ = 0;
  std::size_t read_pos_ = 0;
  std::size_t write_pos_ = 0;
};

}  // namespace iomux::detail
