// Constructors of each engine's servers; the model registry (model_registry.cpp) picks one by
// name.
#pragma once

#include <memory>
#include <string>

#include "iomux/handler.hpp"
#include "iomux/server.hpp"

namespace iomux::detail {

// The reactor (src/reactor/reactor_server.cpp): one server over five pollers.
std::unique_ptr<Server> make_select_server(ServerOptions options, HandlerFactory factory);
std::unique_ptr<Server> make_poll_server(ServerOptions options, HandlerFactory factory);
std::unique_ptr<Server> make_epoll_server(ServerOptions options, HandlerFactory factory);
std::unique_ptr<Server> make_epoll_edge_server(ServerOptions options, HandlerFactory factory);
std::unique_ptr<Server> make_sigio_server(ServerOptions options, HandlerFactory factory);
// The blocking family (src/blocking/).
std::unique_ptr<Server> make_blocking_server(ServerOptions options, HandlerFactory factory);
std::unique_ptr<Server> make_threaded_server(ServerOptions options, HandlerFactory factory);
std::unique_ptr<Server> make_nonblocking_server(ServerOptions options, HandlerFactory factory);
std::unique_ptr<Server> make_timeout_server(ServerOptions options, HandlerFactory factory);
// The completion engine (src/uring/).
std::unique_ptr<Server> make_uring_server(ServerOptions options, HandlerFactory factory);
// Why uring cannot run here, or an empty string.
std::string uring_unavailable_reason();

}  // namespace iomux::detail
