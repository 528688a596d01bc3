// `iomux client` against the tutorial's own servers (select_server.py, poll_server.py,
// epoll_server.py). They listen on the fixed port 7890, so CTest runs these one at a time
// (RUN_SERIAL), and each is skipped — not passed — when the tutorial's programs, python3, or
// the port are not available.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "support/subprocess.hpp"
#include "support/test_net.hpp"

namespace iomux::test {
namespace {

std::string seed_dir() {
  if (const char* env = std::getenv("IOMUX_SEED_DIR")) return env;
  return IOMUX_SEED_DIR;
}

bool port_7890_free() {
  std::error_code ec;
  ListenOptions lo;
  UniqueFd probe = listen_tcp(*Endpoint::from_numeric("0.0.0.0", 7890), lo, ec);
  return static_cast<bool>(probe);
}

class TutorialServer : public ::testing::TestWithParam<std::string> {};

TEST_P(TutorialServer, IomuxClientGetsTheReply) {
  std::string script = seed_dir() + "/" + GetParam();
  if (!std::filesystem::exists(script)) GTEST_SKIP() << "no tutorial program " << script;
  if (std::system("command -v python3 >/dev/null 2>&1") != 0) GTEST_SKIP() << "python3 not installed";
  if (!port_7890_free()) GTEST_SKIP() << "port 7890 is in use";
  Subprocess server({"python3", "-u", script});
  ASSERT_TRUE(server.started());
  // Wait until the tutorial's server accepts connections.
  bool up = wait_until(
      [] { return static_cast<bool>(connect_to(Endpoint::loopback_v4(7890), std::chrono::milliseconds(200))); },
      std::chrono::seconds(10));
  ASSERT_TRUE(up) << server.err();
  Subprocess client({IOMUX_CLI_PATH, "client", "127.0.0.1", "7890", "hello from iomux"});
  EXPECT_EQ(client.wait_exit(std::chrono::seconds(15)), 0) << client.err();
  EXPECT_NE(client.out().find("received: ----ok----Request accepted"), std::string::npos) << client.out();
  server.signal(SIGKILL);
  server.wait_exit(std::chrono::seconds(5));
}

INSTANTIATE_TEST_SUITE_P(Tutorial, TutorialServer,
                         ::testing::Values("select_server.py", "poll_server.py", "epoll_server.py"),
                         [](const auto& info) { return info.param.substr(0, info.param.find('.')); });

}  // namespace
}  // namespace iomux::test
