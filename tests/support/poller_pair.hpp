// What the poller tests share: a connected pair of non-blocking Unix sockets to make readable
// and writable at will, and one wait() of a poller as a vector.
#pragma once

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <vector>

#include "core/fd.hpp"
#include "reactor/poller.hpp"
#include "support/internals.hpp"

namespace iomux::test {

struct SocketPair {
  SocketPair() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    a.reset(sv[0]);
    b.reset(sv[1]);
  }
  UniqueFd a, b;
};

// The events of one p.wait(timeout_ms) (at most 64).
inline std::vector<ReadyEvent> wait_for(Poller& p, int timeout_ms = 0) {
  std::array<ReadyEvent, 64> out{};
  const int n = p.wait(out, timeout_ms);
  EXPECT_GE(n, 0);
  return {out.begin(), out.begin() + std::max(n, 0)};
}

}  // namespace iomux::test
