// The one place that maps a PollerKind to its backend.
#include "reactor/poller.hpp"

namespace iomux {

std::unique_ptr<Poller> make_poller(PollerKind kind) {
  switch (kind) {
    case PollerKind::select:
      return make_select_poller();
    case PollerKind::poll:
      return make_poll_poller();
    case PollerKind::epoll:
      return make_epoll_poller(false);
    case PollerKind::epoll_edge:
      return make_epoll_poller(true);
    case PollerKind::sigio:
      return make_sigio_poller();
  }
  return nullptr;
}

}  // namespace iomux
