#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "protocols/resp/request_parser.hpp"
#include "resp_test_text.hpp"

namespace iomux::resp {
namespace {

using test_text::cat;
using test_text::multibulk;

using Request = std::vector<std::string>;

struct Parsed {
  std::vector<Request> requests;
  std::string error;          // the error reply, if the stream ended in one
  std::size_t kept = 0;       // bytes left unconsumed at the end (an unfinished request)
  std::size_t most_kept = 0;  // the most bytes ever left unconsumed between calls

  // What the parser said, not how the feeding went.
  bool operator==(const Parsed& other) const {
    return requests == other.requests && error == other.error && kept == other.kept;
  }
};

// Feeds `stream` the way a connection does: in chunks of the given sizes (used in turn), each
// call presented with the bytes the previous calls did not consume plus the new chunk.
Parsed feed(RequestParser& parser, std::string_view stream, const std::vector<std::size_t>& chunk_sizes) {
  Parsed parsed;
  std::string pending;
  std::size_t offset = 0;
  for (std::size_t turn = 0; offset < stream.size(); ++turn) {
    const std::size_t size = std::min(chunk_sizes[turn % chunk_sizes.size()], stream.size() - offset);
    pending.append(stream.substr(offset, size));
    offset += size;
    for (;;) {
      const RequestParser::Step step = parser.next(pending);
      EXPECT_LE(step.used, pending.size());
      if (step.status == RequestParser::Status::error) {
        parsed.error = parser.error_reply();
        return parsed;
      }
      if (step.status == RequestParser::Status::request)
        parsed.requests.emplace_back(parser.args().begin(), parser.args().end());
      pending.erase(0, step.used);
      if (step.status == RequestParser::Status::incomplete) break;
    }
    parsed.most_kept = std::max(parsed.most_kept, pending.size());
  }
  parsed.kept = pending.size();
  return parsed;
}

Parsed feed(std::string_view stream, std::vector<std::size_t> chunk_sizes = {SIZE_MAX}, Limits limits = {}) {
  RequestParser parser(limits);
  return feed(parser, stream, chunk_sizes);
}

std::string error_line(std::string_view what) {
  return cat({"-ERR Protocol error: ", what, "\r\n"});
}

// --- well-formed requests ------------------------------------------------------------------

TEST(RespRequestParser, MultibulkRequestGivesItsArguments) {
  const Parsed parsed = feed("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n");
  EXPECT_EQ(parsed.requests, (std::vector<Request>{{"SET", "key", "value"}}));
  EXPECT_EQ(parsed.kept, 0u);
}

TEST(RespRequestParser, BulkArgumentsAreBinarySafe) {
  const std::string binary("a\r\nb\0c\xff", 7);
  EXPECT_EQ(feed(multibulk({"SET", binary, ""})).requests, (std::vector<Request>{{"SET", binary, ""}}));
}

TEST(RespRequestParser, ArgumentsPointIntoTheInput) {
  RequestParser parser;
  const std::string input = multibulk({"GET", "k"});
  ASSERT_EQ(parser.next(input).status, RequestParser::Status::request);
  EXPECT_EQ(parser.args()[1].data(), input.data() + input.find("k\r\n"));
}

TEST(RespRequestParser, InlineRequestSplitsOnSpaces) {
  EXPECT_EQ(feed("PING\r\n").requests, (std::vector<Request>{{"PING"}}));
  EXPECT_EQ(feed("  set  a\tb \r\n").requests, (std::vector<Request>{{"set", "a", "b"}}));
  EXPECT_EQ(feed("get a\n").requests, (std::vector<Request>{{"get", "a"}}));  // bare \n too
}

TEST(RespRequestParser, InlineDoubleQuotesTakeEscapes) {
  EXPECT_EQ(feed("set \"a b\" \"\\x41\\n\\r\\t\\b\\a\\\\\\\"\\z\"\r\n").requests,
            (std::vector<Request>{{"set", "a b", "A\n\r\t\b\a\\\"z"}}));
  // Not a \xHH escape: the backslash goes, the rest stays, as in Redis.
  EXPECT_EQ(feed("echo \"\\x4g\"\r\n").requests, (std::vector<Request>{{"echo", "x4g"}}));
  EXPECT_EQ(feed("echo \"\"\r\n").requests, (std::vector<Request>{{"echo", ""}}));
}

TEST(RespRequestParser, InlineSingleQuotesTakeOnlyEscapedQuote) {
  EXPECT_EQ(feed("echo 'a\\'b\\n'\r\n").requests, (std::vector<Request>{{"echo", "a'b\\n"}}));
}

TEST(RespRequestParser, InlineQuoteMayOpenInsideAWord) {
  EXPECT_EQ(feed("echo a\"b c\"\r\n").requests, (std::vector<Request>{{"echo", "ab c"}}));
}

TEST(RespRequestParser, InlineUnbalancedQuotesAreAProtocolError) {
  const std::string want = error_line("unbalanced quotes in request");
  EXPECT_EQ(feed("set \"a b\r\n").error, want);
  EXPECT_EQ(feed("set 'a\r\n").error, want);
  EXPECT_EQ(feed("set \"a\"b c\r\n").error, want);  // a closing quote must end the word
  EXPECT_EQ(feed("set 'a'b\r\n").error, want);
  EXPECT_EQ(feed("set \"a\\\"\r\n").error, want);  // the escaped quote does not close
}

TEST(RespRequestParser, InlineWordsEndOnlyWhereRedisEndsThem) {
  // Between words every isspace() byte is skipped, but a bare word ends only at ' ', '\t',
  // '\r' or '\n': a vertical tab inside one is kept.
  EXPECT_EQ(feed("echo \vx\v\r\n").requests, (std::vector<Request>{{"echo", "x\v"}}));
}

TEST(RespRequestParser, EmptyRequestsAreSkipped) {
  const Parsed parsed = feed("*0\r\n*-1\r\n\r\n  \r\n\nPING\r\n");
  EXPECT_EQ(parsed.requests, (std::vector<Request>{{"PING"}}));
  RequestParser parser;
  const RequestParser::Step step = parser.next("*0\r\n\r\n*1\r\n$4\r\nPI");
  EXPECT_EQ(step.status, RequestParser::Status::incomplete);
  EXPECT_EQ(step.used, 6u);  // the empty requests, not the unfinished one
}

TEST(RespRequestParser, PipelinedRequestsComeOutInOrder) {
  const std::string stream = cat({multibulk({"SET", "a", "1"}), "PING\r\n", multibulk({"GET", "a"}), "echo 'x y'\n"});
  EXPECT_EQ(feed(stream).requests, (std::vector<Request>{{"SET", "a", "1"}, {"PING"}, {"GET", "a"}, {"echo", "x y"}}));
}

TEST(RespRequestParser, IncompleteRequestUsesNothing) {
  RequestParser parser;
  const std::string full = multibulk({"GET", "key"});
  for (std::size_t size = 1; size < full.size(); ++size) {
    RequestParser fresh;
    const RequestParser::Step step = fresh.next(std::string_view(full).substr(0, size));
    EXPECT_EQ(step.status, RequestParser::Status::incomplete) << size;
    EXPECT_EQ(step.used, 0u) << size;
  }
  EXPECT_EQ(parser.next("PIN").used, 0u);
}

TEST(RespRequestParser, EveryCutGivesTheSameRequests) {
  const std::string stream = cat({multibulk({"SET", "key", std::string("v\r\n\0", 4)}), "PING\r\n", "*0\r\n", "\r\n",
                                  "set \"a b\" 'c'\r\n", multibulk({"MGET", "a", "b", ""}), multibulk({"LPUSH"})});
  const Parsed whole = feed(stream);
  ASSERT_EQ(whole.requests.size(), 5u);
  for (std::size_t cut = 1; cut < stream.size(); ++cut)
    EXPECT_EQ(feed(stream, {cut, SIZE_MAX}), whole) << "cut at " << cut;
  EXPECT_EQ(feed(stream, {1}), whole);
}

TEST(RespRequestParser, ErrorsDoNotDependOnCuts) {
  for (std::string_view stream : {"PING\r\n*1\r\n$3\r\nGET\r\n*2\r\nx", "*1\r\n$4\r\nPING\r\n*1\r\n$-5\r\n",
                                  "get a\r\nset \"x\r\n", "*123456789012345678901\r\n"}) {
    const Parsed whole = feed(stream);
    ASSERT_FALSE(whole.error.empty()) << stream;
    for (std::size_t cut = 1; cut < stream.size(); ++cut)
      EXPECT_EQ(feed(stream, {cut, SIZE_MAX}), whole) << stream << " cut at " << cut;
    EXPECT_EQ(feed(stream, {1}), whole) << stream;
  }
}

// --- malformed requests, with Redis's exact words ---------------------------------------

TEST(RespRequestParser, BadCountIsInvalidMultibulkLength) {
  const std::string want = error_line("invalid multibulk length");
  for (std::string_view stream :
       {"*x\r\n", "*\r\n", "*01\r\n", "*+1\r\n", "*1 \r\n", "*-0\r\n", "*2147483648\r\n", "*1\nX$4\r\nPING\r\n"})
    EXPECT_EQ(feed(stream).error, want) << stream;
}

TEST(RespRequestParser, CountUpToIntMaxIsAcceptedAsRedisDoes) {
  Limits limits;
  limits.max_args = SIZE_MAX;
  const Parsed parsed = feed("*2147483647\r\n", {SIZE_MAX}, limits);
  EXPECT_TRUE(parsed.error.empty());
  EXPECT_EQ(parsed.kept, 13u);  // waiting for arguments
}

TEST(RespRequestParser, BulkHeaderMustStartWithDollar) {
  EXPECT_EQ(feed("*1\r\nx").error, error_line("expected '$', got 'x'"));
  EXPECT_EQ(feed("*2\r\n$1\r\na\r\n:1\r\n").error, error_line("expected '$', got ':'"));
  // A line break is shown as a space, keeping the error on one line.
  EXPECT_EQ(feed("*1\r\n\r\n").error, error_line("expected '$', got ' '"));
}

TEST(RespRequestParser, BadBulkLengthIsInvalidBulkLength) {
  const std::string want = error_line("invalid bulk length");
  for (std::string_view stream : {"*1\r\n$x\r\n", "*1\r\n$-1\r\n", "*1\r\n$\r\n", "*1\r\n$01\r\n",
                                  "*1\r\n$600000000\r\n", "*1\r\n$99999999999999999999\r\n"})
    EXPECT_EQ(feed(stream).error, want) << stream;
}

TEST(RespRequestParser, LengthLineWithoutEndIsRefusedPastTwentyCharacters) {
  // No int64 has more than 20 characters, so the 21st without a '\r' settles it.
  EXPECT_TRUE(feed(cat({"*1\r\n$", std::string(20, '1')})).error.empty());
  EXPECT_EQ(feed(cat({"*1\r\n$", std::string(21, '1')})).error, error_line("invalid bulk length"));
  EXPECT_TRUE(feed(cat({"*", std::string(20, '1')})).error.empty());
  EXPECT_EQ(feed(cat({"*", std::string(21, '1')})).error, error_line("invalid multibulk length"));
}

TEST(RespRequestParser, LengthLineWithANonDigitIsRefusedAtOnce) {
  // No '\r' can make "1x" a number: refused without waiting for the end of the line.
  EXPECT_EQ(feed("*1\r\n$1x").error, error_line("invalid bulk length"));
  EXPECT_EQ(feed("*2x").error, error_line("invalid multibulk length"));
  EXPECT_EQ(feed("*1\r\n$-").error, "");  // "-1" is still possible, if refused later
}

TEST(RespRequestParser, WholeRequestsMeetTheSameLimitsAsPartialOnes) {
  // A request present in full is read by a faster path; the limits and words must not change.
  Limits limits;
  limits.max_args = 2;
  limits.max_bulk = 5;
  limits.max_request = 25;
  EXPECT_EQ(feed(multibulk({"a", "b", "c"}), {SIZE_MAX}, limits).error, error_line("invalid multibulk length"));
  EXPECT_EQ(feed(multibulk({"hello!"}), {SIZE_MAX}, limits).error, error_line("invalid bulk length"));
  EXPECT_EQ(feed(multibulk({"12345", "12345"}), {SIZE_MAX}, limits).error, error_line("too big multibulk request"));
  EXPECT_EQ(feed(multibulk({"12345", "1234"}), {SIZE_MAX}, limits).requests.size(), 1u);  // 25 bytes
}

TEST(RespRequestParser, ByteAfterHeaderCarriageReturnIsNotChecked) {
  // Redis skips the byte where '\n' belongs, and the two after a bulk, unread.
  EXPECT_EQ(feed("*1\rX$4\rXPINGXY").requests, (std::vector<Request>{{"PING"}}));
}

TEST(RespRequestParser, ErrorIsSticky) {
  RequestParser parser;
  EXPECT_EQ(parser.next("*x\r\n").status, RequestParser::Status::error);
  EXPECT_EQ(parser.next("PING\r\n").status, RequestParser::Status::error);
  parser.reset();
  EXPECT_EQ(parser.next("PING\r\n").status, RequestParser::Status::request);
}

// --- limits -----------------------------------------------------------------------------

TEST(RespRequestParser, InlineLineAtTheLimitIsAccepted) {
  Limits limits;
  limits.max_inline = 16;
  const std::string line = cat({"echo ", std::string(10, 'x'), "\r"});  // 16 bytes before '\n'
  EXPECT_EQ(feed(line + "\n", {SIZE_MAX}, limits).requests, (std::vector<Request>{{"echo", std::string(10, 'x')}}));
  EXPECT_TRUE(feed(line, {SIZE_MAX}, limits).error.empty());  // unfinished, still possible
}

TEST(RespRequestParser, InlineLinePastTheLimitIsRefusedFinishedOrNot) {
  Limits limits;
  limits.max_inline = 16;
  const std::string want = error_line("too big inline request");
  const std::string line = cat({"echo ", std::string(12, 'x')});  // 17 bytes
  EXPECT_EQ(feed(line, {SIZE_MAX}, limits).error, want);
  EXPECT_EQ(feed(line + "\r\n", {SIZE_MAX}, limits).error, want);
  EXPECT_EQ(feed(line + "\r\n", {1}, limits).error, want);
}

TEST(RespRequestParser, DefaultInlineLimitIsRedis64KiB) {
  EXPECT_EQ(Limits{}.max_inline, 64u * 1024);
  EXPECT_EQ(feed(std::string(64 * 1024 + 1, 'a')).error, error_line("too big inline request"));
}

TEST(RespRequestParser, TooManyArgumentsIsInvalidMultibulkLength) {
  Limits limits;
  limits.max_args = 3;
  EXPECT_EQ(feed(multibulk({"a", "b", "c"}), {SIZE_MAX}, limits).requests.size(), 1u);
  EXPECT_EQ(feed("*4\r\n", {SIZE_MAX}, limits).error, error_line("invalid multibulk length"));
}

TEST(RespRequestParser, BulkPastTheLimitIsInvalidBulkLength) {
  Limits limits;
  limits.max_bulk = 5;
  EXPECT_EQ(feed(multibulk({"hello"}), {SIZE_MAX}, limits).requests.size(), 1u);
  EXPECT_EQ(feed("*1\r\n$6\r\n", {SIZE_MAX}, limits).error, error_line("invalid bulk length"));
}

TEST(RespRequestParser, RequestPastTheLimitIsTooBig) {
  Limits limits;
  limits.max_request = 40;
  const std::string fits = multibulk({"SET", "key", std::string(11, 'v')});  // 40 bytes
  ASSERT_EQ(fits.size(), 40u);
  EXPECT_EQ(feed(fits, {SIZE_MAX}, limits).requests.size(), 1u);
  // Refused as soon as the header announcing the excess arrives, before its bytes do.
  EXPECT_EQ(feed("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$12\r\n", {SIZE_MAX}, limits).error,
            error_line("too big multibulk request"));
}

TEST(RespRequestParser, KeptBytesStayUnderMaxKeptInput) {
  Limits limits;
  limits.max_inline = 32;
  limits.max_request = 64;
  limits.max_bulk = 50;
  RequestParser parser(limits);
  // An unfinished request as large as the limits let it be, fed a byte at a time.
  const Parsed parsed =
      feed(parser, cat({"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$30\r\n", std::string(30, 'v'), "\r\n*1\r\n$1"}), {1});
  EXPECT_TRUE(parsed.error.empty());
  EXPECT_LE(parsed.most_kept, parser.max_kept_input());
  EXPECT_GE(parser.max_kept_input(), limits.max_request);
}

// --- cost -------------------------------------------------------------------------------

TEST(RespRequestParser, InlineLineTricklingInIsScannedOnce) {
  const std::string line = cat({"set k ", std::string(64 * 1024 - 8, 'v'), "\r\n"});  // 64 KiB
  RequestParser parser;
  const Parsed parsed = feed(parser, line, {1});
  ASSERT_EQ(parsed.requests.size(), 1u);
  // Searched for '\n' once, split once: about twice its size. Re-scanning from the start at
  // every byte would be 2^31 bytes.
  EXPECT_LE(parser.bytes_examined(), 3 * line.size());
}

TEST(RespRequestParser, MultibulkTricklingInIsReadOnce) {
  Request args(2000, "value");
  args[0] = "RPUSH";
  const std::string stream = multibulk(args);
  RequestParser parser;
  const Parsed parsed = feed(parser, stream, {1});
  ASSERT_EQ(parsed.requests.size(), 1u);
  // Each call resumes at the argument it stopped in: no header is read twice over.
  EXPECT_LE(parser.bytes_examined(), 3 * stream.size());
}

}  // namespace
}  // namespace iomux::resp
