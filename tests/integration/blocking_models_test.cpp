// The models of the tutorial's sections 2-4 (blocking, threaded, nonblocking, timeout) as real
// servers on 127.0.0.1: protocol round trips, concurrency, stop() in both modes, and the
// limits (--max-connections, --idle-timeout, --max-pending, --max-line).
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "support/test_net.hpp"
#include "support/thread_state.hpp"

namespace iomux::test {
namespace {

const std::string kLineOk = std::string(kDefaultReply) + "\r\n";

TestOptions make_options(const std::string& model, ProtocolMode mode = ProtocolMode::ack) {
  TestOptions o = options_for(model);
  o.protocol.mode = mode;
  return o;
}

// Every byte value, in a pattern that does not repeat with any short period.
std::string pattern_bytes(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 257) & 0xff);
  return s;
}

// One line request and its reply on a connected socket; "" on failure.
std::string line_round_trip(int fd, const std::string& line) {
  if (!send_text(fd, line + "\n")) return {};
  return recv_exact(fd, kLineOk.size());
}

// Runs `clients` clients doing `requests` line round trips each, on threads (or one after the
// other); returns the number of clients that saw anything wrong.
int run_line_clients(const Endpoint& ep, int clients, int requests, bool concurrent) {
  std::atomic<int> failures{0};
  auto client = [&](int id) {
    UniqueFd fd = connect_to(ep);
    if (!fd) {
      ++failures;
      return;
    }
    for (int r = 0; r < requests; ++r) {
      if (line_round_trip(fd.get(), "client " + std::to_string(id) + " request " + std::to_string(r)) != kLineOk) {
        ++failures;
        return;
      }
    }
  };
  if (!concurrent) {
    for (int i = 0; i < clients; ++i) client(i);
    return failures;
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) threads.emplace_back(client, i);
  for (auto& t : threads) t.join();
  return failures;
}

// A client whose receive buffer is as small as the kernel allows, set before connect() so the
// window it advertises is small too: the server's replies back up after a few KiB.
UniqueFd connect_slow_reader(const Endpoint& ep) {
  UniqueFd fd(::socket(ep.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  int small = 4096;
  if (!fd || ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small) != 0 ||
      ::connect(fd.get(), ep.sockaddr_ptr(), ep.sockaddr_len()) != 0)
    return {};
  set_recv_timeout(fd.get(), 5s);
  set_send_timeout(fd.get(), 5s);
  return fd;
}

bool serves_concurrently(const std::string& model) {
  return model != "blocking";
}

// ---- every model ----------------------------------------------------------------------------

class SimpleModels : public ::testing::TestWithParam<std::string> {};

TEST_P(SimpleModels, LogsListeningLineWithRealPort) {
  RunningServer s(make_options(GetParam()));
  const std::string want = "listening on 127.0.0.1:" + std::to_string(s.endpoint().port()) + " (model " + GetParam();
  EXPECT_TRUE(wait_until([&] { return s.log().contains(want); })) << want;
  const std::regex tool_pattern(R"(listening on (\S+):(\d+))");
  bool parsed = false;
  for (const auto& line : s.log().lines()) {
    std::smatch m;
    if (std::regex_search(line, m, tool_pattern) && m[2] == std::to_string(s.endpoint().port())) parsed = true;
  }
  EXPECT_TRUE(parsed);
}

TEST_P(SimpleModels, AckAnswersEveryChunkWithTheReplyText) {
  RunningServer s(make_options(GetParam()));
  UniqueFd fd = connect_to(s.endpoint());
  ASSERT_TRUE(fd);
  for (const char* request : {"hello", "x", "a longer request with spaces"}) {
    ASSERT_TRUE(send_text(fd.get(), request));
    EXPECT_EQ(recv_exact(fd.get(), kReply.size()), kReply) << request;
  }
  fd.reset();
  ASSERT_TRUE(wait_until([&] { return s.server().stats().connections_open == 0; }));
  const StatsSnapshot st = s.server().stats();
  EXPECT_EQ(st.requests, 3u);
  EXPECT_EQ(st.bytes_in, 5u + 1u + 28u);
  EXPECT_EQ(st.bytes_out, 3 * kReply.size());
  EXPECT_EQ(st.connections_accepted, 1u);
}

TEST_P(SimpleModels, AckUsesTheConfiguredReply) {
  TestOptions o = make_options(GetParam());
  o.protocol.reply = "pong";
  RunningServer s(std::move(o));
  UniqueFd fd = connect_to(s.endpoint());
  ASSERT_TRUE(fd);
  ASSERT_TRUE(send_text(fd.get(), "ping"));
  EXPECT_EQ(recv_exact(fd.get(), 4), "pong");
}

TEST_P(SimpleModels, LineModeAnswersPipelinedAndSplitLinesInOrder) {
  TestOptions o = make_options(GetParam(), ProtocolMode::line);
  o.protocol.reply = "OK";
  RunningServer s(std::move(o));
  UniqueFd fd = connect_to(s.endpoint());
  ASSERT_TRUE(fd);
  // Three lines in one write, the third unfinished: two replies now...
  const std::string first = "first\nsecond\r\nthi";
  ASSERT_TRUE(send_text(fd.get(), first));
  EXPECT_EQ(recv_exact(fd.get(), 8), "OK\r\nOK\r\n");
  // ...and the carried "thi" completes across three more reads: each byte goes out once the
  // server has read everything before it (its bytes_in counts what its reads returned).
  std::uint64_t sent = first.size();
  for (const char* part : {"r", "d", "\n"}) {
    ASSERT_TRUE(wait_until([&] { return s.server().stats().bytes_in == sent; }));
    ASSERT_TRUE(send_text(fd.get(), part));
    ++sent;
  }
  EXPECT_EQ(recv_exact(fd.get(), 4), "OK\r\n");
  fd.reset();
  ASSERT_TRUE(wait_until([&] { return s.server().stats().connections_open == 0; }));
  EXPECT_EQ(s.server().stats().requests, 3u);
}

TEST_P(SimpleModels, LineLongerThanMaxLineGetsAnErrorAndIsClosed) {
  TestOptions o = make_options(GetParam(), ProtocolMode::line);
  o.protocol.max_line = 8;
  RunningServer s(std::move(o));
  UniqueFd fd = connect_to(s.endpoint());
  ASSERT_TRUE(fd);
  EXPECT_EQ(line_round_trip(fd.get(), "short"), kLineOk);
  ASSERT_TRUE(send_text(fd.get(), "far too long for eight\n"));
  const std::string error = "ERROR line too long (max 8 bytes)\r\n";
  EXPECT_EQ(recv_exact(fd.get(), error.size()), error);
  EXPECT_TRUE(wait_closed(fd.get()));
}

TEST_P(SimpleModels, EchoReturnsEveryByteOfALargePayload) {
  RunningServer s(make_options(GetParam(), ProtocolMode::echo));
  UniqueFd fd = connect_to(s.endpoint());
  ASSERT_TRUE(fd);
  const std::string payload = pattern_bytes(3 * 1024 * 1024 + 17);
  std::thread sender([&] { send_text(fd.get(), payload); });
  const std::string got = recv_exact(fd.get(), payload.size());
  sender.join();
  ASSERT_EQ(got.size(), payload.size());
  EXPECT_TRUE(got == payload);
  EXPECT_EQ(s.server().stats().bytes_in, payload.size());
  EXPECT_TRUE(wait_until([&] { return s.server().stats().bytes_out == payload.size(); }));
}

TEST_P(SimpleModels, FiftyClientsTwentyRequestsEach) {
  RunningServer s(make_options(GetParam(), ProtocolMode::line));
  EXPECT_EQ(run_line_clients(s.endpoint(), 50, 20, serves_concurrently(GetParam())), 0);
  ASSERT_TRUE(wait_until([&] { return s.server().stats().connections_open == 0; }));
  const StatsSnapshot st = s.server().stats();
  EXPECT_EQ(st.connections_accepted, 50u);
  EXPECT_EQ(st.requests, 1000u);
  EXPECT_EQ(st.bytes_out, 1000u * kLineOk.size());
  EXPECT_EQ(st.bytes_pending, 0u);
}

TEST_P(SimpleModels, StopBeforeRunMakesRunReturn) {
  TestOptions o = make_options(GetParam());
  o.logger = std::make_shared<Logger>(LogLevel::error);
  auto server = make_test_server(o);
  server->stop(StopMode::graceful);
  const auto start = std::chrono::steady_clock::now();
  server->run();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST_P(SimpleModels, GracefulStopWithConnectedClientsReturnsAndCountsRight) {
  TestOptions o = make_options(GetParam(), ProtocolMode::line);
  o.drain_timeout = 2s;
  RunningServer s(std::move(o));
  // The blocking model serves one client at a time: one connection is accepted, the second
  // waits in the backlog and is never accepted.
  const int served = serves_concurrently(GetParam()) ? 5 : 1;
  std::vector<UniqueFd> clients;
  for (int i = 0; i < served; ++i) {
    clients.push_back(connect_to(s.endpoint()));
    ASSERT_TRUE(clients.back());
    ASSERT_EQ(line_round_trip(clients.back().get(), "one"), kLineOk);
    ASSERT_EQ(line_round_trip(clients.back().get(), "two"), kLineOk);
  }
  UniqueFd waiting = connect_to(s.endpoint());
  ASSERT_TRUE(waiting);
  if (serves_concurrently(GetParam())) {
    ASSERT_TRUE(
        wait_until([&] { return s.server().stats().connections_open == static_cast<std::uint64_t>(served + 1); }));
  }

  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(s.stop_and_join(StopMode::graceful, 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms) << "idle clients owe nothing: no need to wait";
  for (auto& c : clients) EXPECT_TRUE(wait_closed(c.get()));
  EXPECT_TRUE(wait_closed(waiting.get()));

  const StatsSnapshot st = s.server().stats();
  const auto n = static_cast<std::uint64_t>(serves_concurrently(GetParam()) ? served + 1 : served);
  EXPECT_EQ(st.connections_open, 0u);
  EXPECT_EQ(st.connections_accepted, n);
  EXPECT_EQ(st.requests, 2u * served);
  EXPECT_EQ(st.bytes_in, 8u * served);  // "one\n" + "two\n"
  EXPECT_EQ(st.bytes_out, 2u * served * kLineOk.size());
  EXPECT_EQ(st.bytes_pending, 0u);
  EXPECT_TRUE(s.log().contains("server shutting down"));
}

TEST_P(SimpleModels, GracefulStopGivesUpOnAClientThatNeverReadsAfterDrainTimeout) {
  TestOptions o = make_options(GetParam(), ProtocolMode::echo);
  o.drain_timeout = 300ms;
  RunningServer s(std::move(o));
  UniqueFd fd = connect_slow_reader(s.endpoint());
  ASSERT_TRUE(fd);
  // Echo more than the socket buffers hold and never read: the server ends up blocked in
  // send() (blocking, threaded), or paused with pending output (nonblocking, timeout).
  // The polling models hold what the socket does not take in the connection's pending
  // buffer, where the test can see it; the blocking ones sit in send() instead.
  const bool holds_pending = GetParam() == "nonblocking" || GetParam() == "timeout";
  std::atomic<pid_t> sender_tid{0};
  std::thread sender([&] {
    sender_tid = ::gettid();
    send_text(fd.get(), pattern_bytes(16 * 1024 * 1024));
  });
  const bool owing = wait_until(
      [&] {
        const StatsSnapshot st = s.server().stats();
        return st.bytes_in > 64u * 1024 && (!holds_pending || st.bytes_pending > 0);
      },
      10s);
  // A blocking model owes what it is trying to send: wait until its thread sleeps in that send
  // (the test's own sender sleeps in one too, and does not count).
  const bool stuck_in_send = holds_pending || wait_for_thread_sleeping_in({SYS_sendto, SYS_sendmsg, SYS_writev},
                                                                          {::gettid(), sender_tid.load()}, 10s)
                                                  .has_value();
  const auto start = std::chrono::steady_clock::now();
  const bool stopped = s.stop_and_join(StopMode::graceful, 5s);
  const auto took = std::chrono::steady_clock::now() - start;
  ::shutdown(fd.get(), SHUT_RDWR);  // ends the sender's send(), if the server's close did not
  sender.join();
  ASSERT_TRUE(owing);
  ASSERT_TRUE(stuck_in_send) << "no server thread sleeps in a send";
  ASSERT_TRUE(stopped);
  if (holds_pending) {
    EXPECT_GE(took, 250ms) << "a graceful stop waits for owed replies";
  }
  EXPECT_LT(took, 2s) << "but no longer than --drain-timeout";
  EXPECT_EQ(s.server().stats().connections_open, 0u);
}

TEST_P(SimpleModels, ImmediateStopWithAClientMidRequestReturnsPromptly) {
  RunningServer s(make_options(GetParam(), ProtocolMode::line));
  UniqueFd fd = connect_to(s.endpoint());
  ASSERT_TRUE(fd);
  ASSERT_EQ(line_round_trip(fd.get(), "done"), kLineOk);
  ASSERT_TRUE(send_text(fd.get(), "half a li"));  // the server now waits for the rest
  UniqueFd waiting = connect_to(s.endpoint());    // (blocking: still in the backlog)
  ASSERT_TRUE(waiting);
  // The state under test: the half line is read (the server waits for the rest), and a model
  // that serves clients at once has taken the second client too.
  ASSERT_TRUE(wait_until([&] {
    const StatsSnapshot st = s.server().stats();
    const bool accepted = !serves_concurrently(GetParam()) || st.connections_accepted == 2;
    return st.bytes_in == 5 + 9 /* "done\n", "half a li" */ && accepted;
  }));
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(s.stop_and_join(StopMode::immediate, 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
  EXPECT_TRUE(wait_closed(fd.get()));
  EXPECT_TRUE(wait_closed(waiting.get()));
  EXPECT_EQ(s.server().stats().connections_open, 0u);
  EXPECT_EQ(s.server().stats().requests, 1u);
}

TEST_P(SimpleModels, IdleTimeoutClosesASilentClient) {
  TestOptions o = make_options(GetParam());
  o.idle_timeout = 200ms;
  RunningServer s(std::move(o));
  UniqueFd fd = connect_to(s.endpoint());
  ASSERT_TRUE(fd);
  ASSERT_TRUE(send_text(fd.get(), "hi"));
  ASSERT_EQ(recv_exact(fd.get(), kReply.size()), kReply);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(wait_closed(fd.get()));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
  ASSERT_TRUE(wait_until([&] { return s.server().stats().connections_open == 0; }));
  EXPECT_EQ(s.server().stats().connections_timed_out, 1u);
  EXPECT_TRUE(s.log().contains("(idle_timeout)"));
}

INSTANTIATE_TEST_SUITE_P(Models, SimpleModels, ::testing::Values("blocking", "threaded", "nonblocking", "timeout"),
                         [](const auto& info) { return info.param; });

// ---- models that serve clients at once ------------------------------------------------------

class ConcurrentModels : public ::testing::TestWithParam<std::string> {};

TEST_P(ConcurrentModels, AClientStalledMidLineDoesNotHoldTheOthers) {
  RunningServer s(make_options(GetParam(), ProtocolMode::line));
  UniqueFd stalled = connect_to(s.endpoint());
  ASSERT_TRUE(stalled);
  const std::string unfinished = "an unfinished li";
  ASSERT_TRUE(send_text(stalled.get(), unfinished));
  // The others come once the server holds the unfinished line (it has read it).
  ASSERT_TRUE(wait_until([&] { return s.server().stats().bytes_in == unfinished.size(); }));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(run_line_clients(s.endpoint(), 5, 10, true), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  // The stalled line was carried all along and is answered once it is finished.
  ASSERT_TRUE(send_text(stalled.get(), "ne\n"));
  EXPECT_EQ(recv_exact(stalled.get(), kLineOk.size()), kLineOk);
  EXPECT_EQ(s.server().stats().requests, 51u);
}

INSTANTIATE_TEST_SUITE_P(Models, ConcurrentModels, ::testing::Values("threaded", "nonblocking", "timeout"),
                         [](const auto& info) { return info.param; });

// ---- threaded: the thread cap ---------------------------------------------------------------

TEST(ThreadedModel, MaxConnectionsRefusesTheClientOverTheCap) {
  TestOptions o = make_options("threaded");
  o.max_connections = 2;
  RunningServer s(std::move(o));
  UniqueFd a = connect_to(s.endpoint());
  UniqueFd b = connect_to(s.endpoint());
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(send_text(a.get(), "a"));
  ASSERT_EQ(recv_exact(a.get(), kReply.size()), kReply);
  ASSERT_TRUE(send_text(b.get(), "b"));
  ASSERT_EQ(recv_exact(b.get(), kReply.size()), kReply);

  UniqueFd c = connect_to(s.endpoint());
  ASSERT_TRUE(c);
  EXPECT_TRUE(wait_closed(c.get())) << "over the cap: accepted and closed at once";
  EXPECT_EQ(s.server().stats().connections_refused, 1u);
  EXPECT_TRUE(s.log().contains("max_connections 2"));

  a.reset();  // a thread frees up...
  // ...and the next client, once connections_open counts a closed, is served at once: the
  // place is free by then (its thread may still be ending).
  ASSERT_TRUE(wait_until([&] { return s.server().stats().connections_open == 1; }));
  UniqueFd d = connect_to(s.endpoint());
  ASSERT_TRUE(d);
  ASSERT_TRUE(send_text(d.get(), "d"));
  EXPECT_EQ(recv_exact(d.get(), kReply.size()), kReply);
  EXPECT_EQ(s.server().stats().connections_refused, 1u);
  EXPECT_EQ(s.server().stats().connections_accepted, 3u);
}

TEST(ThreadedModel, DefaultThreadCapIsStatedInTheLog) {
  RunningServer s(make_options("threaded"));
  EXPECT_TRUE(wait_until([&] { return s.log().contains("at most 1024 threads"); }));
}

// ---- nonblocking, timeout: back-pressure and owed replies -----------------------------------

class PollingModels : public ::testing::TestWithParam<std::string> {};

TEST_P(PollingModels, PendingOutputOverMaxPendingPausesReadingWithoutLosingBytes) {
  TestOptions o = make_options(GetParam(), ProtocolMode::echo);
  o.max_pending = 64 * 1024;
  RunningServer s(std::move(o));
  UniqueFd fd = connect_slow_reader(s.endpoint());
  ASSERT_TRUE(fd);
  const std::string payload = pattern_bytes(4 * 1024 * 1024);
  std::thread sender([&] { send_text(fd.get(), payload); });
  EXPECT_TRUE(wait_until([&] { return s.server().stats().connections_paused == 1; }));
  EXPECT_GE(s.server().stats().peak_pending_per_connection, 64u * 1024);
  const std::string got = recv_exact(fd.get(), payload.size());
  sender.join();
  ASSERT_EQ(got.size(), payload.size());
  EXPECT_TRUE(got == payload);
  EXPECT_TRUE(wait_until([&] { return s.server().stats().connections_paused == 0; }));
  EXPECT_EQ(s.server().stats().bytes_pending, 0u);
}

TEST_P(PollingModels, GracefulStopFlushesRepliesOwedForRequestsAlreadyRead) {
  TestOptions o = make_options(GetParam(), ProtocolMode::echo);
  o.max_pending = 64 * 1024 * 1024;  // read everything: all replies end up owed
  o.drain_timeout = 5s;
  RunningServer s(std::move(o));
  UniqueFd fd = connect_slow_reader(s.endpoint());
  ASSERT_TRUE(fd);
  // More than the kernel's send buffer (up to 4 MiB) takes, so some replies must wait in the
  // server's pending buffer.
  const std::string payload = pattern_bytes(6 * 1024 * 1024);
  ASSERT_TRUE(send_text(fd.get(), payload));
  ASSERT_TRUE(wait_until([&] { return s.server().stats().bytes_in == payload.size(); }, 10s));
  EXPECT_GT(s.server().stats().bytes_pending, 0u);

  s.server().stop(StopMode::graceful);
  // A graceful stop begins by closing the listener: once nothing listens on the port the drain
  // is under way, and with replies owed to a client that has not read them the server must
  // still be running. (If the drain dropped them, the recv below comes up short.)
  ASSERT_TRUE(wait_until([&] { return !listening_on(s.endpoint().port()); }));
  EXPECT_FALSE(s.finished()) << "replies are owed: the server must wait for them to go out";
  const std::string got = recv_exact(fd.get(), payload.size());
  ASSERT_EQ(got.size(), payload.size());
  EXPECT_TRUE(got == payload);
  EXPECT_TRUE(wait_closed(fd.get()));
  ASSERT_TRUE(s.stop_and_join(StopMode::graceful, 5s));
  EXPECT_EQ(s.server().stats().bytes_out, payload.size());
}

INSTANTIATE_TEST_SUITE_P(Models, PollingModels, ::testing::Values("nonblocking", "timeout"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace iomux::test
