// Readiness semantics of each poller, on socketpairs: level-triggered pollers keep reporting a
// ready fd, the edge-triggered one reports each change once.
#include "reactor/poller.hpp"

#include <gtest/gtest.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <string>
#include <vector>

#include "core/fd.hpp"
#include "support/poller_pair.hpp"

namespace iomux::detail {
namespace {

using test::SocketPair;
using test::wait_for;

bool reported(const std::vector<ReadyEvent>& evs, int fd, std::uint32_t bits) {
  for (const auto& e : evs)
    if (e.fd == fd && (e.events & bits) == bits) return true;
  return false;
}

// A poller to test, by name.
struct PollerUnderTest {
  const char* name;
  std::unique_ptr<Poller> (*make)();
};

std::unique_ptr<Poller> make_level_epoll() {
  return make_epoll_poller(false);
}
std::unique_ptr<Poller> make_edge_epoll() {
  return make_epoll_poller(true);
}

class AnyPoller : public ::testing::TestWithParam<PollerUnderTest> {
 protected:
  std::unique_ptr<Poller> poller = GetParam().make();
};

TEST_P(AnyPoller, NothingReadyMeansNoEvents) {
  SocketPair p;
  ASSERT_FALSE(poller->add(p.a.get(), kReadable));
  EXPECT_TRUE(wait_for(*poller).empty());
}

TEST_P(AnyPoller, ReportsReadableWithTheRightFd) {
  SocketPair p, q;
  ASSERT_FALSE(poller->add(p.a.get(), kReadable));
  ASSERT_FALSE(poller->add(q.a.get(), kReadable));
  ASSERT_EQ(::write(q.b.get(), "x", 1), 1);
  auto evs = wait_for(*poller, 1000);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].fd, q.a.get());
  EXPECT_TRUE(evs[0].events & kReadable);
}

TEST_P(AnyPoller, ReportsWritableOnlyWhenAsked) {
  SocketPair p;
  ASSERT_FALSE(poller->add(p.a.get(), kReadable));
  EXPECT_TRUE(wait_for(*poller).empty());
  ASSERT_FALSE(poller->modify(p.a.get(), kReadable | kWritable));
  EXPECT_TRUE(reported(wait_for(*poller), p.a.get(), kWritable));
}

TEST_P(AnyPoller, RemovedFdIsNoLongerReported) {
  SocketPair p;
  ASSERT_FALSE(poller->add(p.a.get(), kReadable));
  ASSERT_EQ(::write(p.b.get(), "x", 1), 1);
  ASSERT_FALSE(poller->remove(p.a.get()));
  EXPECT_TRUE(wait_for(*poller).empty());
}

TEST_P(AnyPoller, MisuseIsAnErrorNotACrash) {
  SocketPair p;
  EXPECT_TRUE(poller->modify(p.a.get(), kReadable));
  EXPECT_TRUE(poller->remove(p.a.get()));
  ASSERT_FALSE(poller->add(p.a.get(), kReadable));
  EXPECT_TRUE(poller->add(p.a.get(), kReadable));
}

TEST_P(AnyPoller, PeerCloseIsReportedAsReadable) {
  SocketPair p;
  ASSERT_FALSE(poller->add(p.a.get(), kReadable));
  p.b.reset();
  auto evs = wait_for(*poller, 1000);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_TRUE(evs[0].events & (kReadable | kHangup));
}

TEST_P(AnyPoller, WaitTimesOut) {
  SocketPair p;
  ASSERT_FALSE(poller->add(p.a.get(), kReadable));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(wait_for(*poller, 30).empty());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(25));
}

TEST_P(AnyPoller, LevelOrEdgeSemantics) {
  SocketPair p;
  ASSERT_FALSE(poller->add(p.a.get(), kReadable));
  ASSERT_EQ(::write(p.b.get(), "xy", 2), 2);
  EXPECT_TRUE(reported(wait_for(*poller, 1000), p.a.get(), kReadable));
  // The data was not read. Level-triggered: still ready, reported again. Edge-triggered:
  // no new change, so silence until more data arrives.
  auto again = wait_for(*poller);
  if (poller->edge_triggered()) {
    EXPECT_TRUE(again.empty());
    ASSERT_EQ(::write(p.b.get(), "z", 1), 1);
    EXPECT_TRUE(reported(wait_for(*poller, 1000), p.a.get(), kReadable));
  } else {
    EXPECT_TRUE(reported(again, p.a.get(), kReadable));
  }
}

INSTANTIATE_TEST_SUITE_P(Pollers, AnyPoller,
                         ::testing::Values(PollerUnderTest{"select", make_select_poller},
                                           PollerUnderTest{"poll", make_poll_poller},
                                           PollerUnderTest{"epoll", make_level_epoll},
                                           PollerUnderTest{"epoll_et", make_edge_epoll}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(SelectPoller, RefusesFdsAtOrAboveFdSetSize) {
  auto poller = make_select_poller();
  EXPECT_EQ(poller->fd_limit(), FD_SETSIZE);
  EXPECT_TRUE(poller->add(FD_SETSIZE, kReadable));
  EXPECT_TRUE(poller->add(FD_SETSIZE + 500, kReadable));
}

TEST(PollerNames, AreTheModelNames) {
  EXPECT_EQ(make_select_poller()->name(), "select");
  EXPECT_EQ(make_poll_poller()->name(), "poll");
  EXPECT_EQ(make_level_epoll()->name(), "epoll");
  EXPECT_EQ(make_edge_epoll()->name(), "epoll-et");
}

}  // namespace
}  // namespace iomux::detail
