// poll(2): the tutorial's second multiplexer (section 5.5).
//
// No FD_SETSIZE ceiling: the interest list is an array of pollfd, one per watched fd. But the
// whole array still crosses into the kernel on every call and the result is found by scanning
// it, so each wait costs O(watched fds) — the cost that idle connections add and that the
// benchmarks show. Removal swaps the last entry into the hole, so it is O(1).
#include <poll.h>

#include <cerrno>
#include <vector>

#include "reactor/poller.hpp"

namespace iomux::detail {
namespace {

class PollPoller final : public Poller {
 public:
  std::string_view name() const noexcept override { return "poll"; }

  std::error_code add(int fd, std::uint32_t interest) override {
    if (fd < 0) return std::make_error_code(std::errc::bad_file_descriptor);
    if (static_cast<std::size_t>(fd) >= index_.size()) index_.resize(fd + 1, -1);
    if (index_[fd] >= 0) return std::make_error_code(std::errc::file_exists);
    index_[fd] = static_cast<int>(fds_.size());
    fds_.push_back({fd, to_poll(interest), 0});
    return {};
  }

  std::error_code modify(int fd, std::uint32_t interest) override {
    int i = slot(fd);
    if (i < 0) return std::make_error_code(std::errc::no_such_file_or_directory);
    fds_[i].events = to_poll(interest);
    return {};
  }

  std::error_code remove(int fd) override {
    int i = slot(fd);
    if (i < 0) return std::make_error_code(std::errc::no_such_file_or_directory);
    fds_[i] = fds_.back();
    index_[fds_[i].fd] = i;
    fds_.pop_back();
    index_[fd] = -1;
    return {};
  }

  int wait(std::span<ReadyEvent> out, int timeout_ms) override {
    int n = ::poll(fds_.data(), fds_.size(), timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -1;
    int count = 0;
    for (const pollfd& p : fds_) {
      if (n == 0 || count == static_cast<int>(out.size())) break;
      if (!p.revents) continue;
      --n;
      std::uint32_t events = 0;
      if (p.revents & (POLLIN | POLLPRI)) events |= kReadable;
      if (p.revents & POLLOUT) events |= kWritable;
      if (p.revents & POLLHUP) events |= kHangup;
      if (p.revents & (POLLERR | POLLNVAL)) events |= kError;
      out[count++] = {p.fd, events};
    }
    return count;
  }

 private:
  static short to_poll(std::uint32_t interest) {
    return static_cast<short>((interest & kReadable ? POLLIN : 0) | (interest & kWritable ? POLLOUT : 0));
  }
  int slot(int fd) const { return fd >= 0 && static_cast<std::size_t>(fd) < index_.size() ? index_[fd] : -1; }

  std::vector<pollfd> fds_;
  std::vector<int> index_;  // fd -> position in fds_, -1 when not watched
};

}  // namespace

std::unique_ptr<Poller> make_poll_poller() {
  return std::make_unique<PollPoller>();
}

}  // namespace iomux::detail
