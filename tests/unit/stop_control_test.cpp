// The blocking family's stop control (src/blocking/stop_control.hpp): the levels a stop goes
// through, as Server::stop promises them on every model.
#include "blocking/stop_control.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace iomux::detail::blocking {
namespace {

using namespace std::chrono_literals;
using Level = StopControl::Level;

TEST(StopControl, AGracefulStopDrains) {
  StopControl stop(60s);
  EXPECT_EQ(stop.level(), Level::running);
  stop.request(StopMode::graceful);
  EXPECT_EQ(stop.level(), Level::draining);
  EXPECT_TRUE(stop.requested());
  EXPECT_FALSE(stop.cut());
}

// Server::stop: "a second graceful stop, or an immediate one, cuts a graceful drain short".
// Failed before: the second graceful stop changed nothing on blocking, threaded, timeout and
// nonblocking, so a drain held by a client went on to drain_timeout (the reactor and uring
// cut it).
TEST(StopControl, ASecondGracefulStopCutsTheDrainShort) {
  StopControl stop(60s);
  stop.request(StopMode::graceful);
  stop.request(StopMode::graceful);
  EXPECT_EQ(stop.level(), Level::cut);
}

TEST(StopControl, AnImmediateStopCutsAtOnceAndNothingUndoesIt) {
  StopControl stop(60s);
  stop.request(StopMode::immediate);
  EXPECT_EQ(stop.level(), Level::cut);
  stop.request(StopMode::graceful);
  EXPECT_EQ(stop.level(), Level::cut);
}

}  // namespace
}  // namespace iomux::detail::blocking
