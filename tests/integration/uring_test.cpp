// The uring model (io_uring completions) behaves like every other model: same replies, same
// logs and counters, back-pressure, graceful and immediate stops, --threads. Every test is
// skipped, not passed, where the kernel or the sandbox refuses io_uring.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "iomux/models.hpp"
#include "support/test_net.hpp"

namespace iomux::test {
namespace {

#define SKIP_WITHOUT_URING()                                                     \
  do {                                                                           \
    const Availability a = probe_model("uring");                                 \
    if (!a.available) GTEST_SKIP() << "io_uring unavailable here: " << a.reason; \
  } while (false)

TestOptions uring_options(ProtocolMode mode = ProtocolMode::ack) {
  TestOptions o = options_for("uring");
  o.protocol.mode = mode;
  return o;
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(gen());
  return s;
}

std::uint16_t local_port(int fd) {
  return local_endpoint(fd).port();
}

// Writes a known stream on a non-blocking socket until the server has stopped taking it for
// 300 ms (back-pressure: it paused reading) or 64 MiB went out. Returns what was written.
std::string write_until_refused(int fd, unsigned seed) {
  set_non_blocking(fd);
  const std::string block = random_bytes(64 * 1024, seed);
  std::string written;
  auto quiet_since = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - quiet_since < 300ms && written.size() < (64u << 20)) {
    ssize_t n = ::send(fd, block.data(), block.size(), MSG_NOSIGNAL);
    if (n > 0) {
      written.append(block, 0, static_cast<std::size_t>(n));
      quiet_since = std::chrono::steady_clock::now();
    } else {
      std::this_thread::sleep_for(1ms);
    }
  }
  set_non_blocking(fd, false);
  return written;
}

// Every test runs twice: with the recvs this kernel gets (multishot with a byte limit on
// Linux 6.16+), and with the one-shot recvs of older kernels, forced by IOMUX_URING_RECV.
class Uring : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { ::setenv("IOMUX_URING_RECV", GetParam(), 1); }
  void TearDown() override { ::unsetenv("IOMUX_URING_RECV"); }
};

INSTANTIATE_TEST_SUITE_P(RecvMode, Uring, ::testing::Values("auto", "oneshot"),
                         [](const auto& info) { return std::string(info.param); });

TEST_P(Uring, AckAnswersEachChunkWithTheReply) {
  SKIP_WITHOUT_URING();
  RunningServer server(uring_options());
  UniqueFd c = connect_to(server.endpoint());
  ASSERT_TRUE(c);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(send_text(c.get(), "hello " + std::to_string(i)));
    EXPECT_EQ(recv_exact(c.get(), kReply.size()), kReply);
  }
  EXPECT_TRUE(wait_until([&] { return server.server().stats().requests == 5; }));
}

TEST_P(Uring, LineModeAnswersPipelinedLinesSplitAcrossSends) {
  SKIP_WITHOUT_URING();
  RunningServer server(uring_options(ProtocolMode::line));
  UniqueFd c = connect_to(server.endpoint());
  ASSERT_TRUE(c);
  // Five lines, cut at awkward places: mid-line, between '\r' and '\n', several per send.
  for (std::string_view part : {"one\ntw", "o\r", "\nthree\nfo", "ur\nfive", "\n"}) {
    ASSERT_TRUE(send_text(c.get(), part));
    std::this_thread::sleep_for(5ms);  // let each part arrive as its own chunk
  }
  std::string expected;
  for (int i = 0; i < 5; ++i) expected += kLineReply;
  EXPECT_EQ(recv_exact(c.get(), expected.size()), expected);
  EXPECT_TRUE(wait_until([&] { return server.server().stats().requests == 5; }));
}

TEST_P(Uring, LineLongerThanMaxLineIsAnsweredWithAnErrorAndClosed) {
  SKIP_WITHOUT_URING();
  TestOptions o = uring_options(ProtocolMode::line);
  o.protocol.max_line = 16;
  RunningServer server(o);
  UniqueFd c = connect_to(server.endpoint());
  ASSERT_TRUE(c);
  ASSERT_TRUE(send_text(c.get(), "ok\n" + std::string(100, 'x')));
  const std::string expected = kLineReply + "ERROR line too long (max 16 bytes)\r\n";
  EXPECT_EQ(recv_exact(c.get(), expected.size()), expected);
  EXPECT_TRUE(wait_closed(c.get()));
}

TEST_P(Uring, EchoReturnsEveryByteOfEverySize) {
  SKIP_WITHOUT_URING();
  RunningServer server(uring_options(ProtocolMode::echo));
  UniqueFd c = connect_to(server.endpoint());
  ASSERT_TRUE(c);
  unsigned seed = 1;
  for (std::size_t size : {1u, 100u, 4095u, 4096u, 4097u, 65536u, 300000u}) {
    const std::string data = random_bytes(size, seed++);
    ASSERT_TRUE(send_text(c.get(), data));
    const std::string back = recv_exact(c.get(), size);
    ASSERT_EQ(back.size(), size);
    EXPECT_TRUE(back == data) << "echo of " << size << " bytes differs";
  }
}

TEST_P(Uring, EchoOf64KiBFromManyClientsAtOnce) {
  SKIP_WITHOUT_URING();
  RunningServer server(uring_options(ProtocolMode::echo));
  constexpr int kClients = 16;
  std::vector<UniqueFd> fds;
  std::vector<std::string> data;
  for (int i = 0; i < kClients; ++i) {
    fds.push_back(connect_to(server.endpoint()));
    ASSERT_TRUE(fds.back());
    data.push_back(random_bytes(64 * 1024, 100 + i));
  }
  // Writers on their own threads: a client that wrote 64 KiB without reading could block.
  std::vector<std::thread> writers;
  for (int i = 0; i < kClients; ++i) writers.emplace_back([&, i] { send_text(fds[i].get(), data[i]); });
  for (int i = 0; i < kClients; ++i) EXPECT_TRUE(recv_exact(fds[i].get(), data[i].size()) == data[i]) << i;
  for (auto& w : writers) w.join();
}

// When the ring has no free SQE (Ring::sqe() gives none: here every third call, by
// IOMUX_URING_REFUSE_SQE), each request that could not be made is made after the batch: recvs,
// sends, the cancels of a close, the wake-up read. Before, a full ring threw out of the
// request path and stopped the loop. Every byte still arrives, and a graceful stop still ends.
TEST_P(Uring, RequestsThatFindNoFreeSqeAreMadeAfterTheBatch) {
  SKIP_WITHOUT_URING();
  ::setenv("IOMUX_URING_REFUSE_SQE", "3", 1);
  RunningServer server(uring_options(ProtocolMode::echo));
  ::unsetenv("IOMUX_URING_REFUSE_SQE");
  constexpr int kClients = 8;
  std::vector<UniqueFd> fds;
  std::vector<std::string> data;
  for (int i = 0; i < kClients; ++i) {
    fds.push_back(connect_to(server.endpoint()));
    ASSERT_TRUE(fds.back());
    data.push_back(random_bytes(70 * 1024 + i, 200 + i));
  }
  std::vector<std::thread> writers;
  for (int i = 0; i < kClients; ++i) writers.emplace_back([&, i] { send_text(fds[i].get(), data[i]); });
  for (int i = 0; i < kClients; ++i) EXPECT_TRUE(recv_exact(fds[i].get(), data[i].size()) == data[i]) << i;
  for (auto& w : writers) w.join();
  for (int round = 0; round < 20; ++round) {  // small requests: many recvs and sends re-made
    const std::string hello = "hello " + std::to_string(round);
    ASSERT_TRUE(send_text(fds[0].get(), hello));
    ASSERT_EQ(recv_exact(fds[0].get(), hello.size()), hello);
  }
  fds.pop_back();  // a close: its recv's cancel may be one of the refused
  EXPECT_TRUE(wait_until([&] { return server.server().stats().connections_open == kClients - 1; }));
  EXPECT_TRUE(server.stop_and_join(StopMode::graceful, 10s)) << "the graceful stop did not end";
}

// 256 clients x 64 KiB arriving at once need 4096 receive buffers of 4 KiB, while a ring
// starts with 1024: recvs end with -ENOBUFS and must be re-armed (and the pool may grow).
TEST_P(Uring, RunningOutOfReceiveBuffersLosesNothing) {
  SKIP_WITHOUT_URING();
  RunningServer server(uring_options(ProtocolMode::echo), LogLevel::debug);
  constexpr int kClients = 256;
  const std::string data = random_bytes(64 * 1024, 5);
  std::vector<UniqueFd> fds;
  for (int i = 0; i < kClients; ++i) {
    fds.push_back(connect_to(server.endpoint()));
    ASSERT_TRUE(fds.back()) << "client " << i;
  }
  for (auto& fd : fds) ASSERT_TRUE(send_text(fd.get(), data));  // 64 KiB fits the socket buffers
  for (int i = 0; i < kClients; ++i) ASSERT_TRUE(recv_exact(fds[i].get(), data.size()) == data) << "client " << i;
  if (server.log().contains("receive buffers grown")) std::cout << "(the buffer pool grew)\n";
}

TEST_P(Uring, TwoHundredClientsTwentyRequestsEach) {
  SKIP_WITHOUT_URING();
  RunningServer server(uring_options(ProtocolMode::echo));
  constexpr int kClients = 200;
  constexpr int kRounds = 20;
  std::vector<UniqueFd> fds;
  for (int i = 0; i < kClients; ++i) {
    fds.push_back(connect_to(server.endpoint()));
    ASSERT_TRUE(fds.back()) << "client " << i;
  }
  // Every client has a request in flight at once; each reply must be that client's own.
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kClients; ++i)
      ASSERT_TRUE(send_text(fds[i].get(), "client " + std::to_string(i) + " round " + std::to_string(round)));
    for (int i = 0; i < kClients; ++i) {
      const std::string want = "client " + std::to_string(i) + " round " + std::to_string(round);
      ASSERT_EQ(recv_exact(fds[i].get(), want.size()), want);
    }
  }
  EXPECT_TRUE(wait_until([&] { return server.server().stats().requests == kClients * kRounds; }));
  EXPECT_EQ(server.server().stats().connections_open, static_cast<std::uint64_t>(kClients));
  fds.clear();
  EXPECT_TRUE(wait_until([&] { return server.server().stats().connections_open == 0; }));
}

TEST_P(Uring, DisconnectsAndResetsMidRequestLeaveTheServerServing) {
  SKIP_WITHOUT_URING();
  RunningServer server(uring_options(ProtocolMode::line));
  {
    UniqueFd c = connect_to(server.endpoint());
    ASSERT_TRUE(send_text(c.get(), "half a li"));  // then gone without the '\n'
  }
  for (int i = 0; i < 100; ++i) {
    UniqueFd c = connect_to(server.endpoint());
    ASSERT_TRUE(c);
    // Some reset with a request in flight, some with its reply unread, some mid-line.
    ASSERT_TRUE(send_text(c.get(), i % 3 == 0 ? "partial" : "request\n"));
    if (i % 3 == 1) std::this_thread::sleep_for(1ms);
    set_linger_reset(c.get());
  }
  EXPECT_TRUE(wait_until([&] { return server.server().stats().connections_open == 0; }));
  UniqueFd c = connect_to(server.endpoint());
  ASSERT_TRUE(c);
  ASSERT_TRUE(send_text(c.get(), "still there?\n"));
  EXPECT_EQ(recv_exact(c.get(), kLineReply.size()), kLineReply);
  // (A reply counts as pending until the server has seen its send complete.)
  EXPECT_TRUE(wait_until([&] { return server.server().stats().bytes_pending == 0; }));
}

TEST_P(Uring, BackPressureBoundsOutputOfAPeerThatDoesNotRead) {
  SKIP_WITHOUT_URING();
  TestOptions o = uring_options(ProtocolMode::echo);
  o.max_pending = 1 << 20;  // the default
  RunningServer server(o);
  UniqueFd hog = connect_to(server.endpoint());
  ASSERT_TRUE(hog);
  const std::string written = write_until_refused(hog.get(), 7);
  EXPECT_TRUE(wait_until([&] { return server.server().stats().connections_paused == 1; }));
  const StatsSnapshot s = server.server().stats();
  EXPECT_LT(s.bytes_pending, 2 * o.max_pending);
  // Every recv is bounded (a byte limit, or one buffer at a time), so the overshoot is at most
  // about one 16 KiB buffer; an unbounded multishot recv overshot by up to 1.4 MiB
  // (docs/models.md, uring: "Every recv is bounded").
  EXPECT_LE(s.peak_pending_per_connection, o.max_pending + 64 * 1024);
  EXPECT_GE(s.bytes_pending, o.max_pending / 2);

  // Others are still served meanwhile.
  UniqueFd other = connect_to(server.endpoint());
  ASSERT_TRUE(other);
  ASSERT_TRUE(send_text(other.get(), "are you there"));
  EXPECT_EQ(recv_exact(other.get(), 13), "are you there");

  // Once the hog reads, everything it wrote comes back, in order, and reading resumes.
  const std::string back = recv_exact(hog.get(), written.size());
  ASSERT_EQ(back.size(), written.size());
  EXPECT_TRUE(back == written);
  EXPECT_TRUE(wait_until([&] { return server.server().stats().connections_paused == 0; }));
  EXPECT_LT(server.server().stats().peak_pending_per_connection, 2 * o.max_pending);
}

TEST_P(Uring, GracefulStopFlushesOwedRepliesThenCloses) {
  SKIP_WITHOUT_URING();
  TestOptions o = uring_options(ProtocolMode::echo);
  o.max_pending = 64 << 20;  // no back-pressure here: the server reads everything
  RunningServer server(o);
  UniqueFd idle = connect_to(server.endpoint());
  UniqueFd owed = connect_to(server.endpoint());
  ASSERT_TRUE(idle && owed);
  // `owed` sends 24 MiB and reads nothing yet: more than the sockets hold, so part of the
  // echo is still owed by the server when it is told to stop.
  const std::string data = random_bytes(24 << 20, 9);
  std::thread writer([&] { send_text(owed.get(), data); });
  EXPECT_TRUE(wait_until([&] { return server.server().stats().bytes_in == data.size(); }));
  writer.join();
  EXPECT_GT(server.server().stats().bytes_pending, 0u);
  server.server().stop(StopMode::graceful);
  EXPECT_TRUE(wait_closed(idle.get()));
  // New connections are refused from now on (the listener is closed).
  EXPECT_TRUE(wait_until([&] {
    std::error_code ec;
    UniqueFd late = connect_tcp(server.endpoint(), 200ms, ec);
    return !late || wait_closed(late.get());
  }));
  // Everything owed comes back, in order, then EOF.
  EXPECT_TRUE(recv_exact(owed.get(), data.size()) == data);
  EXPECT_TRUE(wait_closed(owed.get()));
  EXPECT_TRUE(server.stop_and_join(StopMode::graceful));
  EXPECT_TRUE(server.log().contains("server shutting down"));
}

TEST_P(Uring, DrainTimeoutBoundsAGracefulStop) {
  SKIP_WITHOUT_URING();
  TestOptions o = uring_options(ProtocolMode::echo);
  o.drain_timeout = 300ms;
  o.max_pending = 64 * 1024;
  RunningServer server(o);
  UniqueFd hog = connect_to(server.endpoint());
  write_until_refused(hog.get(), 8);
  EXPECT_TRUE(wait_until([&] { return server.server().stats().connections_paused == 1; }));
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(server.stop_and_join(StopMode::graceful, 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_TRUE(server.log().contains("drain timeout"));
}

TEST_P(Uring, ImmediateStopClosesEverythingAtOnce) {
  SKIP_WITHOUT_URING();
  RunningServer server(uring_options(ProtocolMode::echo));
  std::vector<UniqueFd> fds;
  for (int i = 0; i < 10; ++i) fds.push_back(connect_to(server.endpoint()));
  ASSERT_TRUE(send_text(fds[0].get(), "x"));
  EXPECT_TRUE(wait_until([&] { return server.server().stats().connections_open == 10; }));
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(server.stop_and_join(StopMode::immediate, 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  for (auto& fd : fds) EXPECT_TRUE(wait_closed(fd.get()));
  EXPECT_EQ(server.server().stats().connections_open, 0u);
}

TEST_P(Uring, StopBeforeRunReturnsAtOnce) {
  SKIP_WITHOUT_URING();
  TestOptions o = uring_options();
  o.logger = std::make_shared<Logger>(LogLevel::error);
  auto server = make_test_server(o);
  server->stop(StopMode::graceful);
  std::atomic<bool> done{false};
  std::thread t([&] {
    server->run();
    done = true;
  });
  EXPECT_TRUE(wait_until([&] { return done.load(); }, 3s));
  t.join();
}

TEST_P(Uring, TwoThreadsShareThePortAndServeEveryone) {
  SKIP_WITHOUT_URING();
  TestOptions o = uring_options(ProtocolMode::echo);
  o.threads = 2;
  RunningServer server(o);
  EXPECT_TRUE(server.log().contains("(model uring, 2 threads)"));
  std::vector<UniqueFd> fds;
  for (int i = 0; i < 60; ++i) {
    fds.push_back(connect_to(server.endpoint()));
    ASSERT_TRUE(fds.back());
  }
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(send_text(fds[i].get(), "n" + std::to_string(i)));
  for (int i = 0; i < 60; ++i)
    EXPECT_EQ(recv_exact(fds[i].get(), 1 + std::to_string(i).size()), "n" + std::to_string(i));
  EXPECT_EQ(server.server().stats().connections_accepted, 60u);
  ASSERT_TRUE(server.stop_and_join(StopMode::graceful));
}

TEST_P(Uring, LogsListeningConnectAndDisconnectLikeTheReactor) {
  SKIP_WITHOUT_URING();
  RunningServer server(uring_options());
  const std::string port = std::to_string(server.endpoint().port());
  EXPECT_TRUE(server.log().contains("listening on 127.0.0.1:" + port + " (model uring, 1 thread)"));
  std::uint16_t client_port;
  {
    UniqueFd c = connect_to(server.endpoint());
    client_port = local_port(c.get());
    ASSERT_TRUE(send_text(c.get(), "hi"));
    EXPECT_EQ(recv_exact(c.get(), kReply.size()), kReply);
  }
  const std::string peer = "127.0.0.1:" + std::to_string(client_port);
  EXPECT_TRUE(
      wait_until([&] { return server.log().contains("disconnect " + peer + ": closed by peer (1 requests)"); }));
  EXPECT_TRUE(server.log().contains("connect " + peer + " (fd "));
  const std::regex listening(R"(listening on (\S+):(\d+))");
  bool matched = false;
  for (const auto& line : server.log().lines()) matched |= std::regex_search(line, listening);
  EXPECT_TRUE(matched);
}

TEST_P(Uring, MaxConnectionsRefusesTheExtraOnes) {
  SKIP_WITHOUT_URING();
  TestOptions o = uring_options();
  o.max_connections = 2;
  RunningServer server(o);
  UniqueFd a = connect_to(server.endpoint());
  UniqueFd b = connect_to(server.endpoint());
  EXPECT_TRUE(wait_until([&] { return server.server().stats().connections_open == 2; }));
  UniqueFd c = connect_to(server.endpoint());
  ASSERT_TRUE(c);
  EXPECT_TRUE(wait_closed(c.get()));
  EXPECT_EQ(server.server().stats().connections_refused, 1u);
  ASSERT_TRUE(send_text(a.get(), "x"));
  EXPECT_EQ(recv_exact(a.get(), kReply.size()), kReply);
}

TEST_P(Uring, IdleTimeoutClosesSilentConnections) {
  SKIP_WITHOUT_URING();
  TestOptions o = uring_options();
  o.idle_timeout = 150ms;
  RunningServer server(o);
  UniqueFd quiet = connect_to(server.endpoint());
  UniqueFd chatty = connect_to(server.endpoint());
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 6; ++i) {  // 300 ms of activity, a request every 50 ms
    ASSERT_TRUE(send_text(chatty.get(), "ping"));
    EXPECT_EQ(recv_exact(chatty.get(), kReply.size()), kReply);
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(wait_closed(quiet.get()));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
  EXPECT_EQ(server.server().stats().connections_timed_out, 1u);
  EXPECT_TRUE(server.log().contains("(idle_timeout)"));
}

}  // namespace
}  // namespace iomux::test
