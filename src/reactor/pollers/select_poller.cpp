// select(2): the tutorial's first multiplexer (section 5.3).
//
// The interest sets are fd_set bitmaps of FD_SETSIZE (1024) bits, copied into the kernel and
// back on every call, and the result must be found by scanning every bit up to the highest
// fd: O(highest fd) per wait, however few fds are ready. An fd >= FD_SETSIZE cannot be put in
// an fd_set at all (FD_SET would write past its end), so this poller refuses such fds and the
// server turns the connection away instead of corrupting memory.
#include <sys/select.h>

#include <cerrno>

#include "reactor/poller.hpp"

namespace iomux::detail {
namespace {

class SelectPoller final : public Poller {
 public:
  SelectPoller() {
    FD_ZERO(&read_interest_);
    FD_ZERO(&write_interest_);
    FD_ZERO(&watched_);
  }

  std::string_view name() const noexcept override { return "select"; }
  int fd_limit() const noexcept override { return FD_SETSIZE; }

  std::error_code add(int fd, std::uint32_t interest) override {
    if (fd < 0 || fd >= FD_SETSIZE) return std::make_error_code(std::errc::value_too_large);
    if (FD_ISSET(fd, &watched_)) return std::make_error_code(std::errc::file_exists);
    FD_SET(fd, &watched_);
    if (fd > max_fd_) max_fd_ = fd;
    set_interest(fd, interest);
    return {};
  }

  std::error_code modify(int fd, std::uint32_t interest) override {
    if (fd < 0 || fd >= FD_SETSIZE || !FD_ISSET(fd, &watched_))
      return std::make_error_code(std::errc::no_such_file_or_directory);
    set_interest(fd, interest);
    return {};
  }

  std::error_code remove(int fd) override {
    if (fd < 0 || fd >= FD_SETSIZE || !FD_ISSET(fd, &watched_))
      return std::make_error_code(std::errc::no_such_file_or_directory);
    FD_CLR(fd, &watched_);
    FD_CLR(fd, &read_interest_);
    FD_CLR(fd, &write_interest_);
    while (max_fd_ >= 0 && !FD_ISSET(max_fd_, &watched_)) --max_fd_;
    return {};
  }

  int wait(std::span<ReadyEvent> out, int timeout_ms) override {
    // select() overwrites its arguments, so it gets copies of the interest sets.
    fd_set readable = read_interest_;
    fd_set writable = write_interest_;
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    int n = ::select(max_fd_ + 1, &readable, &writable, nullptr, timeout_ms < 0 ? nullptr : &tv);
    if (n < 0) return errno == EINTR ? 0 : -1;
    int count = 0;
    for (int fd = 0; fd <= max_fd_ && n > 0 && count < static_cast<int>(out.size()); ++fd) {
      std::uint32_t events = 0;
      if (FD_ISSET(fd, &readable)) events |= kReadable;
      if (FD_ISSET(fd, &writable)) events |= kWritable;
      if (events) {
        out[count++] = {fd, events};
        n -= (events & kReadable ? 1 : 0) + (events & kWritable ? 1 : 0);
      }
    }
    return count;
  }

 private:
  void set_interest(int fd, std::uint32_t interest) {
    if (interest & kReadable)
      FD_SET(fd, &read_interest_);
    else
      FD_CLR(fd, &read_interest_);
    if (interest & kWritable)
      FD_SET(fd, &write_interest_);
    else
      FD_CLR(fd, &write_interest_);
  }

  fd_set read_interest_;
  fd_set write_interest_;
  fd_set watched_;
  int max_fd_ = -1;
};

}  // namespace

std::unique_ptr<Poller> make_select_poller() {
  return std::make_unique<SelectPoller>();
}

}  // namespace iomux::detail
