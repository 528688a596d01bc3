// The built-in protocols (ack, line, echo) as handlers, driven through a real ConnectionCore
// without sockets (CoreHarness): bytes in, replies out, what is kept, when it closes.
#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include "iomux/protocols.hpp"
#include "support/core_harness.hpp"

namespace iomux::test {
namespace {

// The requests a handler logged at debug level (`iomux serve -v`).
struct RequestLog {
  std::vector<std::string> lines;
  ServerOptions options() {
    ServerOptions o;
    o.logger = std::make_shared<Logger>(LogLevel::debug, [this](LogLevel level, std::string_view line) {
      if (level == LogLevel::debug) lines.emplace_back(line);
    });
    return o;
  }
  std::vector<std::string> requests() const {
    std::vector<std::string> out;
    for (const auto& l : lines) {
      const auto q = l.find('"');
      out.push_back(l.substr(q + 1, l.size() - q - 2));
    }
    return out;
  }
};

TEST(AckProtocol, EveryChunkGetsTheReplyWithoutTerminator) {
  CoreHarness h(ack_protocol("OK"));
  h.feed("hello");
  h.feed("a\nb\n");  // one chunk, one reply, whatever it holds
  EXPECT_EQ(h.take_output(), "OKOK");
  EXPECT_EQ(h.thread_stats().requests.get(), 2u);
  EXPECT_FALSE(h.core().keeps_input());
}

TEST(AckProtocol, DefaultReplyIsTheTutorials) {
  CoreHarness h(ack_protocol());
  h.feed("x");
  EXPECT_EQ(h.take_output(), "----ok----Request accepted");
}

TEST(EchoProtocol, BytesComeBackUnchangedIncludingBinary) {
  CoreHarness h(echo_protocol());
  const std::string binary("\0\xff\r\n\x80", 5);
  h.feed("abc");
  h.feed(binary);
  EXPECT_EQ(h.take_output(), "abc" + binary);
}

TEST(EchoProtocol, BytesTheSocketCannotTakeAreCopiedAndSentLater) {
  CoreHarness h(echo_protocol());
  h.stall(true);
  h.feed("first");
  h.feed("second");
  EXPECT_EQ(h.take_output(), "");
  EXPECT_EQ(h.core().pending_output(), 11u);
  h.stall(false);
  EXPECT_EQ(h.take_output(), "firstsecond");
}

TEST(LineProtocol, RepliesPerLineWithCrlfAndLogsTheRequest) {
  RequestLog log;
  CoreHarness h(line_protocol(), log.options());
  h.feed("one\n");
  EXPECT_EQ(h.take_output(), std::string(kDefaultReply) + "\r\n");
  EXPECT_EQ(log.requests(), std::vector<std::string>{"one"});
}

TEST(LineProtocol, TrailingCarriageReturnIsStripped) {
  RequestLog log;
  CoreHarness h(line_protocol(), log.options());
  h.feed("one\r\ntwo\n");
  EXPECT_EQ(log.requests(), (std::vector<std::string>{"one", "two"}));
}

TEST(LineProtocol, RequestsAreLoggedEscaped) {
  RequestLog log;
  CoreHarness h(line_protocol(), log.options());
  h.feed(std::string("a\x1b[2Jb\x01\n"));
  EXPECT_EQ(log.requests(), std::vector<std::string>{"a\\x1b[2Jb\\x01"});
}

TEST(LineProtocol, PipelinedLinesAnsweredInOrder) {
  CoreHarness h(line_protocol("R"));
  h.feed("a\nb\nc\n");
  EXPECT_EQ(h.take_output(), "R\r\nR\r\nR\r\n");
  EXPECT_EQ(h.thread_stats().requests.get(), 3u);
}

TEST(LineProtocol, LineSplitAcrossChunksIsKept) {
  RequestLog log;
  CoreHarness h(line_protocol(), log.options());
  h.feed("hel");
  EXPECT_EQ(h.take_output(), "");
  EXPECT_EQ(h.core().kept_input().view(), "hel");
  h.feed("lo\r");
  EXPECT_EQ(h.take_output(), "");
  h.feed("\nnext");
  EXPECT_EQ(log.requests(), std::vector<std::string>{"hello"});
  EXPECT_EQ(h.core().kept_input().view(), "next");
}

TEST(LineProtocol, ByteByByteDelivery) {
  CoreHarness h(line_protocol("R"));
  for (char c : std::string("ab\ncd\n")) h.feed(std::string_view(&c, 1));
  EXPECT_EQ(h.take_output(), "R\r\nR\r\n");
  EXPECT_FALSE(h.core().keeps_input());
}

TEST(LineProtocol, EmptyLinesAreRequestsToo) {
  CoreHarness h(line_protocol("R"));
  h.feed("\n\r\n");
  EXPECT_EQ(h.thread_stats().requests.get(), 2u);
}

TEST(LineProtocol, LineAtTheLimitIsAccepted) {
  CoreHarness h(line_protocol("R", 8));
  h.feed(std::string(8, 'x') + "\r\n");
  EXPECT_EQ(h.take_output(), "R\r\n");
  EXPECT_TRUE(h.open());
}

TEST(LineProtocol, OverlongCompleteLineGetsErrorThenFinAndClose) {
  CoreHarness h(line_protocol("R", 8));
  h.feed("ok\n");
  h.feed(std::string(9, 'x') + "\n");
  EXPECT_EQ(h.take_output(), "R\r\nERROR line too long (max 8 bytes)\r\n");
  EXPECT_TRUE(h.fin_sent());  // every reply, then FIN; the core lingers for the peer's close
  h.peer_shutdown();
  EXPECT_FALSE(h.open());
}

TEST(LineProtocol, OverlongUnfinishedLineIsRefusedWithoutWaitingForNewline) {
  CoreHarness h(line_protocol("R", 8));
  h.feed(std::string(9, 'x'));  // 8 + a possible '\r' still fits
  EXPECT_EQ(h.take_output(), "");
  h.feed("y");
  EXPECT_EQ(h.take_output(), "ERROR line too long (max 8 bytes)\r\n");
}

TEST(LineProtocol, KeptInputStaysWithinTheLine) {
  CoreHarness h(line_protocol("R", 100));
  for (int i = 0; i < 100 && h.open(); ++i) {
    h.feed("z");
    EXPECT_LE(h.core().kept_input().readable(), 101u);
  }
}

TEST(LineProtocol, RepliesBeforeAnErrorAreKeptInOrder) {
  CoreHarness h(line_protocol("R", 4));
  h.feed("a\nb\ntoolong\nc\n");
  EXPECT_EQ(h.take_output(), "R\r\nR\r\nERROR line too long (max 4 bytes)\r\n");
}

TEST(LineProtocol, MaxLineAboveTheDefaultInputBoundRaisesIt) {
  CoreHarness h(line_protocol("R", 200 * 1024));
  h.feed(std::string(150 * 1024, 'q'));
  EXPECT_TRUE(h.open());
  h.feed("\n");
  EXPECT_EQ(h.take_output(), "R\r\n");
}

}  // namespace
}  // namespace iomux::test
