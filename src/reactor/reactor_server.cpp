// The readiness-based server: the models select, poll, epoll, epoll-et and sigio are this one
// server over different pollers (src/reactor/pollers/). With --threads N (every one but sigio,
// whose listeners cannot signal several loops: docs/models.md) it runs N independent reactor
// threads, each with its own SO_REUSEPORT listener on every TCP endpoint (LoopGroupServer).
#include "reactor/poller.hpp"
#include "reactor/reactor_loop.hpp"
#include "server/loop_group_server.hpp"
#include "server/model_factory.hpp"

namespace iomux::detail {
namespace {

using MakePoller = std::unique_ptr<Poller> (*)();

class ReactorServer final : public LoopGroupServer<reactor::ReactorLoop> {
 public:
  ReactorServer(ServerOptions options, HandlerFactory factory, MakePoller make_poller)
      : LoopGroupServer(std::move(options), std::move(factory),
                        [make_poller](ServerContext& ctx, std::vector<SharedListener> listeners) {
                          return std::make_unique<reactor::ReactorLoop>(ctx, make_poller(), std::move(listeners));
                        }) {
    log_listening();
  }
};

std::unique_ptr<Poller> make_level_epoll() {
  return make_epoll_poller(false);
}
std::unique_ptr<Poller> make_edge_epoll() {
  return make_epoll_poller(true);
}

}  // namespace

std::unique_ptr<Server> make_select_server(ServerOptions options, HandlerFactory factory) {
  return std::make_unique<ReactorServer>(std::move(options), std::move(factory), make_select_poller);
}
std::unique_ptr<Server> make_poll_server(ServerOptions options, HandlerFactory factory) {
  return std::make_unique<ReactorServer>(std::move(options), std::move(factory), make_poll_poller);
}
std::unique_ptr<Server> make_epoll_server(ServerOptions options, HandlerFactory factory) {
  return std::make_unique<ReactorServer>(std::move(options), std::move(factory), make_level_epoll);
}
std::unique_ptr<Server> make_epoll_edge_server(ServerOptions options, HandlerFactory factory) {
  return std::make_unique<ReactorServer>(std::move(options), std::move(factory), make_edge_epoll);
}
std::unique_ptr<Server> make_sigio_server(ServerOptions options, HandlerFactory factory) {
  return std::make_unique<ReactorServer>(std::move(options), std::move(factory), make_sigio_poller);
}

}  // namespace iomux::detail
