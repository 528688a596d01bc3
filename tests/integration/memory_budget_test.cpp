// The server-wide memory budget (--max-memory) against the attack it exists for: thousands of
// connections each holding a 60 KiB unfinished line. Without a budget the server grows by what
// they hold (4,000 x 64 KiB = 250 MiB); under --max-memory 64M it stays near 64 MiB, evicting
// the largest holders, and a well-behaved client is still served. The server runs as
// `iomux serve` in a process of its own, so its resident memory can be read from /proc.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "support/subprocess.hpp"
#include "support/test_net.hpp"

namespace iomux::test {
namespace {

// Resident memory of process `pid`, in bytes (VmRSS).
std::size_t resident_bytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6)) * 1024;
  return 0;
}

class MemoryBudget : public ModelTest {};

TEST_P(MemoryBudget, ThousandsOfUnfinishedLinesStayNearTheBudgetAndOthersAreServed) {
  Subprocess server({IOMUX_CLI_PATH, "serve", "--model", GetParam(), "--host", "127.0.0.1", "--port", "0", "--protocol",
                     "line", "--max-memory", "64M", "-q"});
  const auto listening = server.wait_for_output(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"), 10s);
  ASSERT_TRUE(listening) << server.err();
  const Endpoint ep = Endpoint::loopback_v4(static_cast<std::uint16_t>(std::stoi((*listening)[1])));
  const std::size_t before = resident_bytes(server.pid());

  // 4,000 connections, each sending 60 KiB without a '\n'. Sends do not wait: a connection
  // the server stopped reading just leaves the rest in the kernel.
  constexpr int kAttackers = 4000;
  const std::string unfinished(60 * 1024, 'x');
  std::vector<UniqueFd> attackers;
  attackers.reserve(kAttackers);
  for (int i = 0; i < kAttackers; ++i) {
    UniqueFd c = connect_to(ep);
    ASSERT_TRUE(c) << "connection " << i;
    set_non_blocking(c.get());
    [[maybe_unused]] ssize_t n = ::send(c.get(), unfinished.data(), unfinished.size(), MSG_NOSIGNAL);
    attackers.push_back(std::move(c));
    server.pump(0);  // keep its output pipe drained
  }
  // Let the server read what it will, then look at it.
  std::size_t peak = 0;
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(100ms);
    server.pump(0);
    peak = std::max(peak, resident_bytes(server.pid()));
  }
  const std::size_t growth = peak > before ? peak - before : 0;
  EXPECT_LT(growth, 96u << 20) << "the server grew by " << (growth >> 20) << " MiB under --max-memory 64M";

  // A well-behaved client is served meanwhile.
  UniqueFd good = connect_to(ep);
  ASSERT_TRUE(good);
  ASSERT_TRUE(send_text(good.get(), "hello\n"));
  EXPECT_EQ(recv_exact(good.get(), kDefaultReply.size() + 2), std::string(kDefaultReply) + "\r\n");

  server.signal(SIGTERM);
  EXPECT_EQ(server.wait_exit(20s), 0);
  std::smatch evicted;
  ASSERT_TRUE(std::regex_search(server.err(), evicted, std::regex(R"(evicted (\d+))")));
  EXPECT_GT(std::stoi(evicted[1]), 0) << server.err();
  std::printf("server grew by %zu MiB; %s\n", growth >> 20, server.err().substr(server.err().find("stopped")).c_str());
}

INSTANTIATE_TEST_SUITE_P(Models, MemoryBudget, ::testing::Values("epoll", "uring"), ModelTestName());

}  // namespace
}  // namespace iomux::test
