// The readiness-notification backends behind the event loop: select, poll, epoll (level- or
// edge-triggered) and signal-driven IO. Each lives in one file under src/reactor/pollers/ and is the
// only code that touches its kernel structures (fd_set, pollfd, epoll_event, siginfo_t);
// everything above sees a neutral list of {fd, events}.
#pragma once

#include <climits>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

namespace iomux::detail {

// Interest and readiness bits.
enum Events : std::uint32_t {
  kReadable = 1u << 0,
  kWritable = 1u << 1,
  kHangup = 1u << 2,  // readiness only: the peer closed (reading will return 0 or an error)
  kError = 1u << 3,   // readiness only: an error is pending on the socket
  // Readiness only, with kReadable: the peer may have shut down its sending side, so after the
  // queued bytes a read may return 0. Edge-triggered readers must then read on to EOF or
  // EAGAIN: a FIN that has already arrived is announced by no new edge.
  kPeerShutdown = 1u << 4,
};

struct ReadyEvent {
  int fd;
  std::uint32_t events;
};

class Poller {
 public:
  virtual ~Poller() = default;

  [[nodiscard]] virtual std::string_view name() const noexcept = 0;

  // Interest is a mask of kReadable | kWritable. add() on a watched fd, or modify()/remove()
  // on an unwatched one, is an error (EEXIST / ENOENT).
  virtual std::error_code add(int fd, std::uint32_t interest) = 0;
  virtual std::error_code modify(int fd, std::uint32_t interest) = 0;
  virtual std::error_code remove(int fd) = 0;
  // remove() for an fd whose open file another process may share (a listener: socket
  // activation, an upgrade's successor): nothing of the file's own state is changed, only this
  // poller's watch. (sigio's remove() clears O_ASYNC, a flag of the open file: the other
  // process's signals would stop too.)
  virtual std::error_code remove_shared(int fd) { return remove(fd); }

  // Blocks up to timeout_ms (-1 = no limit, 0 = just look) and fills `out` with ready fds.
  // Returns how many; 0 on timeout or EINTR; -1 with errno on failure. Level-triggered
  // pollers report an fd again for as long as it stays ready, so a full `out` loses nothing.
  virtual int wait(std::span<ReadyEvent> out, int timeout_ms) = 0;

  // Edge-triggered pollers report a change of state once: the caller must read (or write)
  // until EAGAIN, or until a short read shows the socket drained.
  [[nodiscard]] virtual bool edge_triggered() const noexcept { return false; }

  // fds at or above this cannot be watched (FD_SETSIZE for select).
  [[nodiscard]] virtual int fd_limit() const noexcept { return INT_MAX; }
};

// Each throws ServerError when the kernel refuses to create the backend.
std::unique_ptr<Poller> make_select_poller();
std::unique_ptr<Poller> make_poll_poller();
std::unique_ptr<Poller> make_epoll_poller(bool edge_triggered);
std::unique_ptr<Poller> make_sigio_poller();

}  // namespace iomux::detail
