// The sigio model end to end: the reactor server over the signal-driven poller, on
// 127.0.0.1:0. Beyond the suite every model passes (server_test.cpp), this pins down what is
// particular to signals: replies stay right when the signal queue overflows (every event then
// comes from the SIGIO fallback scan), two servers in one process each get their own signals,
// and a reply larger than the socket buffers completes on POLL_OUT signals.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "iomux/protocols.hpp"
#include "support/sigpending_limit.hpp"
#include "support/test_net.hpp"
#include "support/thread_state.hpp"

namespace iomux::test {
namespace {

TestOptions sigio(ProtocolMode mode = ProtocolMode::ack) {
  TestOptions o = options_for("sigio");
  o.protocol.mode = mode;
  return o;
}

// `clients` threads, each on its own connection, send `requests` echo requests unique to them
// and check every reply byte. Returns how many clients got every reply right.
int run_echo_clients(const Endpoint& ep, int clients, int requests) {
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  threads.reserve(clients);
  for (int id = 0; id < clients; ++id)
    threads.emplace_back([&, id] {
      UniqueFd c = connect_to(ep);
      if (!c) return;
      for (int r = 0; r < requests; ++r) {
        const std::string req = "client " + std::to_string(id) + " request " + std::to_string(r) + "\n";
        if (!send_text(c.get(), req) || recv_exact(c.get(), req.size()) != req) return;
      }
      ++good;
    });
  for (auto& t : threads) t.join();
  return good.load();
}

TEST(SigioModel, AckRoundTrip) {
  RunningServer s(sigio());
  UniqueFd c = connect_to(s.endpoint());
  ASSERT_TRUE(c);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(send_text(c.get(), "hello"));
    EXPECT_EQ(recv_exact(c.get(), kReply.size()), kReply);
  }
}

TEST(SigioModel, LineRoundTripWithPipelinedAndSplitLines) {
  RunningServer s(sigio(ProtocolMode::line));
  UniqueFd c = connect_to(s.endpoint());
  ASSERT_TRUE(c);
  ASSERT_TRUE(send_text(c.get(), "one\ntwo\nthr"));
  EXPECT_EQ(recv_exact(c.get(), 2 * kLineReply.size()), kLineReply + kLineReply);
  ASSERT_TRUE(send_text(c.get(), "ee\n"));
  EXPECT_EQ(recv_exact(c.get(), kLineReply.size()), kLineReply);
}

TEST(SigioModel, EchoRoundTrip) {
  RunningServer s(sigio(ProtocolMode::echo));
  UniqueFd c = connect_to(s.endpoint());
  ASSERT_TRUE(c);
  ASSERT_TRUE(send_text(c.get(), "echo me"));
  EXPECT_EQ(recv_exact(c.get(), 7), "echo me");
}

TEST(SigioModel, TwoHundredClientsTenRequestsEachGetEveryByteBack) {
  raise_fd_limit();
  RunningServer s(sigio(ProtocolMode::echo));
  EXPECT_EQ(run_echo_clients(s.endpoint(), 200, 10), 200);
  EXPECT_TRUE(wait_until([&] { return s.server().stats().connections_open == 0; }));
  EXPECT_EQ(s.server().stats().connections_accepted, 200u);
}

TEST(SigioModel, LineRepliesToTwoHundredConcurrentClients) {
  raise_fd_limit();
  RunningServer s(sigio(ProtocolMode::line));
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int id = 0; id < 200; ++id)
    threads.emplace_back([&] {
      UniqueFd c = connect_to(s.endpoint());
      if (!c) return;
      for (int r = 0; r < 10; ++r)
        if (!send_text(c.get(), "request\n") || recv_exact(c.get(), kLineReply.size()) != kLineReply) return;
      ++good;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 200);
  EXPECT_TRUE(wait_until([&] { return s.server().stats().requests == 2000u; }));
}

TEST(SigioModel, ClientsThatDisconnectMidRequestAreClosedAndOthersServed) {
  RunningServer s(sigio(ProtocolMode::line));
  for (int i = 0; i < 20; ++i) {
    UniqueFd c = connect_to(s.endpoint());
    ASSERT_TRUE(c);
    ASSERT_TRUE(send_text(c.get(), "half a requ"));
    if (i % 2) set_linger_reset(c.get());  // half reset, half close cleanly (FIN after data)
  }
  UniqueFd c = connect_to(s.endpoint());
  ASSERT_TRUE(c);
  ASSERT_TRUE(send_text(c.get(), "whole\n"));
  EXPECT_EQ(recv_exact(c.get(), kLineReply.size()), kLineReply);
  // The FIN of a clean close arrives as POLL_IN like data: it must still be noticed.
  EXPECT_TRUE(wait_until([&] { return s.server().stats().connections_open == 1; }));
  c.reset();
  EXPECT_TRUE(wait_until([&] { return s.server().stats().connections_open == 0; }));
}

TEST(SigioModel, GracefulStopFlushesRepliesAndClosesClients) {
  TestOptions o = sigio();
  o.drain_timeout = std::chrono::milliseconds(2000);
  RunningServer s(std::move(o));
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(connect_to(s.endpoint()));
    ASSERT_TRUE(send_text(clients.back().get(), "hi"));
    EXPECT_EQ(recv_exact(clients.back().get(), kReply.size()), kReply);
  }
  EXPECT_TRUE(s.stop_and_join(StopMode::graceful, std::chrono::seconds(8)));
  EXPECT_TRUE(s.error().empty()) << s.error();
  for (auto& c : clients) EXPECT_TRUE(wait_closed(c.get()));
  EXPECT_EQ(s.server().stats().connections_open, 0u);
}

TEST(SigioModel, ImmediateStopEndsAnIdleServerPromptly) {
  RunningServer s(sigio());
  // The case under test is a loop asleep in sigtimedwait, which only a signal or the stop's
  // wake-up ends: wait until the kernel shows the server's thread there.
  ASSERT_TRUE(wait_for_thread_sleeping_in({SYS_rt_sigtimedwait}, {::gettid()}))
      << "no thread of the server sleeps in rt_sigtimedwait";
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(s.stop_and_join(StopMode::immediate, std::chrono::seconds(5)));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

TEST(SigioModel, RepliesStayRightWhenTheSignalQueueOverflows) {
  raise_fd_limit();
  SigpendingLimit no_queue(0);  // every readiness change now arrives as SIGIO: a full scan
  RunningServer s(sigio(ProtocolMode::echo));
  EXPECT_EQ(run_echo_clients(s.endpoint(), 50, 10), 50);
  EXPECT_TRUE(s.stop_and_join(StopMode::graceful, std::chrono::seconds(8)));
  EXPECT_TRUE(s.error().empty()) << s.error();
}

TEST(SigioModel, TwoServersInOneProcessEachGetTheirOwnSignals) {
  RunningServer a(sigio(ProtocolMode::echo));
  RunningServer b(sigio(ProtocolMode::echo));
  std::thread ta([&] { EXPECT_EQ(run_echo_clients(a.endpoint(), 20, 10), 20); });
  std::thread tb([&] { EXPECT_EQ(run_echo_clients(b.endpoint(), 20, 10), 20); });
  ta.join();
  tb.join();
  EXPECT_EQ(a.server().stats().requests, b.server().stats().requests);
}

TEST(SigioModel, EchoLargerThanTheSocketBuffersCompletesOnWritableSignals) {
  RunningServer s(sigio(ProtocolMode::echo));
  UniqueFd c = connect_to(s.endpoint());
  ASSERT_TRUE(c);
  std::string payload(8 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 131 + i / 4096);
  // Read while sending: the server stops reading when 1 MiB of replies is owed.
  std::string got;
  std::thread reader([&] { got = recv_exact(c.get(), payload.size()); });
  EXPECT_TRUE(send_text(c.get(), payload));
  reader.join();
  EXPECT_TRUE(got == payload) << "got " << got.size() << " of " << payload.size() << " bytes";
}

}  // namespace
}  // namespace iomux::test
