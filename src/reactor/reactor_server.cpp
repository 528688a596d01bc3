// The readiness-based server: the models select, poll, epoll, epoll-et and sigio are this one
// server over different pollers (src/poller/). With --threads N (epoll, epoll-et) it runs N
// independent reactor threads, each with its own SO_REUSEPORT listener (LoopGroupServer).
#include "reactor/reactor_thread.hpp"
#include "server/loop_group_server.hpp"
#include "server/model_factory.hpp"

namespace iomux::detail {
namespace {

class ReactorServer final : public LoopGroupServer<ReactorThread> {
 public:
  ReactorServer(ServerOptions options, PollerKind kind)
      : LoopGroupServer(check_threads(std::move(options), kind), [kind](ServerContext& ctx, UniqueFd listener) {
          return std::make_unique<ReactorThread>(ctx, kind, std::move(listener));
        }) {
    log_listening();
  }

 private:
  static ServerOptions check_threads(ServerOptions options, PollerKind kind) {
    if (options.threads > 1 && kind != PollerKind::epoll && kind != PollerKind::epoll_edge)
      throw ServerError("--threads applies to epoll, epoll-et and uring only");
    return options;
  }
};

}  // namespace

std::unique_ptr<Server> make_reactor_server(ServerOptions options, PollerKind kind) {
  return std::make_unique<ReactorServer>(std::move(options), kind);
}

}  // namespace iomux::detail
