// PLACEHOLDER, being written in this session.
#include "server/model_factory.hpp"
namespace iomux::detail {
std::unique_ptr<Server> make_blocking_server(ServerOptions) { throw ServerError("blocking: not built yet"); }
}  // namespace iomux::detail
