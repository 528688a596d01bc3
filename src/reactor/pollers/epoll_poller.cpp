// epoll(7): the tutorial's third multiplexer (section 5.7), level- or edge-triggered.
//
// The interest list lives in the kernel (epoll_ctl changes it one fd at a time) and
// epoll_wait returns only the ready fds, so a wait costs O(ready), not O(watched): idle
// connections are free. Level-triggered (the default, like select and poll) reports an fd for
// as long as it is ready. Edge-triggered (EPOLLET) reports it once per change of state, which
// saves re-reporting but obliges the caller to drain the socket; the tutorial's note on edge
// triggering is section 5.2.4.
#include <sys/epoll.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include "core/fd.hpp"
#include "core/sys.hpp"
#include "iomux/error.hpp"
#include "reactor/poller.hpp"

namespace iomux::detail {
namespace {

class EpollPoller final : public Poller {
 public:
  explicit EpollPoller(bool edge) : epfd_(::epoll_create1(EPOLL_CLOEXEC)), edge_(edge) {
    if (!epfd_) throw ServerError(std::string("epoll_create1: ") + std::strerror(errno));
  }

  std::string_view name() const noexcept override { return edge_ ? "epoll-et" : "epoll"; }
  bool edge_triggered() const noexcept override { return edge_; }

  std::error_code add(int fd, std::uint32_t interest) override { return ctl(EPOLL_CTL_ADD, fd, interest); }
  std::error_code modify(int fd, std::uint32_t interest) override { return ctl(EPOLL_CTL_MOD, fd, interest); }
  std::error_code remove(int fd) override { return ctl(EPOLL_CTL_DEL, fd, 0); }

  int wait(std::span<ReadyEvent> out, int timeout_ms) override {
    if (events_.size() < out.size()) events_.resize(out.size());
    int n = detail::sys::epoll_wait(epfd_.get(), events_.data(), static_cast<int>(out.size()), timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; ++i) {
      std::uint32_t e = events_[i].events;
      std::uint32_t events = 0;
      if (e & (EPOLLIN | EPOLLPRI | EPOLLRDHUP)) events |= kReadable;
      if (e & EPOLLRDHUP) events |= kPeerShutdown;
      if (e & EPOLLOUT) events |= kWritable;
      if (e & EPOLLHUP) events |= kHangup;
      if (e & EPOLLERR) events |= kError;
      out[i] = {events_[i].data.fd, events};
    }
    return n;
  }

 private:
  std::error_code ctl(int op, int fd, std::uint32_t interest) {
    epoll_event ev{};
    ev.events = (interest & kReadable ? EPOLLIN | EPOLLRDHUP : 0u) | (interest & kWritable ? EPOLLOUT : 0u) |
                (edge_ ? EPOLLET : 0u);
    ev.data.fd = fd;
    if (::epoll_ctl(epfd_.get(), op, fd, &ev) != 0) return {errno, std::generic_category()};
    return {};
  }

  UniqueFd epfd_;
  bool edge_;
  std::vector<epoll_event> events_;
};

}  // namespace

std::unique_ptr<Poller> make_epoll_poller(bool edge_triggered) {
  return std::make_unique<EpollPoller>(edge_triggered);
}

}  // namespace iomux::detail
