// Constructors of each model's server; make_server() (make_server.cpp) picks one by name.
#pragma once

#include <memory>

#include "iomux/poller.hpp"
#include "iomux/server.hpp"

namespace iomux::detail {

std::unique_ptr<Server> make_reactor_server(ServerOptions options, PollerKind kind);
std::unique_ptr<Server> make_blocking_server(ServerOptions options);
std::unique_ptr<Server> make_threaded_server(ServerOptions options);
std::unique_ptr<Server> make_nonblocking_server(ServerOptions options);
std::unique_ptr<Server> make_timeout_server(ServerOptions options);
std::unique_ptr<Server> make_uring_server(ServerOptions options);

}  // namespace iomux::detail
