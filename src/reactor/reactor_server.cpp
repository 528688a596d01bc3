// The readiness-based server: the models select, poll, epoll, epoll-et and sigio are this one
// server over different pollers (src/reactor/pollers/). With --threads N (epoll, epoll-et) it
// runs N independent reactor threads, each with its own SO_REUSEPORT listener
// (LoopGroupServer).
#include "reactor/reactor_thread.hpp"
#include "server/loop_group_server.hpp"
#include "server/model_factory.hpp"

namespace iomux::detail {
namespace {

class ReactorServer final : public LoopGroupServer<reactor::ReactorThread> {
 public:
  ReactorServer(ServerOptions options, HandlerFactory factory, PollerKind kind)
      : LoopGroupServer(std::move(options), std::move(factory), [kind](ServerContext& ctx, UniqueFd listener) {
          return std::make_unique<reactor::ReactorThread>(ctx, kind, std::move(listener));
        }) {
    log_listening();
  }
};

}  // namespace

std::unique_ptr<Server> make_reactor_server(ServerOptions options, HandlerFactory factory, PollerKind kind) {
  return std::make_unique<ReactorServer>(std::move(options), std::move(factory), kind);
}

}  // namespace iomux::detail
