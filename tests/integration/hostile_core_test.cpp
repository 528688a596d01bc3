// Hostile clients against the connection core, whatever the protocol: what a handler wrote
// reaches a client that reads, whatever the size or however the handler ends, and what
// clients that stop halfway hold neither keeps others waiting nor lives forever. On a model
// of each engine: epoll and poll (the reactor), uring, threaded (the blocking family).
// The protocol-specific attacks (HTTP framing and timeouts, RESP memory) are in
// hostile_http_test.cpp and hostile_resp_test.cpp.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "support/test_net.hpp"

namespace iomux::test {
namespace {

using namespace std::chrono_literals;

// Keeps its input until a '\n' (a request with a body, as far as memory goes), then answers
// according to the request: "big N" writes N bytes at once, "throw" throws after answering
// the lines before it in the same call, anything else is echoed back.
class Requests final : public Handler {
 public:
  void on_open(Connection& conn) override { conn.set_max_input(4 << 20); }
  std::size_t on_data(std::span<const char> in, Connection& conn) override {
    std::string_view text(in.data(), in.size());
    std::size_t used = 0;
    for (std::size_t nl; (nl = text.find('\n', used)) != text.npos; used = nl + 1) {
      const std::string_view line = text.substr(used, nl - used);
      if (line.starts_with("big ")) {
        conn.write(std::string(std::stoul(std::string(line.substr(4))), 'B'));
      } else if (line == "throw") {
        throw std::runtime_error("asked to throw");
      } else {
        conn.write(std::string(line.size() > 16 ? "long" : line) + "\n");
      }
    }
    return used;
  }
};

class HostileCore : public ModelTest {
 protected:
  ServerOptions options() const {
    ServerOptions o;
    o.model = GetParam();
    return o;
  }
};

// `one\nthrow\n` in one read: before, the client got only EOF, not the answer to `one`.
TEST_P(HostileCore, AHandlerThatThrowsStillSendsWhatItWroteBeforeTheThrow) {
  RunningServer server(options(), handler_factory<Requests>(), LogLevel::error);
  UniqueFd c = connect_to(server.endpoint());
  ASSERT_TRUE(c);
  ASSERT_TRUE(send_text(c.get(), "one\nthrow\n"));
  EXPECT_EQ(recv_exact(c.get(), 4), "one\n");
  EXPECT_TRUE(wait_closed(c.get()));
  EXPECT_TRUE(wait_until([&] { return server.server().stats().handler_errors == 1; }));
}

// One 32 MiB write to a client that reads it all (twice max_output: whatever the first send
// takes, the rest is over it). Before, the connection was closed (output_limit) after the first
// send on epoll and poll, before any byte on uring; threaded's blocking send never queues it.
TEST_P(HostileCore, AHandlersLargeReplyReachesAClientThatReads) {
  constexpr std::size_t kBig = 32 << 20;
  RunningServer server(options(), handler_factory<Requests>(), LogLevel::error);
  UniqueFd c = connect_to(server.endpoint());
  ASSERT_TRUE(c);
  ASSERT_TRUE(send_text(c.get(), "big " + std::to_string(kBig) + "\nafter\n"));
  const std::string got = recv_exact(c.get(), kBig + 6);
  ASSERT_EQ(got.size(), kBig + 6);
  EXPECT_EQ(got.find_first_not_of('B'), kBig);
  EXPECT_EQ(got.substr(kBig), "after\n");
}

// A peer that sends requests and never reads: closed once it has taken nothing for
// send_timeout (before: held its connection and its output until the server stopped).
TEST_P(HostileCore, APeerThatNeverReadsIsClosedAfterTheSendTimeout) {
  ServerOptions o = options();
  o.send_timeout = 500ms;
  RunningServer server(o, handler_factory<Requests>(), LogLevel::error);
  UniqueFd c = connect_to(server.endpoint());
  ASSERT_TRUE(c);
  int rcvbuf = 4096;  // so that the server's output backs up quickly
  ::setsockopt(c.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  ASSERT_TRUE(send_text(c.get(), "big 8388608\n"));
  EXPECT_TRUE(wait_until([&] { return server.server().stats().connections_timed_out == 1; }, 10s))
      << "the server still holds a connection whose peer has read nothing";
  EXPECT_TRUE(wait_until([&] { return server.server().stats().connections_open == 0; }));
}

// Six clients each send most of a 1,050,000-byte request and stop, which puts the server over
// the soft mark of --max-memory 16M; a good client's 100 KB request must not wait behind them
// (before, it waited until they left: forever, here). The stalled holders are evicted.
TEST_P(HostileCore, StalledHoldersAreEvictedBeforeAClientThatMakesProgressWaits) {
  ServerOptions o = options();
  o.max_memory = 16 << 20;
  RunningServer server(o, handler_factory<Requests>(), LogLevel::error);
  const std::string unfinished(1'050'000, 's');
  std::vector<UniqueFd> stalled;
  std::vector<std::size_t> sent;
  for (int i = 0; i < 6; ++i) {
    UniqueFd s = connect_to(server.endpoint());
    ASSERT_TRUE(s);
    set_non_blocking(s.get());
    stalled.push_back(std::move(s));
    sent.push_back(0);
  }
  // Each sends what its socket takes, again and again: one non-blocking send may take only part
  // of the request when the server is slow to read (a loaded machine), and a blocking one could
  // wait forever once the budget pauses the reading.
  const auto send_more = [&] {
    for (std::size_t i = 0; i < stalled.size(); ++i) {
      if (sent[i] == unfinished.size()) continue;
      const ssize_t n =
          ::send(stalled[i].get(), unfinished.data() + sent[i], unfinished.size() - sent[i], MSG_NOSIGNAL);
      if (n > 0) sent[i] += static_cast<std::size_t>(n);
    }
  };
  // Once the server has read them, they hold 12 MiB (2 MiB buffers each): the soft mark.
  ASSERT_TRUE(wait_until(
      [&] {
        send_more();
        return server.server().stats().bytes_held >= (12u << 20);
      },
      10s))
      << "the stalled clients hold " << server.server().stats().bytes_held << " bytes";
  UniqueFd good = connect_to(server.endpoint(), 10s);
  ASSERT_TRUE(good);
  ASSERT_TRUE(send_text(good.get(), std::string(100'000, 'g') + "\n"));
  EXPECT_EQ(recv_exact(good.get(), 5), "long\n") << "the good client was not served within 10 s";
  EXPECT_GT(server.server().stats().connections_evicted, 0u);
}

INSTANTIATE_TEST_SUITE_P(Models, HostileCore, ::testing::Values("epoll", "poll", "uring", "threaded"), ModelTestName());

}  // namespace
}  // namespace iomux::test
