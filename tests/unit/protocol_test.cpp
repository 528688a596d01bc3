#include "iomux/protocol.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace iomux {
namespace {

// A sink that records every reply and request, and a helper that feeds a connection's worth of
// chunks the way the servers do: carrying the unconsumed tail into the next call.
struct Recorder : ReplySink {
  std::string out;
  std::vector<std::string> requests;
  void reply(std::string_view bytes) override { out.append(bytes); }
  void on_request(std::string_view r) override { requests.emplace_back(r); }
};

struct Session {
  explicit Session(ProtocolConfig c) : protocol(std::move(c)) {}
  // Returns false once the protocol asked to close.
  bool feed(std::string_view chunk) {
    carry.append(chunk);
    ConsumeResult r = protocol.consume(carry, scanned, sink);
    requests += r.requests;
    carry.erase(0, r.consumed);
    scanned = carry.size();
    return !r.close;
  }
  Protocol protocol;
  Recorder sink;
  std::string carry;
  std::size_t scanned = 0;
  std::size_t requests = 0;
};

ProtocolConfig line_config(std::size_t max_line = kDefaultMaxLine) {
  return {ProtocolMode::line, std::string(kDefaultReply), max_line};
}

TEST(ProtocolMode, ParsesNames) {
  EXPECT_EQ(parse_protocol_mode("ack"), ProtocolMode::ack);
  EXPECT_EQ(parse_protocol_mode("line"), ProtocolMode::line);
  EXPECT_EQ(parse_protocol_mode("echo"), ProtocolMode::echo);
  EXPECT_FALSE(parse_protocol_mode("ACK"));
  EXPECT_EQ(to_string(ProtocolMode::echo), "echo");
}

TEST(AckMode, EveryChunkGetsTheReplyWithoutTerminator) {
  Session s({ProtocolMode::ack, "OK", kDefaultMaxLine});
  EXPECT_TRUE(s.feed("hello"));
  EXPECT_TRUE(s.feed("a\nb\n"));  // one chunk, one reply, whatever it holds
  EXPECT_EQ(s.sink.out, "OKOK");
  EXPECT_EQ(s.requests, 2u);
  EXPECT_TRUE(s.carry.empty());
}

TEST(AckMode, DefaultReplyIsTheTutorials) {
  Session s(ProtocolConfig{});
  s.feed("x");
  EXPECT_EQ(s.sink.out, "----ok----Request accepted");
}

TEST(EchoMode, BytesComeBackUnchangedIncludingBinary) {
  Session s({ProtocolMode::echo, "", kDefaultMaxLine});
  std::string binary("\0\xff\r\n\x80", 5);
  s.feed("abc");
  s.feed(binary);
  EXPECT_EQ(s.sink.out, "abc" + binary);
}

TEST(LineMode, RepliesPerLineWithCrlf) {
  Session s(line_config());
  EXPECT_TRUE(s.feed("one\n"));
  EXPECT_EQ(s.sink.out, std::string(kDefaultReply) + "\r\n");
  EXPECT_EQ(s.sink.requests, std::vector<std::string>{"one"});
}

TEST(LineMode, TrailingCarriageReturnIsStripped) {
  Session s(line_config());
  s.feed("one\r\ntwo\n");
  EXPECT_EQ(s.sink.requests, (std::vector<std::string>{"one", "two"}));
}

TEST(LineMode, PipelinedLinesAnsweredInOrder) {
  Session s({ProtocolMode::line, "R", kDefaultMaxLine});
  s.feed("a\nb\nc\n");
  EXPECT_EQ(s.sink.out, "R\r\nR\r\nR\r\n");
  EXPECT_EQ(s.requests, 3u);
}

TEST(LineMode, LineSplitAcrossChunksIsCarried) {
  Session s(line_config());
  s.feed("hel");
  EXPECT_TRUE(s.sink.out.empty());
  EXPECT_EQ(s.carry, "hel");
  s.feed("lo\r");
  EXPECT_TRUE(s.sink.out.empty());
  s.feed("\nnext");
  EXPECT_EQ(s.sink.requests, std::vector<std::string>{"hello"});
  EXPECT_EQ(s.carry, "next");
}

TEST(LineMode, ByteByByteDelivery) {
  Session s({ProtocolMode::line, "R", kDefaultMaxLine});
  for (char c : std::string("ab\ncd\n")) s.feed(std::string_view(&c, 1));
  EXPECT_EQ(s.sink.requests, (std::vector<std::string>{"ab", "cd"}));
  EXPECT_EQ(s.sink.out, "R\r\nR\r\n");
}

TEST(LineMode, EmptyLinesAreRequestsToo) {
  Session s({ProtocolMode::line, "R", kDefaultMaxLine});
  s.feed("\n\r\n");
  EXPECT_EQ(s.requests, 2u);
}

TEST(LineMode, LineAtTheLimitIsAccepted) {
  Session s(line_config(8));
  EXPECT_TRUE(s.feed(std::string(8, 'x') + "\r\n"));
  EXPECT_EQ(s.requests, 1u);
}

TEST(LineMode, OverlongCompleteLineGetsErrorAndClose) {
  Session s(line_config(8));
  EXPECT_TRUE(s.feed("ok\n"));
  EXPECT_FALSE(s.feed(std::string(9, 'x') + "\n"));
  EXPECT_NE(s.sink.out.find("ERROR line too long (max 8 bytes)\r\n"), std::string::npos);
  EXPECT_EQ(s.requests, 1u);
}

TEST(LineMode, OverlongUnfinishedLineIsRefusedWithoutWaitingForNewline) {
  Session s(line_config(8));
  EXPECT_TRUE(s.feed(std::string(9, 'x')));  // 8 + a possible '\r' still fits
  EXPECT_FALSE(s.feed("y"));
  EXPECT_NE(s.sink.out.find("ERROR line too long"), std::string::npos);
}

TEST(LineMode, CarryIsBoundedByMaxCarry) {
  Protocol p(line_config(100));
  EXPECT_EQ(p.max_carry(), 101u);
  Session s(line_config(100));
  for (int i = 0; i < 100 && s.feed("z"); ++i) EXPECT_LE(s.carry.size(), p.max_carry());
}

TEST(LineMode, RepliesBeforeAnErrorAreKeptInOrder) {
  Session s({ProtocolMode::line, "R", 4});
  EXPECT_FALSE(s.feed("a\nb\ntoolong\nc\n"));
  EXPECT_EQ(s.sink.out, "R\r\nR\r\nERROR line too long (max 4 bytes)\r\n");
}

}  // namespace
}  // namespace iomux
