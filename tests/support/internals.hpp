// Tests exercise the library's internals (iomux::detail: sockets, pollers, the connection
// core) as well as its public API, so test code in iomux::test sees both.
#pragma once

namespace iomux::detail {}

namespace iomux::test {
using namespace iomux::detail;
}  // namespace iomux::test
