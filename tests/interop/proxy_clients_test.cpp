// proxy_protocol() with real clients and servers on each side: redis-cli and redis-benchmark
// through it to redis-server (over TCP and over a Unix socket), curl and wrk through it to an
// iomux HTTP server, 256 MiB to a client that reads slowly with the proxy's memory bounded,
// half-closes passed on, and an upstream that is down. On one model of each shape (a client at
// a time, a thread per client, a readiness loop level- and edge-triggered, completions).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "interop/client_tools.hpp"
#include "iomux/http.hpp"
#include "iomux/proxy.hpp"
#include "support/temp_dir.hpp"
#include "support/test_net.hpp"

namespace iomux::test {
namespace {

std::vector<std::string> proxy_models() {
  return {"blocking", "threaded", "poll", "epoll", "epoll-et", "uring"};
}

// A redis-server of the test's own, on a TCP port and a Unix socket; stopped with the test.
class RedisServer {
 public:
  // False (and the reason in `why`) when it cannot start.
  bool start() {
    if (!on_path("redis-server")) {
      why = "redis-server is not on PATH: install the Debian package redis-server (scripts/install-deps.sh does)";
      return false;
    }
    for (int attempt = 0; attempt < 5 && !process_; ++attempt) {
      const std::uint16_t port = unused_port();
      auto p = std::make_unique<Subprocess>(std::vector<std::string>{
          "redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--unixsocket",
          dir_.file("redis.sock"), "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", ""});
      if (p->wait_for_output(std::regex("Ready to accept connections"), 10s)) {
        process_ = std::move(p);
        tcp = Endpoint::loopback_v4(port);
        unix_socket = resolve_one("unix:" + dir_.file("redis.sock"));
      }
    }
    if (!process_) why = "redis-server did not start";
    return process_ != nullptr;
  }
  ~RedisServer() {
    if (process_) {
      process_->signal(SIGTERM);
      process_->wait_exit(10s);
    }
  }
  Endpoint tcp;
  Endpoint unix_socket;
  std::string why;

 private:
  TempDir dir_;
  std::unique_ptr<Subprocess> process_;
};

class ProxyClients : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    raise_fd_limit();
    IOMUX_REQUIRE_MODEL(GetParam());
  }

  // The proxy under test, in this process, on the model of the test.
  void proxy_to(std::vector<Endpoint> upstreams, ProxyOptions options = {}) {
    options.upstreams = std::move(upstreams);
    ServerOptions o;
    o.model = GetParam();
    o.listeners = {Endpoint::loopback_v4(0)};
    proxy_ = std::make_unique<RunningServer>(std::move(o), proxy_protocol(std::move(options)), LogLevel::warn);
  }
  std::string proxy_port() const { return port_of(proxy_->endpoint()); }

  std::unique_ptr<RunningServer> proxy_;
};

#define IOMUX_REQUIRE_REDIS(redis)     \
  RedisServer redis_server_;           \
  RedisServer* redis = &redis_server_; \
  if (!redis->start()) GTEST_SKIP() << redis->why

TEST_P(ProxyClients, RedisCliThroughTheProxyToRedisServer) {
  IOMUX_REQUIRE_TOOL("redis-cli", "redis-tools");
  IOMUX_REQUIRE_REDIS(redis);
  proxy_to({redis->tcp});
  const std::string key = "proxy-" + GetParam();
  const ToolRun set = run_tool({"redis-cli", "-p", proxy_port(), "set", key, "value-" + GetParam()}, 20s);
  EXPECT_EQ(set.out, "OK\n") << set.err;
  const ToolRun get = run_tool({"redis-cli", "-p", proxy_port(), "get", key}, 20s);
  EXPECT_EQ(get.out, "value-" + GetParam() + "\n") << get.err;
  // The value is redis-server's own: asked directly, it has it.
  const ToolRun direct = run_tool({"redis-cli", "-p", port_of(redis->tcp), "get", key}, 20s);
  EXPECT_EQ(direct.out, get.out);
  EXPECT_EQ(proxy_->log().lines(), std::vector<std::string>{}) << "the proxy logged warnings";
}

TEST_P(ProxyClients, RedisBenchmarkThroughTheProxyPipelined) {
  IOMUX_REQUIRE_TOOL("redis-benchmark", "redis-tools");
  IOMUX_REQUIRE_REDIS(redis);
  proxy_to({redis->tcp});
  // `blocking` serves one client at a time (and its upstream with it).
  const std::string clients = GetParam() == "blocking" ? "1" : "20";
  const ToolRun run = run_tool({"redis-benchmark", "-p", proxy_port(), "-t", "set,get", "-n", "20000", "-c", clients,
                                "-P", "16", "-r", "1000", "--csv"},
                               60s);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  // One CSV row per test, each with a rate: every request of the run was answered.
  EXPECT_TRUE(contains(run.out, "\"SET\",\"")) << run.out;
  EXPECT_TRUE(contains(run.out, "\"GET\",\"")) << run.out;
  const StatsSnapshot s = proxy_->server().stats();
  EXPECT_EQ(s.connections_outbound, s.connections_accepted) << "one upstream connection per client";
  EXPECT_EQ(s.connects_failed, 0u);
}

TEST_P(ProxyClients, RedisCliThroughTheProxyToAUnixSocketUpstream) {
  IOMUX_REQUIRE_TOOL("redis-cli", "redis-tools");
  IOMUX_REQUIRE_REDIS(redis);
  proxy_to({redis->unix_socket});
  const ToolRun run = run_tool({"redis-cli", "-p", proxy_port(), "ping"}, 20s);
  EXPECT_EQ(run.out, "PONG\n") << run.err;
}

TEST_P(ProxyClients, CurlAndWrkThroughTheProxyToAnIomuxHttpServer) {
  IOMUX_REQUIRE_TOOL("curl", "curl");
  IOMUX_REQUIRE_TOOL("wrk", "wrk");
  ServerOptions upstream_options;
  upstream_options.model = "epoll";
  upstream_options.listeners = {Endpoint::loopback_v4(0)};
  RunningServer upstream(std::move(upstream_options), http_protocol(), LogLevel::warn);
  proxy_to({upstream.endpoint()});
  const std::string url = "http://127.0.0.1:" + proxy_port();
  const ToolRun curl =
      run_tool({"curl", "--silent", "--show-error", "--max-time", "20", url + "/plaintext", url + "/"}, 30s);
  EXPECT_EQ(curl.exit_code, 0) << curl.err;
  EXPECT_EQ(curl.out, "Hello, World!----ok----Request accepted");
  const ToolRun wrk = run_tool({"wrk", "-t1", "-c8", "-d1", "--timeout", "5", url + "/plaintext"}, 30s);
  ASSERT_EQ(wrk.exit_code, 0) << wrk.err;
  EXPECT_FALSE(contains(wrk.out, "Socket errors")) << wrk.out;
  EXPECT_FALSE(contains(wrk.out, "Non-2xx")) << wrk.out;
  EXPECT_TRUE(std::regex_search(wrk.out, std::regex(R"(\n\s+[1-9]\d* requests in)"))) << wrk.out;
}

// Sends `total` bytes of a known pattern as fast as its peer takes them, then FIN.
class Source final : public Handler {
 public:
  static constexpr std::size_t kChunk = 256 * 1024;
  explicit Source(std::size_t total) : total_(total) {}
  static char byte_at(std::size_t i) { return static_cast<char>(i % 251); }
  void on_open(Connection& conn) override { fill(conn); }
  std::size_t on_data(std::span<const char> in, Connection&) override { return in.size(); }
  void on_drain(Connection& conn) override { fill(conn); }

 private:
  void fill(Connection& conn) {
    while (sent_ < total_ && conn.pending_output() < 2 * kChunk) {
      std::string chunk(std::min(kChunk, total_ - sent_), '\0');
      for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = byte_at(sent_ + i);
      sent_ += chunk.size();
      conn.write(std::move(chunk));
    }
    if (sent_ == total_)
      conn.shutdown_write();
    else
      conn.notify_drain(kChunk);
  }
  std::size_t total_;
  std::size_t sent_ = 0;
};

// Sanitizers keep memory of their own (ASan's quarantine holds 256 MiB of freed blocks by
// default, TSan its shadow): the process's peak says nothing about the proxy's bound there.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// The peak resident memory of this process so far (VmHWM), in bytes.
std::size_t peak_rss() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

TEST_P(ProxyClients, TwoHundredFiftySixMebibytesToASlowReaderWithTheProxysMemoryBounded) {
  static constexpr std::size_t kTotal = 256u << 20;
  ServerOptions upstream_options;
  upstream_options.model = "epoll";
  upstream_options.listeners = {Endpoint::loopback_v4(0)};
  RunningServer upstream(
      std::move(upstream_options), []() -> std::unique_ptr<Handler> { return std::make_unique<Source>(kTotal); },
      LogLevel::warn);
  ProxyOptions options;
  options.max_buffered = 256 * 1024;
  proxy_to({upstream.endpoint()}, options);
  UniqueFd client = connect_to(proxy_->endpoint());
  ASSERT_TRUE(client);
  // Small receive buffer, small reads and a pause after each: the proxy must hold the
  // upstream back rather than keep what the client has not taken.
  const int rcvbuf = 64 * 1024;
  ::setsockopt(client.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  std::vector<char> buffer(64 * 1024);
  std::size_t received = 0;
  bool pattern_ok = true;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    const ssize_t n = ::recv(client.get(), buffer.data(), buffer.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n && pattern_ok; ++i) pattern_ok = buffer[i] == Source::byte_at(received + i);
    received += static_cast<std::size_t>(n);
    if (received % (1u << 20) < static_cast<std::size_t>(n)) std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(received, kTotal);
  EXPECT_TRUE(pattern_ok) << "the bytes arrived changed or out of order";
  // What one connection of the proxy owed at its worst: its bound plus one read's worth.
  const StatsSnapshot s = proxy_->server().stats();
  EXPECT_LE(s.peak_pending_per_connection, options.max_buffered + 256 * 1024) << "peak pending per connection";
  // And the process as a whole (the proxy, the source and this client) stayed far below the
  // 256 MiB that went through (under a sanitizer the bound above is the check).
  if (!kSanitized) {
    EXPECT_LT(peak_rss(), std::size_t{96} << 20);
  }
}

TEST_P(ProxyClients, HalfClosesArePassedOnBothWays) {
  ServerOptions upstream_options;
  upstream_options.model = "epoll";
  upstream_options.listeners = {Endpoint::loopback_v4(0)};
  RunningServer upstream(std::move(upstream_options), echo_protocol(), LogLevel::warn);
  proxy_to({upstream.endpoint()});
  UniqueFd client = connect_to(proxy_->endpoint());
  ASSERT_TRUE(client);
  ASSERT_TRUE(send_text(client.get(), "last words"));
  // FIN from the client reaches the echo server, which answers and closes; its FIN comes back.
  ASSERT_EQ(::shutdown(client.get(), SHUT_WR), 0);
  EXPECT_EQ(recv_exact(client.get(), 10), "last words");
  EXPECT_TRUE(wait_closed(client.get()));
  EXPECT_TRUE(wait_until([&] { return proxy_->server().stats().connections_open == 0; }));
}

TEST_P(ProxyClients, AnUpstreamThatIsDownIsSkippedAndWithNoneLeftTheClientIsClosedAndLogged) {
  IOMUX_REQUIRE_TOOL("redis-cli", "redis-tools");
  IOMUX_REQUIRE_REDIS(redis);
  const Endpoint down = Endpoint::loopback_v4(unused_port());
  proxy_to({down, redis->tcp});
  for (int i = 0; i < 4; ++i) {
    const ToolRun run = run_tool({"redis-cli", "-p", proxy_port(), "ping"}, 20s);
    EXPECT_EQ(run.out, "PONG\n") << "client " << i << ": " << run.err;
  }
  // The down upstream was tried once, then skipped.
  EXPECT_EQ(proxy_->server().stats().connects_failed, 1u);
  proxy_.reset();

  proxy_to({down});
  UniqueFd client = connect_to(proxy_->endpoint());
  ASSERT_TRUE(client);
  ASSERT_TRUE(send_text(client.get(), "*1\r\n$4\r\nPING\r\n"));
  EXPECT_TRUE(wait_closed(client.get())) << "a client with no upstream is closed";
  EXPECT_TRUE(wait_until([&] {
    for (const std::string& line : proxy_->log().lines())
      if (contains(line, "connect to " + down.to_string() + " failed")) return true;
    return false;
  })) << "the failed connect is logged";
}

// Writes "tick\n" every 100 ms, ten times, then FIN: a stream that only the upstream side moves.
class Ticker final : public Handler {
 public:
  void on_open(Connection& conn) override { tick(conn); }
  std::size_t on_data(std::span<const char> in, Connection&) override { return in.size(); }

 private:
  void tick(Connection& conn) {
    conn.start_timer(100ms, [this](Connection& c) {
      c.write("tick\n");
      if (++ticks_ == 10)
        c.shutdown_write();
      else
        tick(c);
    });
  }
  int ticks_ = 0;
};

TEST_P(ProxyClients, APairThatMovesNothingIsClosedAfterTheIdleTimeoutAndOneThatMovesOneWayIsNot) {
  ServerOptions silent_options;
  silent_options.model = "epoll";
  silent_options.listeners = {Endpoint::loopback_v4(0)};
  RunningServer silent_upstream(std::move(silent_options), echo_protocol(), LogLevel::warn);
  ServerOptions ticker_options;
  ticker_options.model = "epoll";
  ticker_options.listeners = {Endpoint::loopback_v4(0)};
  RunningServer ticker(std::move(ticker_options), handler_factory<Ticker>(), LogLevel::warn);
  ProxyOptions options;
  options.idle_timeout = 300ms;

  // Silent both ways: closed, both sides.
  proxy_to({silent_upstream.endpoint()}, options);
  UniqueFd silent = connect_to(proxy_->endpoint());
  ASSERT_TRUE(silent);
  EXPECT_TRUE(wait_closed(silent.get())) << "a silent pair was not closed";
  EXPECT_TRUE(wait_until([&] { return proxy_->server().stats().connections_open == 0; }));
  proxy_.reset();

  // For a second, only the upstream side moves: the client sends nothing and is kept.
  proxy_to({ticker.endpoint()}, options);
  UniqueFd client = connect_to(proxy_->endpoint());
  ASSERT_TRUE(client);
  std::string got;
  char buffer[256];
  for (ssize_t n; (n = ::recv(client.get(), buffer, sizeof buffer, 0)) > 0 || (n < 0 && errno == EINTR);)
    if (n > 0) got.append(buffer, static_cast<std::size_t>(n));
  std::string want;
  for (int i = 0; i < 10; ++i) want += "tick\n";
  EXPECT_EQ(got, want) << "the pair was closed while its upstream side was moving";
}

// Each client costs the proxy two descriptors (its own and its upstream's), and outbound
// connections take no max_connections place: a flood of clients can leave none for upstreams
// (or for accepting). Those clients must be closed cleanly ("cannot connect to an upstream",
// or shed at accept), the others served, and the proxy serve again once the flood is gone.
// `iomux serve` with 64 descriptors, 100 clients at once.
TEST_P(ProxyClients, AClientFloodPastTheDescriptorLimitIsShedCleanlyAndTheProxyRecovers) {
  if (GetParam() == "blocking" || GetParam() == "threaded")
    GTEST_SKIP() << "a thread per client (or one at a time): the flood waits in the accept queue, it is not shed";
  IOMUX_REQUIRE_TOOL("prlimit", "util-linux");
  IOMUX_REQUIRE_REDIS(redis);
  Subprocess proxy({"prlimit", "--nofile=64:64", IOMUX_CLI_PATH, "serve", "--model", GetParam(), "--host", "127.0.0.1",
                    "--port", "0", "--protocol", "proxy", "--upstream", redis->tcp.to_string()});
  const auto listening = proxy.wait_for_output(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"), 10s);
  ASSERT_TRUE(listening) << proxy.err();
  const Endpoint front = Endpoint::loopback_v4(static_cast<std::uint16_t>(std::stoi((*listening)[1])));
  std::vector<UniqueFd> flood;
  for (int i = 0; i < 100; ++i)
    if (UniqueFd c = connect_to(front, 2s)) flood.push_back(std::move(c));
  int answered = 0;
  for (UniqueFd& c : flood) {
    set_recv_timeout(c.get(), 2s);
    if (send_text(c.get(), "PING\r\n") && recv_exact(c.get(), 7) == "+PONG\r\n") ++answered;
  }
  EXPECT_GT(answered, 0) << "nobody was served";
  EXPECT_LT(answered, 100) << "the limit was not reached: the test proves nothing";
  flood.clear();
  // Every descriptor comes back: a new client is served.
  EXPECT_TRUE(wait_until(
      [&] {
        UniqueFd c = connect_to(front, 2s);
        if (!c) return false;
        set_recv_timeout(c.get(), 2s);
        return send_text(c.get(), "PING\r\n") && recv_exact(c.get(), 7) == "+PONG\r\n";
      },
      10s));
  proxy.signal(SIGTERM);
  EXPECT_EQ(proxy.wait_exit(10s), 0) << proxy.err();
}

INSTANTIATE_TEST_SUITE_P(Models, ProxyClients, ::testing::ValuesIn(proxy_models()), ModelTestName());

}  // namespace
}  // namespace iomux::test
