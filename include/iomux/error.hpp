// The one exception type the library throws: something could not be set up (a server, its
// listener or ring, an address), with a reason fit for a user. Nothing on the request path
// throws: a connection's failure becomes its CloseReason, and a handler's own exception is
// caught and becomes CloseReason::handler_error.
#pragma once

#include <stdexcept>

namespace iomux {

class ServerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace iomux
