// The way out of EMFILE that every engine's acceptor takes (muduo's idiom). Out of fds, a
// pending connection can be neither served nor refused: accept() fails before it creates a
// socket, so the connection stays queued, a level-triggered poller reports the listener again
// at once, and the server spins. Keeping one fd in reserve breaks the loop: give it up, accept
// the connection and close it (the client sees a clean close instead of hanging), take the
// reserve back.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include "core/fd.hpp"

namespace iomux::detail {

class SpareFd {
 public:
  SpareFd() : fd_(open_reserve()) {}

  // Sheds the connection at the head of `listener`'s queue, if one is waiting (a blocking
  // listener would otherwise sleep in the accept). False when the reserve could not be taken
  // back (fds are still short): shedding cannot go on until some are freed.
  bool shed(int listener) {
    fd_.reset();
    pollfd waiting{listener, POLLIN, 0};
    if (::poll(&waiting, 1, 0) == 1) UniqueFd doomed(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
    fd_ = open_reserve();
    return static_cast<bool>(fd_);
  }

 private:
  static UniqueFd open_reserve() { return UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)); }
  UniqueFd fd_;
};

}  // namespace iomux::detail
