// iomux serving resp_protocol() to the real Redis clients, redis-cli and redis-benchmark (the
// redis-tools package), on several models. The expected redis-cli output is what redis-cli
// 7.0 prints against Redis 7.0 itself when its stdout is not a terminal: replies raw, one per
// line, an error followed by an empty line. Every case is skipped, not passed, when the
// client or the model is not available here.
#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "interop/client_tools.hpp"
#include "iomux/resp.hpp"
#include "support/test_net.hpp"

namespace iomux::test {
namespace {

class RedisClients : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    raise_fd_limit();
    IOMUX_REQUIRE_MODEL(GetParam());
    IOMUX_REQUIRE_TOOL("redis-cli", "redis-tools");
    ServerOptions o;
    o.model = GetParam();
    server_ = std::make_unique<RunningServer>(std::move(o), resp_protocol(), LogLevel::warn);
  }

  // Nothing here should make the server warn (a protocol error, a failed thread...).
  void TearDown() override {
    if (server_) {
      EXPECT_EQ(server_->log().lines(), std::vector<std::string>{}) << "the server logged warnings";
    }
  }

  // One client at a time on `blocking`: redis-benchmark and the like use one connection there.
  bool concurrent() const { return find_model(GetParam())->serves_concurrently; }

  std::vector<std::string> cli_argv() const {
    return {"redis-cli", "-h", "127.0.0.1", "-p", port_of(server_->endpoint())};
  }

  // One redis-cli run with `command` as its arguments, or with `script` (one command a line)
  // on its stdin, served on one connection.
  ToolRun cli(const std::vector<std::string>& command, const std::string& script = {}) const {
    std::vector<std::string> argv = cli_argv();
    argv.insert(argv.end(), command.begin(), command.end());
    return run_tool(argv, 20s, script);
  }

  // redis-cli prints exactly `expected` for `command` and exits 0 with nothing on stderr.
  void expect_cli(const std::vector<std::string>& command, std::string_view expected) const {
    std::string shown;
    for (const auto& word : command) shown += word + " ";
    SCOPED_TRACE("redis-cli " + shown);
    const ToolRun run = cli(command);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    EXPECT_EQ(run.err, "");
    EXPECT_EQ(run.out, expected);
  }

  // One redis-cli runs every command of `steps` in turn on one connection (a command a line on
  // its stdin) and prints exactly what each expects. One process for many commands keeps the
  // suite fast: starting redis-cli costs more than a round trip.
  struct Step {
    std::string command;
    std::string expected;
  };
  void expect_script(const std::vector<Step>& steps) const {
    std::string script, expected;
    for (const Step& step : steps) {
      script += step.command + "\n";
      expected += step.expected;
    }
    SCOPED_TRACE("redis-cli with the script:\n" + script);
    const ToolRun run = cli({}, script);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    EXPECT_EQ(run.err, "");
    EXPECT_EQ(run.out, expected);
  }

  std::unique_ptr<RunningServer> server_;
};

const std::string kWrongType = "WRONGTYPE Operation against a key holding the wrong kind of value\n\n";

TEST_P(RedisClients, RedisCliRoundTripsStringsCountersAndLists) {
  // A redis-cli per command, the command as its arguments...
  expect_cli({"SET", "greeting", "hello world"}, "OK\n");
  expect_cli({"GET", "greeting"}, "hello world\n");
  expect_cli({"INCR", "counter"}, "1\n");
  // ...and many commands on one connection.
  expect_script({
      {"GET missing", "\n"},
      {"INCR counter", "2\n"},
      {"INCRBY counter 40", "42\n"},
      {"GET counter", "42\n"},
      {"MSET k1 v1 k2 \"v 2\" k3 v3", "OK\n"},
      {"MGET k1 missing k3 k2", "v1\n\nv3\nv 2\n"},
      {"LPUSH list a b c", "3\n"},
      {"RPUSH list z", "4\n"},
      {"LRANGE list 0 -1", "c\nb\na\nz\n"},
      {"LRANGE list 1 2", "b\na\n"},
      {"LLEN list", "4\n"},
      {"DBSIZE", "6\n"},
  });
}

TEST_P(RedisClients, RedisCliSeesAKeyExpire) {
  // Set, read back and ask the TTL on one connection: the 200 ms run from the SET, and a
  // redis-cli of its own per command could take longer than that to start on a busy machine.
  const ToolRun set = cli({}, "SET temp value PX 200\nGET temp\nTTL temp\nPTTL temp\n");
  const auto after_set = std::chrono::steady_clock::now();
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_EQ(set.err, "");
  const std::vector<std::string> lines = lines_of(set.out);
  ASSERT_EQ(lines.size(), 4u) << set.out;
  EXPECT_EQ(lines[0], "OK");
  EXPECT_EQ(lines[1], "value");
  EXPECT_EQ(lines[2], "0");  // Redis rounds a TTL to the nearest second
  int pttl = -100;
  std::from_chars(lines[3].data(), lines[3].data() + lines[3].size(), pttl);
  EXPECT_GT(pttl, 0) << lines[3];
  EXPECT_LE(pttl, 200) << lines[3];

  // The server set the key before redis-cli exited, so it has surely expired 400 ms later.
  std::this_thread::sleep_until(after_set + 400ms);
  const ToolRun gone = cli({}, "GET temp\nEXISTS temp\nTTL temp\nPTTL temp\nDBSIZE\n");
  EXPECT_EQ(gone.exit_code, 0) << gone.err;
  EXPECT_EQ(gone.err, "");
  EXPECT_EQ(gone.out, "\n0\n-2\n-2\n0\n");
}

TEST_P(RedisClients, RedisCliGetsRedisErrorWording) {
  expect_cli({"FOO", "bar", "baz"}, "ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' \n\n");
  expect_cli({"LPUSH", "list", "x"}, "1\n");
  expect_cli({"GET", "list"}, kWrongType);
  // Errors on one connection, which survives them all.
  expect_script({
      {"NOSUCHCOMMAND", "ERR unknown command 'NOSUCHCOMMAND', with args beginning with: \n\n"},
      {"INCR list", kWrongType},
      {"SET word abc", "OK\n"},
      {"LPUSH word x", kWrongType},
      {"LRANGE word 0 -1", kWrongType},
      {"INCR word", "ERR value is not an integer or out of range\n\n"},
      {"GET", "ERR wrong number of arguments for 'get' command\n\n"},
      {"PING", "PONG\n"},
  });
}

// redis-benchmark runs each of its tests against the server; a reply it does not expect (an
// error, a wrong type) makes it stop with a message and a nonzero exit.
class RedisBenchmark : public RedisClients {
 protected:
  void run_benchmark(int pipeline) {
    IOMUX_REQUIRE_TOOL("redis-benchmark", "redis-tools");
    std::vector<std::string> argv{"redis-benchmark",
                                  "-h",
                                  "127.0.0.1",
                                  "-p",
                                  port_of(server_->endpoint()),
                                  "-n",
                                  "20000",
                                  "-q",
                                  "-t",
                                  "ping_inline,ping_mbulk,set,get,incr,lpush,lpop,mset",
                                  "-P",
                                  std::to_string(pipeline),
                                  "-c",
                                  concurrent() ? "50" : "1"};
    const ToolRun run = run_tool(argv, 60s);
    EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
    for (const char* bad : {"ERROR", "Error", "WARNING", "Could not"}) {
      EXPECT_FALSE(contains(run.err, bad)) << "stderr: " << run.err;
      EXPECT_FALSE(contains(run.out, bad)) << "stdout: " << run.out;
    }
    // The last progress line of each test (they end with '\r') is its result.
    const std::vector<std::string> lines = lines_of(run.out);
    for (const char* test : {"PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "LPUSH", "LPOP", "MSET (10 keys)"}) {
      const std::string prefix = std::string(test) + ": ";
      const bool reported = std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
        return l.starts_with(prefix) && contains(l, " requests per second");
      });
      EXPECT_TRUE(reported) << test << " has no result line in: " << run.out;
    }
  }
};

TEST_P(RedisBenchmark, EveryTestCompletesWithoutPipelining) {
  run_benchmark(1);
}
TEST_P(RedisBenchmark, EveryTestCompletesWithPipelinesOf16) {
  run_benchmark(16);
}

// ---- Many clients incrementing the same keys on a server of two event-loop threads.

// A client of our own: INCR on `keys` in turn, `per_connection` times, in pipelines of 16,
// keeping every reply. Each reply is the count after that INCR, so if the server counted each
// INCR exactly once, the replies for one key over all clients are 1..N, each once.
struct IncrementResults {
  std::mutex mutex;
  std::map<std::string, std::vector<long long>> replies;  // key -> every value INCR answered
  std::vector<std::string> failures;
};

void increment_keys(const Endpoint& ep, const std::vector<std::string>& keys, int per_connection,
                    IncrementResults& results) {
  auto fail = [&](std::string why) {
    std::lock_guard lock(results.mutex);
    results.failures.push_back(std::move(why));
  };
  UniqueFd fd = connect_to(ep, 10s);
  if (!fd) return fail("connect failed");
  std::map<std::string, std::vector<long long>> mine;
  std::string pending;  // replies received and not parsed yet
  constexpr int kDepth = 16;
  for (int sent = 0; sent < per_connection; sent += kDepth) {
    const int batch = std::min(kDepth, per_connection - sent);
    std::string request;
    std::vector<const std::string*> order;
    for (int i = 0; i < batch; ++i) {
      const std::string& key = keys[static_cast<std::size_t>(sent + i) % keys.size()];
      request += "*2\r\n$4\r\nINCR\r\n$" + std::to_string(key.size()) + "\r\n" + key + "\r\n";
      order.push_back(&key);
    }
    if (!send_text(fd.get(), request)) return fail("send failed");
    for (const std::string* key : order) {
      std::size_t eol;
      while ((eol = pending.find("\r\n")) == std::string::npos) {
        char buf[4096];
        const ssize_t got = ::recv(fd.get(), buf, sizeof buf, 0);
        if (got <= 0) return fail("connection ended or timed out after " + std::to_string(sent) + " INCRs");
        pending.append(buf, static_cast<std::size_t>(got));
      }
      long long value = 0;
      const auto [end, ec] = std::from_chars(pending.data() + 1, pending.data() + eol, value);
      if (pending[0] != ':' || ec != std::errc() || end != pending.data() + eol)
        return fail("not an integer reply: " + pending.substr(0, eol));
      mine[*key].push_back(value);
      pending.erase(0, eol + 2);
    }
  }
  if (!pending.empty()) return fail("extra bytes after the replies: " + pending);
  std::lock_guard lock(results.mutex);
  for (auto& [key, values] : mine) {
    std::vector<long long>& all = results.replies[key];
    all.insert(all.end(), values.begin(), values.end());
  }
}

class RedisOnTwoThreads : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    raise_fd_limit();
    IOMUX_REQUIRE_MODEL(GetParam());
    IOMUX_REQUIRE_TOOL("redis-cli", "redis-tools");
    ASSERT_TRUE(find_model(GetParam())->multi_threaded);
    ServerOptions o;
    o.model = GetParam();
    o.threads = 2;
    server_ = std::make_unique<RunningServer>(std::move(o), resp_protocol(), LogLevel::warn);
  }
  // Nothing here should make the server warn (a protocol error, a failed thread...).
  void TearDown() override {
    if (server_) {
      EXPECT_EQ(server_->log().lines(), std::vector<std::string>{}) << "the server logged warnings";
    }
  }
  std::string get(const std::string& key) const {
    const ToolRun run = run_tool({"redis-cli", "-h", "127.0.0.1", "-p", port_of(server_->endpoint()), "GET", key}, 20s);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return run.out;
  }
  std::unique_ptr<RunningServer> server_;
};

TEST_P(RedisOnTwoThreads, ConcurrentIncrementsFromOurClientsAreExact) {
  const std::vector<std::string> keys{"hits:a", "hits:b", "hits:c", "hits:d"};
  constexpr int kClients = 16;
  constexpr int kPerClient = 2000;  // 500 per key per client
  IncrementResults results;
  {
    std::vector<std::jthread> clients;
    for (int i = 0; i < kClients; ++i)
      clients.emplace_back([&] { increment_keys(server_->endpoint(), keys, kPerClient, results); });
  }
  EXPECT_EQ(results.failures, std::vector<std::string>{});
  constexpr long long kPerKey = static_cast<long long>(kClients) * kPerClient / 4;
  for (const std::string& key : keys) {
    std::vector<long long>& values = results.replies[key];
    std::sort(values.begin(), values.end());
    std::vector<long long> expected(kPerKey);
    for (long long i = 0; i < kPerKey; ++i) expected[static_cast<std::size_t>(i)] = i + 1;
    EXPECT_TRUE(values == expected) << key << ": " << values.size() << " replies, not 1.." << kPerKey << " each once";
    EXPECT_EQ(get(key), std::to_string(kPerKey) + "\n") << key;
  }
}

TEST_P(RedisOnTwoThreads, TwoRedisBenchmarksIncrementingOneKeyCountExactly) {
  IOMUX_REQUIRE_TOOL("redis-benchmark", "redis-tools");
  // 20000 is a multiple of the pipeline depth, so each sends exactly 20000 INCRs (it counts
  // requests a pipeline at a time), all to the key "counter:__rand_int__" (no -r): against
  // Redis 7.0 itself the count is 40000 too.
  const std::vector<std::string> argv{"redis-benchmark",
                                      "-h",
                                      "127.0.0.1",
                                      "-p",
                                      port_of(server_->endpoint()),
                                      "-n",
                                      "20000",
                                      "-c",
                                      "50",
                                      "-t",
                                      "incr",
                                      "-P",
                                      "16",
                                      "-q"};
  Subprocess first(argv);
  Subprocess second(argv);
  ASSERT_TRUE(first.started() && second.started());
  EXPECT_EQ(first.wait_exit(60s), 0) << first.out() << first.err();
  EXPECT_EQ(second.wait_exit(60s), 0) << second.out() << second.err();
  EXPECT_EQ(get("counter:__rand_int__"), "40000\n");
}

INSTANTIATE_TEST_SUITE_P(Models, RedisClients, ::testing::ValuesIn(interop_models()), ModelTestName());
INSTANTIATE_TEST_SUITE_P(Models, RedisBenchmark, ::testing::ValuesIn(load_models()), ModelTestName());
INSTANTIATE_TEST_SUITE_P(Models, RedisOnTwoThreads, ::testing::Values("epoll", "epoll-et", "uring"), ModelTestName());

}  // namespace
}  // namespace iomux::test
