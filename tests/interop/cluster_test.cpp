// scripts/cluster.sh with the balancers users already run, each in front of three `iomux serve`
// processes on loopback: twemproxy (nutcracker, ketama) in front of `--protocol resp`, HAProxy
// in front of `--protocol http`. The configurations are the ones in docs/deploy/, as the script
// generates them; the clients are redis-cli, redis-benchmark and wrk. A missing tool is a skip
// naming its Debian package (scripts/install-deps.sh installs them all).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "interop/client_tools.hpp"
#include "support/subprocess.hpp"
#include "support/temp_dir.hpp"

namespace iomux::test {
namespace {

using namespace std::chrono_literals;

// Whether `holds` comes true within `timeout`, asked every 20 ms.
template <typename Pred>
bool eventually(Pred holds, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!holds()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// One cluster started by scripts/cluster.sh, with its state in a directory of the test's own;
// stopped by the script (the pids it recorded) when the test ends, whatever happened.
class Cluster {
 public:
  Cluster(const std::string& kind, int backends, const std::vector<std::string>& options = {}) : backends_(backends) {
    std::vector<std::string> args{kind, std::to_string(backends)};
    args.insert(args.end(), options.begin(), options.end());
    const ToolRun start = script(args);
    output_ = start.out + start.err;
    started_ = start.exit_code == 0;
  }
  ~Cluster() { script({"stop"}); }
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  [[nodiscard]] bool started() const { return started_; }
  [[nodiscard]] const std::string& output() const { return output_; }
  [[nodiscard]] std::string front() const { return read_text(dir_.file("front")); }
  [[nodiscard]] std::string front_port() const {
    const std::string f = front();
    return f.substr(f.rfind(':') + 1);
  }
  [[nodiscard]] std::string backend_port(int i) const {
    return read_text(dir_.file("backend-" + std::to_string(i) + ".port"));
  }
  [[nodiscard]] pid_t backend_pid(int i) const {
    return static_cast<pid_t>(std::stol(read_text(dir_.file("backend-" + std::to_string(i) + ".pid"))));
  }
  [[nodiscard]] std::string log(const std::string& name) const { return read_text(dir_.file(name)); }
  [[nodiscard]] int backends() const { return backends_; }

  ToolRun script(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{"env", "CLUSTER_DIR=" + dir_.file(""), std::string("IOMUX=") + IOMUX_CLI_PATH, "bash",
                                  std::string(IOMUX_SOURCE_DIR) + "/scripts/cluster.sh"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_tool(argv, 60s);
  }

 private:
  TempDir dir_;
  int backends_;
  bool started_ = false;
  std::string output_;
};

// The replies of redis-cli to `commands` (one a line) sent to 127.0.0.1:port, one per line: a
// value as it is, a nil as an empty line, an error as its text ("ERR ...").
std::vector<std::string> redis_replies(const std::string& port, const std::string& commands) {
  const ToolRun run = run_tool({"redis-cli", "-h", "127.0.0.1", "-p", port}, 20s, commands);
  std::vector<std::string> replies;
  std::string line;
  std::istringstream in(run.out);
  while (std::getline(in, line)) replies.push_back(line);
  return replies;
}

std::string key(int i) {
  return "cluster:key:" + std::to_string(i);
}
std::string value(int i) {
  return "value-" + std::to_string(i);
}

std::string gets(const std::vector<int>& keys) {
  std::string commands;
  for (int i : keys) commands += "GET " + key(i) + "\n";
  return commands;
}

TEST(TwemproxyCluster, KetamaPutsEachKeyOnOneBackendAndEjectsAKilledOne) {
  IOMUX_REQUIRE_TOOL("nutcracker", "nutcracker");
  IOMUX_REQUIRE_TOOL("redis-cli", "redis-tools");
  IOMUX_REQUIRE_TOOL("redis-benchmark", "redis-tools");
  Cluster cluster("resp", 3);
  ASSERT_TRUE(cluster.started()) << cluster.output();

  // Load first: redis-benchmark's SET and GET on random keys of its own, through twemproxy.
  const ToolRun bench = run_tool({"redis-benchmark", "-h", "127.0.0.1", "-p", cluster.front_port(), "-t", "set,get",
                                  "-n", "3000", "-r", "100000", "-c", "8", "-q"},
                                 30s);
  ASSERT_EQ(bench.exit_code, 0) << bench.out << bench.err;
  EXPECT_TRUE(contains(bench.out, "SET:") && contains(bench.out, "GET:")) << bench.out << bench.err;

  constexpr int kKeys = 300;
  std::string sets;
  std::vector<int> all;
  for (int i = 0; i < kKeys; ++i) {
    sets += "SET " + key(i) + " " + value(i) + "\n";
    all.push_back(i);
  }
  const std::vector<std::string> stored = redis_replies(cluster.front_port(), sets);
  ASSERT_EQ(stored.size(), static_cast<std::size_t>(kKeys));
  for (const std::string& reply : stored) ASSERT_EQ(reply, "OK");

  // Asked directly, each backend has some of the keys; each key is on exactly one.
  std::vector<std::vector<int>> keys_of(cluster.backends() + 1);
  std::map<int, int> copies;
  for (int b = 1; b <= cluster.backends(); ++b) {
    const std::vector<std::string> replies = redis_replies(cluster.backend_port(b), gets(all));
    ASSERT_EQ(replies.size(), static_cast<std::size_t>(kKeys)) << "backend " << b;
    for (int i = 0; i < kKeys; ++i) {
      if (replies[i].empty()) continue;
      EXPECT_EQ(replies[i], value(i)) << "backend " << b << ", " << key(i);
      keys_of[b].push_back(i);
      ++copies[i];
    }
  }
  for (int i = 0; i < kKeys; ++i) EXPECT_EQ(copies[i], 1) << key(i) << " is on " << copies[i] << " backends";
  for (int b = 1; b <= cluster.backends(); ++b) EXPECT_FALSE(keys_of[b].empty()) << "backend " << b << " got no key";

  // Backend 2 dies (SIGKILL: no goodbye). Its keys' requests fail until twemproxy has counted
  // server_failure_limit failures and taken it off the ring; then they are misses on the
  // others (an empty line), and no longer errors.
  ASSERT_EQ(::kill(cluster.backend_pid(2), SIGKILL), 0);
  bool ejected = false;
  std::vector<std::string> last;
  for (int round = 0; round < 20 && !ejected; ++round) {
    last = redis_replies(cluster.front_port(), gets(keys_of[2]));
    ejected = last.size() == keys_of[2].size() &&
              std::all_of(last.begin(), last.end(), [](const std::string& r) { return r.empty(); });
    if (!ejected) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(ejected) << "the killed backend's keys still fail: " << (last.empty() ? "(no reply)" : last.front())
                       << "\n"
                       << cluster.log("balancer.log");

  // The keys of the two that live answer through twemproxy, every one.
  for (int b : {1, 3}) {
    const std::vector<std::string> replies = redis_replies(cluster.front_port(), gets(keys_of[b]));
    ASSERT_EQ(replies.size(), keys_of[b].size()) << "backend " << b;
    for (std::size_t k = 0; k < replies.size(); ++k) EXPECT_EQ(replies[k], value(keys_of[b][k])) << key(keys_of[b][k]);
  }
}

// What wrk printed: its request count, and its error lines (absent when there were none).
struct WrkSummary {
  long requests = -1;
  std::string socket_errors;  // "Socket errors: connect 0, read 3, write 0, timeout 0", or ""
  long non_2xx_3xx = 0;
};

WrkSummary summarize_wrk(const std::string& out) {
  WrkSummary s;
  std::smatch m;
  if (std::regex_search(out, m, std::regex(R"((\d+) requests in)"))) s.requests = std::stol(m[1]);
  if (std::regex_search(out, m, std::regex(R"(Socket errors:[^\n]*)"))) s.socket_errors = m[0];
  if (std::regex_search(out, m, std::regex(R"(Non-2xx or 3xx responses: (\d+))"))) s.non_2xx_3xx = std::stol(m[1]);
  return s;
}

// Issue 19's test: wrk through HAProxy to 3 backends while each backend in turn is upgraded in
// place (SIGUSR2: a new process takes its listening socket, the old one drains), then each is
// stopped (SIGTERM) and started again on its port: no socket error, no non-2xx. The backends'
// drain is bounded at 2 s (an idle keep-alive connection of HAProxy's pool waits at most that).
TEST(HaproxyCluster, WrkSeesNoErrorWhileEachBackendIsUpgradedThenRestarted) {
  IOMUX_REQUIRE_TOOL("haproxy", "haproxy");
  IOMUX_REQUIRE_TOOL("wrk", "wrk");
  Cluster cluster("http", 3, {"--", "--drain-timeout", "2"});
  ASSERT_TRUE(cluster.started()) << cluster.output();

  // wrk runs until it is interrupted (it prints its summary then), so that every upgrade and
  // restart happens under its load however long they take.
  Subprocess wrk({"wrk", "-t", "2", "-c", "16", "-d", "60s", "http://" + cluster.front() + "/plaintext"});
  ASSERT_TRUE(wrk.started());
  std::this_thread::sleep_for(1s);
  for (int i = 1; i <= 3; ++i) {
    const pid_t before = cluster.backend_pid(i);
    const ToolRun upgrade = cluster.script({"upgrade", std::to_string(i)});
    ASSERT_EQ(upgrade.exit_code, 0) << upgrade.out << upgrade.err
                                    << cluster.log("backend-" + std::to_string(i) + ".log");
    EXPECT_NE(cluster.backend_pid(i), before) << "backend " << i;
  }
  for (int i = 1; i <= 3; ++i) {
    const pid_t before = cluster.backend_pid(i);
    const ToolRun restart = cluster.script({"restart", std::to_string(i)});
    ASSERT_EQ(restart.exit_code, 0) << restart.out << restart.err;
    EXPECT_NE(cluster.backend_pid(i), before) << "backend " << i;
  }
  std::this_thread::sleep_for(1s);  // under load once more, all three back
  wrk.signal(SIGINT);
  ASSERT_EQ(wrk.wait_exit(10s), 0) << wrk.out() << wrk.err();
  const WrkSummary wrk_says = summarize_wrk(wrk.out());
  std::cout << "wrk through HAProxy, 3 backends upgraded, then restarted: " << wrk_says.requests << " requests, "
            << (wrk_says.socket_errors.empty() ? "no socket errors" : wrk_says.socket_errors) << ", "
            << wrk_says.non_2xx_3xx << " non-2xx/3xx\n";
  EXPECT_GT(wrk_says.requests, 0) << wrk.out();
  EXPECT_EQ(wrk_says.socket_errors, "") << wrk.out();
  EXPECT_EQ(wrk_says.non_2xx_3xx, 0) << wrk.out();
}

// The same with no balancer: wrk's keep-alive connections straight at one server upgraded
// three times. Each connection open at an upgrade gets its next response with Connection:
// close from the old process and reconnects to the listening socket, which the new one
// serves; none is cut under a request.
class UpgradeUnderWrk : public ::testing::TestWithParam<std::string> {};

// Whether `pid` runs: not gone, and not a zombie. The processes an upgrade started are orphaned
// when their predecessor exits, and whoever adopts them may reap them late.
bool running(pid_t pid) {
  const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  const std::size_t end_of_name = stat.rfind(')');
  return end_of_name != std::string::npos && end_of_name + 2 < stat.size() && stat[end_of_name + 2] != 'Z';
}

TEST_P(UpgradeUnderWrk, WrkStraightAtOneServerUpgradedThreeTimesSeesNoError) {
  IOMUX_REQUIRE_TOOL("wrk", "wrk");
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string pid_file = dir.file("iomux.pid");
  Subprocess server({IOMUX_CLI_PATH, "serve", "--model", GetParam(), "--protocol", "http", "--host", "127.0.0.1",
                     "--port", "0", "--pid-file", pid_file, "--drain-timeout", "2"});
  const auto listening = server.wait_for_output(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"), 10s);
  ASSERT_TRUE(listening) << server.err();
  const std::string url = "http://127.0.0.1:" + std::string((*listening)[1]) + "/plaintext";
  const auto pid_in_file = [&] {
    const std::string text = read_text(pid_file);
    return text.empty() ? pid_t{0} : static_cast<pid_t>(std::stol(text));
  };
  ASSERT_TRUE(eventually([&] { return pid_in_file() == server.pid(); }, 5s));

  Subprocess wrk({"wrk", "-t", "2", "-c", "16", "-d", "60s", url});  // interrupted below
  ASSERT_TRUE(wrk.started());
  std::vector<pid_t> pids{server.pid()};
  for (int upgrade = 1; upgrade <= 3; ++upgrade) {
    std::this_thread::sleep_for(1200ms);
    const pid_t old = pids.back();
    ASSERT_EQ(::kill(old, SIGUSR2), 0);
    ASSERT_TRUE(eventually([&] { return pid_in_file() != old && pid_in_file() != 0; }, 10s))
        << "upgrade " << upgrade << ": the pid file still names " << old << "\n"
        << server.err();
    pids.push_back(pid_in_file());
  }
  std::this_thread::sleep_for(1s);
  wrk.signal(SIGINT);
  ASSERT_EQ(wrk.wait_exit(10s), 0) << wrk.out() << wrk.err();
  const WrkSummary wrk_says = summarize_wrk(wrk.out());
  std::cout << "wrk straight at " << GetParam() << ", upgraded 3 times: " << wrk_says.requests << " requests, "
            << (wrk_says.socket_errors.empty() ? "no socket errors" : wrk_says.socket_errors) << ", "
            << wrk_says.non_2xx_3xx << " non-2xx/3xx\n";
  EXPECT_GT(wrk_says.requests, 0) << wrk.out();
  EXPECT_EQ(wrk_says.socket_errors, "") << wrk.out() << server.err();
  EXPECT_EQ(wrk_says.non_2xx_3xx, 0) << wrk.out();
  // The last one stops as any server does (the earlier ones exited after their drain).
  ASSERT_EQ(::kill(pids.back(), SIGTERM), 0);
  EXPECT_TRUE(eventually([&] { return !running(pids.back()); }, 10s));
}

INSTANTIATE_TEST_SUITE_P(Models, UpgradeUnderWrk, ::testing::Values(std::string("epoll"), std::string("uring")),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// `--backend nginx`, the peers of bench/cluster_bench.py: nginx in iomux's place behind the same
// generated HAProxy configuration, answering what iomux answers (the body of /plaintext, and
// 200 on the health check's /health, without which HAProxy would take every backend out); the
// script's stop ends them like iomux backends.
TEST(HaproxyCluster, NginxBackendsAnswerAsIomuxDoesAndStopWithTheCluster) {
  IOMUX_REQUIRE_TOOL("haproxy", "haproxy");
  IOMUX_REQUIRE_TOOL("nginx", "nginx");
  IOMUX_REQUIRE_TOOL("curl", "curl");
  std::vector<pid_t> pids;
  {
    Cluster cluster("http", 2, {"--backend", "nginx"});
    ASSERT_TRUE(cluster.started()) << cluster.output();
    auto get = [](const std::string& address, const std::string& path) {
      return run_tool({"curl", "--silent", "--show-error", "--max-time", "10", "--write-out", " %{http_code}",
                       "http://" + address + path},
                      20s);
    };
    for (int i = 1; i <= 2; ++i) {
      pids.push_back(cluster.backend_pid(i));
      const std::string backend = "127.0.0.1:" + cluster.backend_port(i);
      EXPECT_EQ(get(backend, "/health").out, "ok 200") << "backend " << i;
      EXPECT_EQ(get(backend, "/plaintext").out, "Hello, World! 200") << "backend " << i;
    }
    // Through HAProxy, round robin: both backends' answers, each the one iomux gives.
    for (int i = 0; i < 4; ++i) EXPECT_EQ(get(cluster.front(), "/plaintext").out, "Hello, World! 200");
    const ToolRun stop = cluster.script({"stop"});
    EXPECT_EQ(stop.exit_code, 0) << stop.out << stop.err;
  }
  // A process that has exited has no executable any more, even as a zombie nobody has reaped.
  char exe[256];
  for (const pid_t pid : pids)
    EXPECT_LT(::readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), exe, sizeof exe), 0)
        << "nginx backend " << pid << " still runs";
}

}  // namespace
}  // namespace iomux::test
