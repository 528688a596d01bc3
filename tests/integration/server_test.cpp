// The suite every model must pass: real servers on 127.0.0.1:0, real TCP, every reply byte
// checked. `blocking` serves one client at a time by design, so its concurrency cases run
// their clients one after another.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include "iomux/models.hpp"
#include "support/test_net.hpp"

namespace iomux::test {
namespace {

class EveryModel : public ModelTest {
 protected:
  TestOptions opts(ProtocolMode mode = ProtocolMode::ack) const {
    TestOptions o = options_for(GetParam());
    o.protocol.mode = mode;
    return o;
  }
};

TEST_P(EveryModel, AnswersEachRequestWithTheTutorialsReply) {
  RunningServer s(opts());
  UniqueFd c = connect_to(s.endpoint());
  ASSERT_TRUE(c);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(send_text(c.get(), "hello " + std::to_string(i)));
    EXPECT_EQ(recv_exact(c.get(), kReply.size()), kReply);
  }
}

TEST_P(EveryModel, LineModeAnswersPipelinedAndSplitLinesInOrder) {
  RunningServer s(opts(ProtocolMode::line));
  UniqueFd c = connect_to(s.endpoint());
  ASSERT_TRUE(c);
  const std::string line_reply = kReply + "\r\n";
  ASSERT_TRUE(send_text(c.get(), "one\ntwo\r\nthr"));
  EXPECT_EQ(recv_exact(c.get(), 2 * line_reply.size()), line_reply + line_reply);
  ASSERT_TRUE(send_text(c.get(), "ee\n"));
  EXPECT_EQ(recv_exact(c.get(), line_reply.size()), line_reply);
}

TEST_P(EveryModel, EchoReturnsLargeBinaryPayloadIntact) {
  RunningServer s(opts(ProtocolMode::echo));
  UniqueFd c = connect_to(s.endpoint());
  ASSERT_TRUE(c);
  std::string payload(64 * 1024, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7 + i / 256);
  ASSERT_TRUE(send_text(c.get(), payload));
  EXPECT_EQ(recv_exact(c.get(), payload.size()), payload);
}

TEST_P(EveryModel, OverlongLineGetsAnErrorAndTheServerKeepsServing) {
  TestOptions o = opts(ProtocolMode::line);
  o.protocol.max_line = 16;
  RunningServer s(std::move(o));
  UniqueFd bad = connect_to(s.endpoint());
  ASSERT_TRUE(bad);
  ASSERT_TRUE(send_text(bad.get(), std::string(100, 'x')));
  std::string err = "ERROR line too long (max 16 bytes)\r\n";
  EXPECT_EQ(recv_exact(bad.get(), err.size()), err);
  EXPECT_TRUE(wait_closed(bad.get()));
  UniqueFd good = connect_to(s.endpoint());
  ASSERT_TRUE(send_text(good.get(), "fine\n"));
  EXPECT_EQ(recv_exact(good.get(), kReply.size() + 2), kReply + "\r\n");
}

TEST_P(EveryModel, ManyClientsEachGetEveryReplyByte) {
  RunningServer s(opts(ProtocolMode::line));
  const int clients = concurrent() ? 200 : 20;
  const int requests = 10;
  const std::string line_reply = kReply + "\r\n";
  std::atomic<int> good{0};
  auto client = [&](int id) {
    UniqueFd c = connect_to(s.endpoint());
    if (!c) return;
    int ok = 0;
    for (int r = 0; r < requests; ++r) {
      if (!send_text(c.get(), "client " + std::to_string(id) + " request " + std::to_string(r) + "\n")) break;
      if (recv_exact(c.get(), line_reply.size()) != line_reply) break;
      ++ok;
    }
    if (ok == requests) ++good;
  };
  if (concurrent()) {
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i) threads.emplace_back(client, i);
    for (auto& t : threads) t.join();
  } else {
    for (int i = 0; i < clients; ++i) client(i);
  }
  EXPECT_EQ(good.load(), clients);
  EXPECT_TRUE(wait_until([&] { return s.server().stats().requests == std::uint64_t(clients * requests); }));
  EXPECT_EQ(s.server().stats().connections_accepted, std::uint64_t(clients));
}

TEST_P(EveryModel, ClientsThatVanishMidRequestDoNotHurtOthers) {
  RunningServer s(opts(ProtocolMode::line));
  for (int i = 0; i < 20; ++i) {
    UniqueFd c = connect_to(s.endpoint());
    ASSERT_TRUE(c);
    ASSERT_TRUE(send_text(c.get(), "half a requ"));
    if (i % 2) set_linger_reset(c.get());  // half of them reset instead of closing cleanly
  }
  UniqueFd c = connect_to(s.endpoint());
  ASSERT_TRUE(c);
  ASSERT_TRUE(send_text(c.get(), "whole\n"));
  EXPECT_EQ(recv_exact(c.get(), kReply.size() + 2), kReply + "\r\n");
  EXPECT_TRUE(wait_until([&] { return s.server().stats().connections_open <= 1; }));
}

TEST_P(EveryModel, StalledClientDoesNotStopTheOthers) {
  if (!concurrent()) GTEST_SKIP() << "blocking serves one client at a time by design";
  RunningServer s(opts(ProtocolMode::line));
  UniqueFd stalled = connect_to(s.endpoint());
  ASSERT_TRUE(send_text(stalled.get(), "never finished"));
  for (int i = 0; i < 3; ++i) {
    UniqueFd c = connect_to(s.endpoint());
    ASSERT_TRUE(send_text(c.get(), "quick\n"));
    EXPECT_EQ(recv_exact(c.get(), kReply.size() + 2), kReply + "\r\n");
  }
}

TEST_P(EveryModel, GracefulStopWithClientsConnectedEndsCleanly) {
  TestOptions o = opts();
  o.drain_timeout = std::chrono::milliseconds(2000);
  RunningServer s(std::move(o));
  std::vector<UniqueFd> clients;
  for (int i = 0; i < (concurrent() ? 5 : 1); ++i) {
    clients.push_back(connect_to(s.endpoint()));
    ASSERT_TRUE(send_text(clients.back().get(), "hi"));
    EXPECT_EQ(recv_exact(clients.back().get(), kReply.size()), kReply);
  }
  EXPECT_TRUE(s.stop_and_join(StopMode::graceful, std::chrono::seconds(8)));
  EXPECT_TRUE(s.error().empty()) << s.error();
  for (auto& c : clients) EXPECT_TRUE(wait_closed(c.get()));
  StatsSnapshot st = s.server().stats();
  EXPECT_EQ(st.requests, clients.size());
  EXPECT_EQ(st.connections_open, 0u);
}

TEST_P(EveryModel, ImmediateStopReturnsPromptly) {
  RunningServer s(opts(ProtocolMode::line));
  UniqueFd c = connect_to(s.endpoint());
  ASSERT_TRUE(send_text(c.get(), "in the middle of"));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(s.stop_and_join(StopMode::immediate, std::chrono::seconds(5)));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
}

TEST_P(EveryModel, StopBeforeRunStillReturns) {
  TestOptions o = opts();
  o.listeners = {Endpoint::loopback_v4(0)};
  o.logger = std::make_shared<Logger>(LogLevel::error);
  auto server = make_test_server(o);
  server->stop(StopMode::graceful);
  std::atomic<bool> done{false};
  std::thread t([&] {
    server->run();
    done = true;
  });
  EXPECT_TRUE(wait_until([&] { return done.load(); }, std::chrono::seconds(5)));
  if (!done) server->stop(StopMode::immediate);
  t.join();
}

TEST_P(EveryModel, LogsThePeersAddressNotItsOwn) {
  RunningServer s(opts());
  UniqueFd c = connect_to(s.endpoint());
  ASSERT_TRUE(send_text(c.get(), "x"));
  ASSERT_EQ(recv_exact(c.get(), kReply.size()), kReply);
  std::string peer = local_endpoint(c.get()).to_string();
  c.reset();
  EXPECT_TRUE(wait_until([&] { return s.log().contains("disconnect " + peer); }));
  EXPECT_TRUE(s.log().contains("connect " + peer));
}

INSTANTIATE_TEST_SUITE_P(Models, EveryModel, ::testing::ValuesIn(all_model_names()), ModelTestName());

// select(2) cannot watch fds >= FD_SETSIZE: the server must refuse those connections cleanly
// and keep serving the ones it has.
TEST(SelectModel, BeyondFdSetSizeRefusesCleanlyAndKeepsServing) {
  ASSERT_GT(raise_fd_limit(), 2 * FD_SETSIZE + 200);
  RunningServer s(options_for("select"), LogLevel::warn);
  std::vector<UniqueFd> clients;
  for (int i = 0; i < FD_SETSIZE + 100; ++i) {
    UniqueFd c = connect_to(s.endpoint());
    ASSERT_TRUE(c) << "connect " << i;
    clients.push_back(std::move(c));
  }
  EXPECT_TRUE(wait_until([&] { return s.server().stats().connections_refused > 0; }));
  EXPECT_TRUE(s.log().contains("FD_SETSIZE"));
  // The first client was accepted with a low fd and must still be served.
  ASSERT_TRUE(send_text(clients.front().get(), "still there?"));
  EXPECT_EQ(recv_exact(clients.front().get(), kReply.size()), kReply);
  // The last ones were refused: closed by the server.
  EXPECT_TRUE(wait_closed(clients.back().get()));
  // Every client ends up served or refused. How many got an fd under FD_SETSIZE depends on how
  // the server's accepts interleaved with the test's connects: both take this process's fds.
  const std::uint64_t all = FD_SETSIZE + 100;
  EXPECT_TRUE(wait_until([&] {
    const StatsSnapshot st = s.server().stats();
    return st.connections_open + st.connections_refused >= all;
  }));
  StatsSnapshot st = s.server().stats();
  EXPECT_EQ(st.connections_open + st.connections_refused, all);
  EXPECT_GT(st.connections_open, 0u);
  EXPECT_LT(st.connections_open, static_cast<std::uint64_t>(FD_SETSIZE));
}

// Under --threads N each select loop has its own fd_sets, but fd numbers are the process's:
// connections numbered FD_SETSIZE or more are refused even though no loop watches 1024 fds.
TEST(SelectModel, UnderThreadsFdSetSizeStaysAPerProcessCeiling) {
  ASSERT_GT(raise_fd_limit(), 2 * FD_SETSIZE + 200);
  TestOptions o = options_for("select");
  o.threads = 2;
  RunningServer s(o, LogLevel::warn);
  // Each client takes an fd of this process too, so 700 of them push the server's past 1024.
  constexpr std::uint64_t kClients = 700;
  std::vector<UniqueFd> clients;
  for (std::uint64_t i = 0; i < kClients; ++i) {
    UniqueFd c = connect_to(s.endpoint());
    ASSERT_TRUE(c) << "connect " << i;
    clients.push_back(std::move(c));
  }
  EXPECT_TRUE(wait_until([&] {
    const StatsSnapshot st = s.server().stats();
    return st.connections_open + st.connections_refused >= kClients;
  }));
  const StatsSnapshot st = s.server().stats();
  EXPECT_EQ(st.connections_open + st.connections_refused, kClients);
  EXPECT_GT(st.connections_refused, 0u);
  EXPECT_TRUE(s.log().contains("FD_SETSIZE"));
  ASSERT_TRUE(send_text(clients.front().get(), "still there?"));
  EXPECT_EQ(recv_exact(clients.front().get(), kReply.size()), kReply);
}

// run_until_signal: the first signal stops the server gracefully, on the helper's thread, and
// the caller's signal mask is what it was. SIGWINCH, whose default action is to be ignored: a
// thread of the test binary that does not block it cannot be killed by it.
TEST(RunUntilSignal, TheFirstSignalStopsTheServerGracefullyAndTheMaskIsRestored) {
  TestOptions o = options_for("epoll");
  LogCapture log;
  o.logger = log.logger();
  std::unique_ptr<Server> server = make_test_server(o);
  std::atomic<int> first_signal{0};
  std::atomic<int> first_mode{-1};
  std::atomic<bool> done{false};
  std::atomic<bool> served{false};
  std::thread sender([&] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGWINCH);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    UniqueFd c = connect_to(server->local_endpoint());
    served = c && send_text(c.get(), "x") && recv_exact(c.get(), kReply.size()) == kReply;
    // Sent to the process until it stops: a signal that came before run_until_signal blocked it
    // in the caller's thread was ignored there. The pause only paces the retries.
    for (int i = 0; i < 500 && !done; ++i) {
      ::kill(::getpid(), SIGWINCH);
      std::this_thread::sleep_for(20ms);
    }
  });
  run_until_signal(*server, {SIGWINCH}, [&](int sig, StopMode mode) {
    int none = 0;
    if (first_signal.compare_exchange_strong(none, sig)) first_mode = static_cast<int>(mode);
  });
  done = true;
  sender.join();
  EXPECT_TRUE(served);
  EXPECT_EQ(first_signal, SIGWINCH);
  EXPECT_EQ(first_mode, static_cast<int>(StopMode::graceful));
  sigset_t now;
  pthread_sigmask(SIG_BLOCK, nullptr, &now);
  EXPECT_FALSE(sigismember(&now, SIGWINCH)) << "the caller's signal mask was not restored";
}

}  // namespace
}  // namespace iomux::test
