// A graceful stop that loses no request (issue 19, "a drain that loses nothing"): an HTTP
// request whose bytes are on their way when the stop begins is answered, with
// "Connection: close", before the connection closes; so is the next request on an idle
// keep-alive connection, which is kept until then (or its keep-alive timeout); GET /health
// answers 503 once the drain began. On every model that can go on reading
// while it drains (Handler::on_server_drain): blocking, threaded and timeout shut each socket's
// reading side to wake their threads, so they drain as before.
//
// The drain is seen to have begun when the listening socket is gone (the loop stops accepting
// and drains its connections in one step); a request completed after that is answered in the
// drain, never before it.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "iomux/http.hpp"
#include "iomux/resp.hpp"
#include "support/http_response.hpp"
#include "support/test_net.hpp"

// A namespace of its own: the unity build compiles this file with others that have helpers
// of the same names.
namespace iomux::test::graceful_drain_test {
namespace {

using namespace std::chrono_literals;

// The models whose drain keeps reading (see Handler::on_server_drain).
std::vector<std::string> reading_drain_models() {
  std::vector<std::string> names;
  for (const std::string& name : all_model_names())
    if (name != "blocking" && name != "threaded" && name != "timeout") names.push_back(name);
  return names;
}

// True when the server closed the connection and sent nothing more (beyond `pending`).
bool closed_without_more(int fd, const std::string& pending) {
  if (!pending.empty()) return false;
  char buf[256];
  for (;;) {
    const ssize_t got = ::recv(fd, buf, sizeof buf, 0);
    if (got < 0 && errno == EINTR) continue;
    return got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }
}

constexpr std::string_view kHead = "GET /plaintext HTTP/1.1\r\nHost: drain\r\n";  // without its blank line

class GracefulDrain : public ModelTest {
 protected:
  void SetUp() override {
    ModelTest::SetUp();
    if (IsSkipped()) return;
    start(http_protocol());
  }

  // drain_timeout: longer than the test waits to join (10 s) unless given, so that a
  // connection left to the drain timeout fails it.
  void start(HandlerFactory factory, std::chrono::milliseconds drain_timeout = 60s) {
    ServerOptions o;
    o.model = GetParam();
    o.drain_timeout = drain_timeout;
    server_ = std::make_unique<RunningServer>(o, std::move(factory), LogLevel::error);
  }

  // Waits until the server has read `bytes` in all, so that what was sent is surely received.
  void wait_received(std::uint64_t bytes) {
    ASSERT_TRUE(wait_until([&] { return server_->server().stats().bytes_in >= bytes; }))
        << "the server read " << server_->server().stats().bytes_in << " of " << bytes << " bytes";
  }

  // Starts a graceful stop and waits until the drain has begun.
  void stop_gracefully() {
    const std::uint16_t port = server_->endpoint().port();
    server_->server().stop(StopMode::graceful);
    ASSERT_TRUE(wait_until([&] { return !listening_on(port); })) << "still accepting";
  }

  std::unique_ptr<RunningServer> server_;
};

// The request was half received when the stop began (failed before: the drain closed the
// connection at once, and the client got EOF instead of its response).
TEST_P(GracefulDrain, RequestOnItsWayIsAnsweredWithConnectionClose) {
  UniqueFd c = connect_to(server_->endpoint());
  ASSERT_TRUE(c);
  ASSERT_TRUE(send_text(c.get(), kHead));
  wait_received(kHead.size());
  stop_gracefully();
  ASSERT_TRUE(send_text(c.get(), "\r\n"));
  std::string pending;
  const HttpResponse r = read_http_response(c.get(), pending);
  EXPECT_EQ(r.status, 200) << r.head;
  EXPECT_EQ(r.body, "Hello, World!");
  EXPECT_TRUE(r.closes()) << r.head;
  EXPECT_TRUE(closed_without_more(c.get(), pending));
  EXPECT_TRUE(server_->stop_and_join(StopMode::graceful));
}

// The rest of the first request and a whole second one arrive together during the drain: both
// are answered, the second with Connection: close (failed before: no answer at all).
TEST_P(GracefulDrain, PipelinedRequestBehindItIsAnsweredToo) {
  UniqueFd c = connect_to(server_->endpoint());
  ASSERT_TRUE(c);
  ASSERT_TRUE(send_text(c.get(), kHead));
  wait_received(kHead.size());
  stop_gracefully();
  ASSERT_TRUE(send_text(c.get(), std::string("\r\n") + std::string(kHead) + "\r\n"));
  std::string pending;
  const HttpResponse first = read_http_response(c.get(), pending);
  const HttpResponse second = read_http_response(c.get(), pending);
  EXPECT_EQ(first.status, 200) << first.head;
  EXPECT_FALSE(first.closes()) << first.head;
  EXPECT_EQ(second.status, 200) << second.head;
  EXPECT_TRUE(second.closes()) << second.head;
  EXPECT_TRUE(closed_without_more(c.get(), pending));
  EXPECT_TRUE(server_->stop_and_join(StopMode::graceful));
}

// Opens a keep-alive connection and has one request answered on it: then it is idle.
UniqueFd idle_keep_alive_connection(const Endpoint& server, std::string& pending) {
  UniqueFd c = connect_to(server);
  if (!c || !send_text(c.get(), std::string(kHead) + "\r\n")) return {};
  const HttpResponse r = read_http_response(c.get(), pending);
  EXPECT_EQ(r.status, 200) << r.head;
  EXPECT_FALSE(r.closes()) << r.head;
  return c;
}

// A keep-alive connection with nothing of a request received is kept through the stop: its
// client's next request, sent after the drain began, is answered with Connection: close, then
// the connection closes (failed before: it was closed at once, and the request met a closed
// connection, as wrk straight at a stopping server counted in read errors).
TEST_P(GracefulDrain, IdleKeepAliveConnectionIsKeptAndItsNextRequestAnswered) {
  std::string pending;
  UniqueFd c = idle_keep_alive_connection(server_->endpoint(), pending);
  ASSERT_TRUE(c);
  stop_gracefully();
  ASSERT_TRUE(send_text(c.get(), std::string(kHead) + "\r\n"));
  const HttpResponse r = read_http_response(c.get(), pending);
  EXPECT_EQ(r.status, 200) << r.head;
  EXPECT_EQ(r.body, "Hello, World!");
  EXPECT_TRUE(r.closes()) << r.head;
  EXPECT_TRUE(closed_without_more(c.get(), pending));
  EXPECT_TRUE(server_->stop_and_join(StopMode::graceful));
}

// An idle keep-alive connection whose client sends nothing more goes at its keep-alive
// timeout, without a response, long before the drain timeout (60 s, which would fail the
// join), so a drain is not held by idle clients.
TEST_P(GracefulDrain, IdleKeepAliveConnectionClosesAtItsKeepAliveTimeout) {
  server_.reset();
  HttpOptions http;
  http.keepalive_timeout = 300ms;
  start(http_protocol(http));
  std::string pending;
  UniqueFd c = idle_keep_alive_connection(server_->endpoint(), pending);
  ASSERT_TRUE(c);
  stop_gracefully();
  EXPECT_TRUE(closed_without_more(c.get(), pending));
  EXPECT_TRUE(server_->stop_and_join(StopMode::graceful));
}

// Hostile: idle keep-alive connections (keep-alive timeout 75 s) and one that sends a byte of
// its head now and then cannot keep a draining server past drain_timeout.
TEST_P(GracefulDrain, IdleAndDribblingConnectionsDoNotHoldTheDrainPastItsTimeout) {
  server_.reset();
  start(http_protocol(), 300ms);
  std::vector<UniqueFd> idle;
  for (int i = 0; i < 20; ++i) {
    std::string pending;
    idle.push_back(idle_keep_alive_connection(server_->endpoint(), pending));
    ASSERT_TRUE(idle.back());
  }
  UniqueFd dribbler = connect_to(server_->endpoint());
  ASSERT_TRUE(dribbler);
  ASSERT_TRUE(send_text(dribbler.get(), "GET /plaintext HTTP/1.1\r\nHo"));
  stop_gracefully();
  for (int i = 0; i < 3; ++i) {
    (void)send_text(dribbler.get(), "s");
    std::this_thread::sleep_for(50ms);
  }
  // Not stop_and_join: a second graceful stop would cut the drain short by itself.
  EXPECT_TRUE(wait_until([&] { return server_->finished(); }, 10s)) << "the drain outlived its timeout";
  for (UniqueFd& c : idle) EXPECT_TRUE(closed_without_more(c.get(), ""));
  EXPECT_TRUE(server_->stop_and_join(StopMode::graceful));
}

// GET /health: 200 "ok" while serving; 503 "draining" with Connection: close once the drain
// began, to a health check whose request was on its way (failed before: no route, 404).
TEST_P(GracefulDrain, HealthAnswers503WhileDraining) {
  UniqueFd c = connect_to(server_->endpoint());
  ASSERT_TRUE(c);
  ASSERT_TRUE(send_text(c.get(), "GET /health HTTP/1.1\r\nHost: drain\r\n\r\n"));
  std::string pending;
  const HttpResponse ok = read_http_response(c.get(), pending);
  EXPECT_EQ(ok.status, 200) << ok.head;
  EXPECT_EQ(ok.body, "ok");
  EXPECT_FALSE(ok.closes());

  const std::string_view head = "GET /health HTTP/1.1\r\nHost: drain\r\n";
  UniqueFd d = connect_to(server_->endpoint());
  ASSERT_TRUE(d);
  const std::uint64_t before = server_->server().stats().bytes_in;
  ASSERT_TRUE(send_text(d.get(), head));
  wait_received(before + head.size());
  stop_gracefully();
  ASSERT_TRUE(send_text(d.get(), "\r\n"));
  std::string rest;
  const HttpResponse draining = read_http_response(d.get(), rest);
  EXPECT_EQ(draining.status, 503) << draining.head;
  EXPECT_EQ(draining.body, "draining");
  EXPECT_TRUE(draining.closes()) << draining.head;
  EXPECT_TRUE(closed_without_more(d.get(), rest));
  EXPECT_TRUE(server_->stop_and_join(StopMode::graceful));
}

class GracefulRespDrain : public GracefulDrain {
 protected:
  void SetUp() override {
    ModelTest::SetUp();
    if (IsSkipped()) return;
    start(resp_protocol());
  }
};

// Commands read before the stop whose replies are far larger than what the handler hands the
// connection at a time (and than the socket buffers): every reply is sent, then EOF (failed
// before: the drain flushed only the part handed over, and the client got EOF early).
TEST_P(GracefulRespDrain, CommandsReadAreAnsweredInFull) {
  UniqueFd c = connect_to(server_->endpoint());
  ASSERT_TRUE(c);
  const std::string value(256 * 1024, 'v');
  ASSERT_TRUE(
      send_text(c.get(), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + std::to_string(value.size()) + "\r\n" + value + "\r\n"));
  ASSERT_EQ(recv_exact(c.get(), 5), "+OK\r\n");
  constexpr int kGets = 200;  // 50 MiB of replies
  std::string pipeline;
  for (int i = 0; i < kGets; ++i) pipeline += "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
  const std::uint64_t before = server_->server().stats().bytes_in;
  ASSERT_TRUE(send_text(c.get(), pipeline));
  wait_received(before + pipeline.size());
  stop_gracefully();
  const std::string reply = "$" + std::to_string(value.size()) + "\r\n" + value + "\r\n";
  const std::string got = recv_exact(c.get(), kGets * reply.size() + 1);
  EXPECT_EQ(got.size(), kGets * reply.size());
  bool all_whole = got.size() == kGets * reply.size();
  for (std::size_t at = 0; all_whole && at < got.size(); at += reply.size())
    all_whole = got.compare(at, reply.size(), reply) == 0;
  EXPECT_TRUE(all_whole);
  EXPECT_TRUE(closed_without_more(c.get(), {}));
  EXPECT_TRUE(server_->stop_and_join(StopMode::graceful));
}

INSTANTIATE_TEST_SUITE_P(Models, GracefulRespDrain, ::testing::ValuesIn(reading_drain_models()), ModelTestName{});

INSTANTIATE_TEST_SUITE_P(Models, GracefulDrain, ::testing::ValuesIn(reading_drain_models()), ModelTestName{});

}  // namespace
}  // namespace iomux::test::graceful_drain_test
