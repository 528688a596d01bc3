// Real clients over a Unix socket: `redis-cli -s PATH` against resp_protocol() and
// `curl --unix-socket PATH` against http_protocol(), on every model, the server also on a TCP
// port (several listeners). Skipped, not passed, when the client or the model is missing.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "interop/client_tools.hpp"
#include "iomux/http.hpp"
#include "iomux/resp.hpp"
#include "support/temp_dir.hpp"
#include "support/test_net.hpp"

namespace iomux::test {
namespace {

class UnixSocketClients : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    raise_fd_limit();
    IOMUX_REQUIRE_MODEL(GetParam());
    ASSERT_TRUE(dir_.ok());
  }

  void serve(HandlerFactory factory) {
    ServerOptions o;
    o.model = GetParam();
    o.listeners = {Endpoint::loopback_v4(0), resolve_one("unix:" + path_)};
    server_ = std::make_unique<RunningServer>(std::move(o), std::move(factory), LogLevel::warn);
  }

  // Nothing here should make the server warn.
  void TearDown() override {
    if (server_) {
      EXPECT_EQ(server_->log().lines(), std::vector<std::string>{}) << "the server logged warnings";
    }
  }

  TempDir dir_;
  const std::string path_ = dir_.file("clients.sock");
  std::unique_ptr<RunningServer> server_;
};

TEST_P(UnixSocketClients, RedisCliPingsOverTheSocketAndTcpStillServes) {
  IOMUX_REQUIRE_TOOL("redis-cli", "redis-tools");
  serve(resp_protocol());
  const ToolRun run = run_tool({"redis-cli", "-s", path_, "ping"}, 20s);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  EXPECT_EQ(run.out, "PONG\n");
  const ToolRun set = run_tool({"redis-cli", "-s", path_, "set", "k", "v"}, 20s);
  EXPECT_EQ(set.out, "OK\n") << set.err;
  // The same keyspace over TCP: one server behind both listeners.
  const ToolRun get = run_tool({"redis-cli", "-h", "127.0.0.1", "-p", port_of(server_->endpoint()), "get", "k"}, 20s);
  EXPECT_EQ(get.out, "v\n") << get.err;
}

TEST_P(UnixSocketClients, CurlGetsPlaintextOverTheSocket) {
  IOMUX_REQUIRE_TOOL("curl", "curl");
  serve(http_protocol());
  const ToolRun run = run_tool({"curl", "--silent", "--show-error", "--max-time", "20", "--unix-socket", path_,
                                "http://x/plaintext", "http://x/"},
                               30s);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  EXPECT_EQ(run.out, "Hello, World!----ok----Request accepted");
}

INSTANTIATE_TEST_SUITE_P(Models, UnixSocketClients, ::testing::ValuesIn(all_model_names()), ModelTestName());

}  // namespace
}  // namespace iomux::test
