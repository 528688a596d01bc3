// run_bench against a tiny thread-per-connection server written here (no iomux server
// involved): every protocol, pipelining, open loop, churn, idle connections, several load
// threads, --requests, and the failure paths (wrong bytes, a silent server, nothing listening,
// a spawned server). Loopback only; every run is bounded by a short duration or request count.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "iomux/loadgen/bench.hpp"
#include "iomux/loadgen/spawn.hpp"

namespace {

using iomux::ProtocolMode;
using namespace iomux::loadgen;

// answer_then_fin: the first request's reply, then a FIN at once, and the connection is kept
// reading (as a draining iomux server lingers), so no reset tells the client either.
enum class Behaviour { ack, line, echo, wrong_bytes, silent, answer_then_fin };

// Thread per connection, blocking reads; stops within ~100 ms of stop().
class TestServer {
 public:
  explicit TestServer(Behaviour b) : behaviour_(b) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 512) != 0)
      throw std::runtime_error("test server: bind/listen failed");
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~TestServer() { stop(); }

  void stop() {
    if (stopped_.exchange(true)) return;
    acceptor_.join();
    for (auto& w : workers_) ::shutdown(w->fd, SHUT_RDWR);
    for (auto& w : workers_) {
      w->thread.join();
      ::close(w->fd);
    }
    workers_.clear();
    ::close(listen_fd_);
  }

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] std::uint64_t accepted() const { return accepted_.load(); }

 private:
  void accept_loop() {
    while (!stopped_.load()) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++accepted_;
      // Reap the connections that ended (--churn opens thousands).
      std::erase_if(workers_, [](const std::unique_ptr<Worker>& w) {
        if (!w->done.load()) return false;
        w->thread.join();
        ::close(w->fd);
        return true;
      });
      auto w = std::make_unique<Worker>();
      w->fd = fd;
      Worker* raw = w.get();
      w->thread = std::thread([this, raw] {
        serve(raw->fd);
        raw->done.store(true);
      });
      workers_.push_back(std::move(w));
    }
  }

  void send_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
      const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
      if (w <= 0) return;
      p += w;
      n -= static_cast<std::size_t>(w);
    }
  }

  void serve(int fd) {
    const std::string reply(iomux::kDefaultReply);
    const std::string line_reply = reply + "\r\n";
    std::string wrong = reply;
    wrong[0] = 'X';
    std::vector<char> buf(64 * 1024);
    std::string out;
    for (;;) {
      const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
      if (n <= 0) return;
      out.clear();
      switch (behaviour_) {
        case Behaviour::ack:
          out = reply;
          break;
        case Behaviour::wrong_bytes:
          out = wrong;
          break;
        case Behaviour::silent:
          break;
        case Behaviour::answer_then_fin:
          send_all(fd, reply.data(), reply.size());
          ::shutdown(fd, SHUT_WR);
          while (::recv(fd, buf.data(), buf.size(), 0) > 0) {
          }
          return;
        case Behaviour::echo:
          out.assign(buf.data(), static_cast<std::size_t>(n));
          break;
        case Behaviour::line:
          for (ssize_t i = 0; i < n; ++i)
            if (buf[static_cast<std::size_t>(i)] == '\n') out += line_reply;
          break;
      }
      send_all(fd, out.data(), out.size());
    }
  }

  Behaviour behaviour_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopped_{false};
  std::atomic<std::uint64_t> accepted_{0};
  struct Worker {
    int fd = -1;
    std::atomic<bool> done{false};
    std::thread thread;
  };
  std::thread acceptor_;
  std::vector<std::unique_ptr<Worker>> workers_;  // touched by the acceptor, then by stop()
};

BenchConfig quick(const TestServer& s, ProtocolMode mode) {
  BenchConfig c;
  c.target = s.target();
  c.protocol = mode;
  c.connections = 4;
  c.warmup_s = 0.2;
  c.duration_s = 1.0;
  c.timeout_s = 2;
  return c;
}

void expect_clean(const BenchResult& r) {
  EXPECT_GT(r.requests, 0u);
  EXPECT_EQ(r.errors, 0u) << "timeouts " << r.timeouts << " resets " << r.resets << " mismatches " << r.mismatches
                          << " closed " << r.closed;
  EXPECT_EQ(r.connect_failures, 0u);
  EXPECT_EQ(r.exit_code(), 0);
  EXPECT_EQ(r.latency.count(), r.requests);
  EXPECT_GT(r.rps, 0.0);
  EXPECT_GT(r.mib_s, 0.0);
  EXPECT_NEAR(r.measured_s, 1.0, 0.05);
  EXPECT_FALSE(r.gave_up);
}

TEST(LoadgenIntegration, AckClosedLoop) {
  TestServer s(Behaviour::ack);
  const auto r = run_bench(quick(s, ProtocolMode::ack));
  expect_clean(r);
  EXPECT_EQ(r.connections_open, 4u);
  EXPECT_EQ(r.bytes_in, r.requests * iomux::kDefaultReply.size());
  EXPECT_EQ(r.bytes_out, r.requests * 64);
}

TEST(LoadgenIntegration, LineClosedLoop) {
  TestServer s(Behaviour::line);
  expect_clean(run_bench(quick(s, ProtocolMode::line)));
}

TEST(LoadgenIntegration, EchoClosedLoop) {
  TestServer s(Behaviour::echo);
  auto c = quick(s, ProtocolMode::echo);
  c.size = 1000;
  expect_clean(run_bench(c));
}

TEST(LoadgenIntegration, PipelinedLineAndEcho) {
  for (auto mode : {ProtocolMode::line, ProtocolMode::echo}) {
    TestServer s(mode == ProtocolMode::line ? Behaviour::line : Behaviour::echo);
    auto c = quick(s, mode);
    c.pipeline = 8;
    c.duration_s = 0.5;
    const auto r = run_bench(c);
    EXPECT_GT(r.requests, 0u);
    EXPECT_EQ(r.errors, 0u);
  }
}

TEST(LoadgenIntegration, LargeEchoRequestsArriveInPieces) {
  TestServer s(Behaviour::echo);
  auto c = quick(s, ProtocolMode::echo);
  c.size = 300 * 1024;  // larger than one read on either side
  c.pipeline = 2;
  c.duration_s = 0.5;
  const auto r = run_bench(c);
  EXPECT_GT(r.requests, 0u);
  EXPECT_EQ(r.errors, 0u);
}

TEST(LoadgenIntegration, OpenLoopKeepsTheRate) {
  TestServer s(Behaviour::echo);
  auto c = quick(s, ProtocolMode::echo);
  c.rate = 2000;
  const auto r = run_bench(c);
  EXPECT_EQ(r.errors, 0u);
  // 2000/s for 1 s: the schedule is exact, only the requests in flight at the end are missing.
  EXPECT_GE(r.requests, 1900u);
  EXPECT_LE(r.requests, 2001u);
}

TEST(LoadgenIntegration, ChurnOpensAConnectionPerRequest) {
  TestServer s(Behaviour::ack);
  auto c = quick(s, ProtocolMode::ack);
  c.churn = true;
  c.duration_s = 0.5;
  const auto r = run_bench(c);
  EXPECT_GT(r.requests, 0u);
  EXPECT_EQ(r.errors, 0u) << "timeouts " << r.timeouts << " resets " << r.resets << " mismatches " << r.mismatches
                          << " closed " << r.closed;
  EXPECT_GE(s.accepted(), r.requests);
}

TEST(LoadgenIntegration, RequestsModeStopsAtTheCount) {
  TestServer s(Behaviour::line);
  auto c = quick(s, ProtocolMode::line);
  c.duration_s = 0;  // no cap
  c.requests = 777;
  c.threads = 2;
  const auto r = run_bench(c);
  EXPECT_EQ(r.requests, 777u);
  EXPECT_EQ(r.errors, 0u);
}

TEST(LoadgenIntegration, IdleConnectionsAndThreads) {
  TestServer s(Behaviour::ack);
  auto c = quick(s, ProtocolMode::ack);
  c.idle = 20;
  c.threads = 2;
  c.duration_s = 0.5;
  const auto r = run_bench(c);
  EXPECT_GT(r.requests, 0u);
  EXPECT_EQ(r.errors, 0u);
  EXPECT_EQ(r.idle_open, 20u);
  EXPECT_EQ(r.idle_lost, 0u);
  EXPECT_GE(s.accepted(), 24u);
}

TEST(LoadgenIntegration, WrongBytesAreErrors) {
  TestServer s(Behaviour::wrong_bytes);
  auto c = quick(s, ProtocolMode::ack);
  c.duration_s = 0.5;
  const auto r = run_bench(c);
  EXPECT_EQ(r.requests, 0u);
  EXPECT_GT(r.mismatches, 0u);
  EXPECT_EQ(r.errors, r.mismatches);
  EXPECT_EQ(r.exit_code(), 1);
  // Each mismatch closes the connection and opens a new one.
  EXPECT_GT(s.accepted(), 4u);
  // The report shows what was wrong.
  const bool explained = std::any_of(r.notes.begin(), r.notes.end(), [](const std::string& n) {
    return n.find("wrong bytes at offset 0 of a 26-byte reply: expected \"----ok----") != std::string::npos &&
           n.find("got \"X---ok----") != std::string::npos;
  });
  EXPECT_TRUE(explained) << (r.notes.empty() ? std::string("(no notes)") : r.notes.front());
}

TEST(LoadgenIntegration, ASilentServerTimesOut) {
  TestServer s(Behaviour::silent);
  auto c = quick(s, ProtocolMode::ack);
  c.timeout_s = 0.2;
  c.warmup_s = 0;
  c.duration_s = 0.7;
  const auto r = run_bench(c);
  EXPECT_EQ(r.requests, 0u);
  EXPECT_GE(r.timeouts, 4u);
  EXPECT_EQ(r.exit_code(), 1);
}

// The reply and the server's FIN arrive together: one edge-triggered event. The connection
// ends as closed at once (failed before: the read stopped at the short read, no other event
// came, and each connection waited for the timeout, counted as one).
TEST(LoadgenIntegration, AFinThatComesWithTheReplyIsACloseNotATimeout) {
  TestServer s(Behaviour::answer_then_fin);
  auto c = quick(s, ProtocolMode::ack);
  c.timeout_s = 2;
  c.warmup_s = 0;
  c.duration_s = 0.5;
  const auto r = run_bench(c);
  EXPECT_GT(r.requests, 0u);
  EXPECT_GT(r.closed, 0u);
  EXPECT_EQ(r.timeouts, 0u);
}

TEST(LoadgenIntegration, NothingListeningIsASetupError) {
  std::uint16_t port = 0;
  {
    TestServer s(Behaviour::ack);  // learn a free port, then close it
    port = s.port();
  }
  BenchConfig c;
  c.target = "127.0.0.1:" + std::to_string(port);
  c.duration_s = 0.2;
  c.timeout_s = 0.5;
  try {
    run_bench(c);
    FAIL() << "expected BenchError";
  } catch (const BenchError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot connect"), std::string::npos) << e.what();
  }
}

TEST(LoadgenIntegration, SpawnedServerIsMeasured) {
  TestServer s(Behaviour::ack);
  BenchConfig c = quick(s, ProtocolMode::ack);
  // A stand-in "server" that only prints the test server's address, so the spawn path
  // (port discovery, /proc sampling, SIGTERM at the end) runs for real.
  c.spawn_command = "echo 'x listening on 127.0.0.1:" + std::to_string(s.port()) + " (test)' >&2; exec sleep 30";
  c.duration_s = 0.5;
  c.pin = false;
  const auto r = run_bench(c);
  EXPECT_GT(r.requests, 0u);
  EXPECT_EQ(r.errors, 0u);
  ASSERT_TRUE(r.server_pid.has_value());
  EXPECT_TRUE(r.server_cpu_us_per_req.has_value());
  EXPECT_TRUE(r.server_rss_kib.has_value());
  EXPECT_EQ(r.target, s.target());
  EXPECT_EQ(::kill(*r.server_pid, 0), -1);  // stopped and reaped
}

TEST(LoadgenIntegration, SpawnFailuresAreClear) {
  SpawnSpec spec = SpawnSpec::shell("echo starting; exec sleep 30");
  spec.ready_timeout = std::chrono::milliseconds(300);
  try {
    SpawnedServer::start(spec);
    FAIL() << "expected SpawnError";
  } catch (const SpawnError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("no `listening on HOST:PORT` line within 0.3 s"), std::string::npos) << what;
    EXPECT_NE(what.find("starting"), std::string::npos) << what;
  }
  spec = SpawnSpec::shell("echo oops >&2; exit 3");
  try {
    SpawnedServer::start(spec);
    FAIL() << "expected SpawnError";
  } catch (const SpawnError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("exited with status 3"), std::string::npos) << what;
    EXPECT_NE(what.find("oops"), std::string::npos) << what;
  }
}

TEST(LoadgenIntegration, SpawnedServerStopsWithSigkillWhenItIgnoresSigterm) {
  auto server = SpawnedServer::start(
      SpawnSpec::shell("trap '' TERM; echo 'listening on [::1]:4242'; while :; do sleep 0.05; done"));
  EXPECT_EQ(server->endpoint().to_string(), "[::1]:4242");
  EXPECT_TRUE(server->alive());
  const auto t0 = std::chrono::steady_clock::now();
  server->stop(std::chrono::milliseconds(300));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  EXPECT_FALSE(server->alive());
  EXPECT_NE(server->exit_description().find("signal 9"), std::string::npos) << server->exit_description();
}

TEST(LoadgenIntegration, CancelStopsARunEarly) {
  TestServer s(Behaviour::ack);
  auto c = quick(s, ProtocolMode::ack);
  c.duration_s = 30;
  std::atomic<bool> cancel{false};
  RunHooks hooks;
  hooks.cancel = &cancel;
  int progress_calls = 0;
  hooks.on_progress = [&](const Progress&) { ++progress_calls; };
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    cancel.store(true);
  });
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = run_bench(c, hooks);
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_TRUE(r.cancelled);
  EXPECT_GT(r.requests, 0u);
  EXPECT_EQ(r.errors, 0u);
  EXPECT_GE(progress_calls, 1);
}

}  // namespace
