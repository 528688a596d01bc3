#include "iomux/models.hpp"
#include "iomux/server.hpp"
#include "server/model_factory.hpp"

namespace iomux {

std::unique_ptr<Server> make_server(ServerOptions options) {
  const ModelInfo* info = find_model(options.model);
  if (!info) throw ServerError("unknown model '" + options.model + "' (see `iomux models`)");
  if (options.threads > 1 && !info->multi_threaded)
    throw ServerError("--threads applies to epoll, epoll-et and uring only");
  if (options.protocol.max_line == 0) throw ServerError("--max-line must be at least 1");
  Availability a = probe_model(options.model);
  if (!a.available) throw ServerError("model " + options.model + " is unavailable here: " + a.reason);

  const std::string& m = options.model;
  using detail::make_reactor_server;
  if (m == "select") return make_reactor_server(std::move(options), PollerKind::select);
  if (m == "poll") return make_reactor_server(std::move(options), PollerKind::poll);
  if (m == "epoll") return make_reactor_server(std::move(options), PollerKind::epoll);
  if (m == "epoll-et") return make_reactor_server(std::move(options), PollerKind::epoll_edge);
  if (m == "sigio") return make_reactor_server(std::move(options), PollerKind::sigio);
  if (m == "blocking") return detail::make_blocking_server(std::move(options));
  if (m == "threaded") return detail::make_threaded_server(std::move(options));
  if (m == "nonblocking") return detail::make_nonblocking_server(std::move(options));
  if (m == "timeout") return detail::make_timeout_server(std::move(options));
  return detail::make_uring_server(std::move(options));
}

}  // namespace iomux
