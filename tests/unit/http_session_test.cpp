#include "protocols/http/session.hpp"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "protocols/http/date_cache.hpp"

namespace iomux::http {
namespace {

constexpr std::time_t kNow = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
constexpr std::string_view kDate = "Sun, 06 Nov 1994 08:49:37 GMT";

// Plays the connection layer: keeps what process() did not consume and presents it again with
// the next bytes appended, and stops feeding once the session asked to close.
struct Connection {
  explicit Connection(Options options = {}) : service(std::move(options)), session(service) {}

  // Returns false once the session asked to close.
  bool feed(std::string_view bytes) {
    if (closed) return false;
    kept.append(bytes);
    const Result r = session.process(kept, out, kNow);
    EXPECT_LE(r.consumed, kept.size());
    requests += r.requests;
    kept.erase(0, r.consumed);
    EXPECT_LE(kept.size(), session.max_kept_input());
    closed = r.close;
    return !closed;
  }

  Service service;
  Session session;
  std::string kept;
  std::string out;
  std::size_t requests = 0;
  bool closed = false;
};

struct Response {
  std::string status_line;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;

  [[nodiscard]] int status() const { return std::stoi(status_line.substr(9, 3)); }
  [[nodiscard]] std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  [[nodiscard]] bool has(const std::string& name) const { return headers.count(name) != 0; }
};

// Takes one response off the front of `out`. A response to HEAD has a Content-Length but no body.
Response take_response(std::string_view& out, bool head_request = false) {
  Response response;
  const std::size_t head_end = out.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    ADD_FAILURE() << "no complete response head in: " << out;
    out = {};
    return response;
  }
  std::string_view head = out.substr(0, head_end + 2);
  std::size_t line_end = head.find("\r\n");
  response.status_line = std::string(head.substr(0, line_end));
  head.remove_prefix(line_end + 2);
  while (!head.empty()) {
    line_end = head.find("\r\n");
    const std::string_view line = head.substr(0, line_end);
    const std::size_t colon = line.find(':');
    std::string name(line.substr(0, colon));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    response.headers[name] = std::string(value);
    head.remove_prefix(line_end + 2);
  }
  out.remove_prefix(head_end + 4);
  if (response.status_line.substr(9, 1) == "1") return response;  // 1xx: no body, no length
  const std::size_t length = response.has("content-length") ? std::stoul(response.header("content-length")) : 0;
  if (!head_request) {
    EXPECT_GE(out.size(), length);
    response.body = std::string(out.substr(0, length));
    out.remove_prefix(std::min(length, out.size()));
  }
  return response;
}

std::vector<Response> take_all(std::string_view out) {
  std::vector<Response> responses;
  while (!out.empty()) responses.push_back(take_response(out));
  return responses;
}

Response only_response(const Connection& c, bool head_request = false) {
  std::string_view out = c.out;
  Response response = take_response(out, head_request);
  EXPECT_TRUE(out.empty()) << "more than one response: " << c.out;
  return response;
}

std::string get(std::string_view target, std::string_view extra_headers = "") {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n" + std::string(extra_headers) + "\r\n";
}

std::string post(std::string_view target, std::string_view body, std::string_view extra = "") {
  return "POST " + std::string(target) + " HTTP/1.1\r\nHost: test\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n" + std::string(extra) + "\r\n" + std::string(body);
}

std::string chunked_post(std::string_view target, std::string_view encoded_body, std::string_view extra = "") {
  return "POST " + std::string(target) + " HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n" +
         std::string(extra) + "\r\n" + std::string(encoded_body);
}

// Feeds `stream` whole to a fresh connection and returns what it answered.
std::string answer_whole(std::string_view stream, Options options = {}) {
  Connection c(std::move(options));
  c.feed(stream);
  return c.out;
}

// --- routes -----------------------------------------------------------------------------------

TEST(HttpRoutes, RootAnswersTheTutorialReply) {
  Connection c;
  EXPECT_TRUE(c.feed(get("/")));
  const Response r = only_response(c);
  EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(r.header("content-type"), "text/plain");
  EXPECT_EQ(r.body, "----ok----Request accepted");
  EXPECT_EQ(c.requests, 1u);
  EXPECT_TRUE(c.kept.empty());
}

TEST(HttpRoutes, RootAnswersTheConfiguredReply) {
  Options options;
  options.reply = "hi";
  Connection c(options);
  c.feed(get("/"));
  EXPECT_EQ(only_response(c).body, "hi");
}

TEST(HttpRoutes, PlaintextFollowsTheTechEmpowerRules) {
  Connection c;
  c.feed(get("/plaintext"));
  EXPECT_EQ(c.out,
            "HTTP/1.1 200 OK\r\n"
            "Server: iomux\r\n"
            "Content-Type: text/plain\r\n"
            "Content-Length: 13\r\n"
            "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
            "\r\n"
            "Hello, World!");
}

TEST(HttpRoutes, EchoReturnsThePostedBodyByteForByte) {
  Connection c;
  const std::string body("\0\r\n\r\nbinary\xff", 13);
  EXPECT_TRUE(c.feed(post("/echo", body)));
  const Response r = only_response(c);
  EXPECT_EQ(r.status(), 200);
  EXPECT_EQ(r.header("content-type"), "application/octet-stream");
  EXPECT_EQ(r.body, body);
}

TEST(HttpRoutes, EchoOfAnEmptyBody) {
  Connection c;
  c.feed(post("/echo", ""));
  const Response r = only_response(c);
  EXPECT_EQ(r.status(), 200);
  EXPECT_EQ(r.header("content-length"), "0");
}

TEST(HttpRoutes, EchoOfOneMebibyteFitsTheDefaultLimit) {
  Connection c;
  std::string body(1024 * 1024, 'x');
  for (std::size_t i = 0; i < body.size(); i += 4096) body[i] = static_cast<char>('a' + i % 26);
  EXPECT_TRUE(c.feed(post("/echo", body)));
  EXPECT_EQ(only_response(c).body, body);
}

TEST(HttpRoutes, StatsAnswersTheCallbacksJson) {
  Options options;
  options.stats = [] { return nlohmann::json{{"requests", 42}, {"model", "epoll"}}; };
  Connection c(options);
  c.feed(get("/stats"));
  const Response r = only_response(c);
  EXPECT_EQ(r.status(), 200);
  EXPECT_EQ(r.header("content-type"), "application/json");
  const nlohmann::json json = nlohmann::json::parse(r.body);
  EXPECT_EQ(json.at("requests"), 42);
  EXPECT_EQ(json.at("model"), "epoll");
}

TEST(HttpRoutes, StatsWithoutACallbackIsAnEmptyObject) {
  Connection c;
  c.feed(get("/stats"));
  const Response r = only_response(c);
  EXPECT_EQ(r.body, "{}");
  EXPECT_TRUE(nlohmann::json::parse(r.body).empty());
}

TEST(HttpRoutes, UnknownTargetIs404AndTheConnectionStays) {
  Connection c;
  EXPECT_TRUE(c.feed(get("/nope")));
  EXPECT_TRUE(c.feed(get("/")));
  const auto responses = take_all(c.out);
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(responses[0].status(), 404);
  EXPECT_FALSE(responses[0].has("connection"));
  EXPECT_EQ(responses[1].status(), 200);
}

TEST(HttpRoutes, WrongMethodOnAKnownRouteIs405WithAllow) {
  struct Case {
    std::string request;
    std::string allow;
  };
  const Case cases[] = {
      {post("/", "x"), "GET, HEAD"},
      {post("/plaintext", ""), "GET, HEAD"},
      {"DELETE /stats HTTP/1.1\r\nHost: t\r\n\r\n", "GET, HEAD"},
      {get("/echo"), "POST"},
      {"PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx", "POST"},
  };
  for (const Case& test : cases) {
    Connection c;
    EXPECT_TRUE(c.feed(test.request)) << test.request;
    const Response r = only_response(c);
    EXPECT_EQ(r.status(), 405) << test.request;
    EXPECT_EQ(r.header("allow"), test.allow) << test.request;
  }
}

TEST(HttpRoutes, QueryIsIgnoredAndAbsoluteFormRoutesByPath) {
  Connection c;
  c.feed(get("/plaintext?x=1&y=2"));
  c.feed(get("http://test:8080/plaintext"));
  c.feed(get("http://test"));
  const auto responses = take_all(c.out);
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_EQ(responses[0].body, "Hello, World!");
  EXPECT_EQ(responses[1].body, "Hello, World!");
  EXPECT_EQ(responses[2].body, "----ok----Request accepted");
}

TEST(HttpRoutes, HeadGetsTheGetHeadersWithoutTheBody) {
  Options options;
  options.stats = [] { return nlohmann::json{{"a", 1}}; };
  for (std::string target : {"/", "/plaintext", "/stats", "/nope"}) {
    Connection with_get(options);
    with_get.feed(get(target));
    Connection with_head(options);
    EXPECT_TRUE(with_head.feed("HEAD " + target + " HTTP/1.1\r\nHost: t\r\n\r\n"));
    const Response g = only_response(with_get);
    const Response h = only_response(with_head, true);
    EXPECT_EQ(h.status_line, g.status_line) << target;
    EXPECT_EQ(h.headers, g.headers) << target;
    EXPECT_EQ(with_head.out.size(), with_get.out.size() - g.body.size()) << target;
  }
}

TEST(HttpRoutes, HeadOfEchoIs405) {
  Connection c;
  c.feed("HEAD /echo HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(only_response(c, true).status(), 405);
}

// --- keep-alive -------------------------------------------------------------------------------

TEST(HttpKeepAlive, Http11StaysOpenByDefaultWithoutAConnectionHeader) {
  Connection c;
  EXPECT_TRUE(c.feed(get("/plaintext")));
  EXPECT_FALSE(only_response(c).has("connection"));
}

TEST(HttpKeepAlive, Http11ConnectionCloseIsAnsweredThenClosed) {
  Connection c;
  EXPECT_FALSE(c.feed(get("/plaintext", "Connection: close\r\n") + get("/")));
  const Response r = only_response(c);  // the pipelined GET / is not answered
  EXPECT_EQ(r.status(), 200);
  EXPECT_EQ(r.header("connection"), "close");
}

TEST(HttpKeepAlive, Http10ClosesByDefault) {
  Connection c;
  EXPECT_FALSE(c.feed("GET /plaintext HTTP/1.0\r\n\r\n"));
  const Response r = only_response(c);
  EXPECT_EQ(r.body, "Hello, World!");
  EXPECT_EQ(r.header("connection"), "close");
}

TEST(HttpKeepAlive, Http10KeepAliveIsHonouredAndSaidSo) {
  // What `ab -k` sends.
  const std::string request =
      "GET /plaintext HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: t\r\nUser-Agent: ab\r\n"
      "Accept: */*\r\n\r\n";
  Connection c;
  EXPECT_TRUE(c.feed(request));
  EXPECT_TRUE(c.feed(request));
  const auto responses = take_all(c.out);
  ASSERT_EQ(responses.size(), 2u);
  for (const Response& r : responses) EXPECT_EQ(r.header("connection"), "keep-alive");
}

// --- pipelining and framing -------------------------------------------------------------------

TEST(HttpPipelining, HundredRequestsInOneInputAreAnsweredInOrder) {
  std::string input;
  for (int i = 0; i < 100; ++i) input += post("/echo", "request " + std::to_string(i));
  Connection c;
  EXPECT_TRUE(c.feed(input));
  EXPECT_EQ(c.requests, 100u);
  const auto responses = take_all(c.out);
  ASSERT_EQ(responses.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(responses[i].body, "request " + std::to_string(i));
}

TEST(HttpPipelining, AnUnfinishedRequestBehindCompleteOnesIsKept) {
  Connection c;
  const std::string second = get("/");
  EXPECT_TRUE(c.feed(get("/plaintext") + second.substr(0, 10)));
  EXPECT_EQ(c.requests, 1u);
  EXPECT_EQ(c.kept, second.substr(0, 10));
  EXPECT_TRUE(c.session.head_pending());
  EXPECT_TRUE(c.feed(second.substr(10)));
  EXPECT_EQ(c.requests, 2u);
  EXPECT_TRUE(c.kept.empty());
  EXPECT_FALSE(c.session.head_pending());
}

TEST(HttpPipelining, EmptyLinesBetweenRequestsAreSkipped) {
  Connection c;
  EXPECT_TRUE(c.feed("\r\n\r\n" + get("/") + "\r\n" + post("/echo", "x") + "\r\n"));
  EXPECT_EQ(c.requests, 2u);
  EXPECT_TRUE(c.kept.empty());
  EXPECT_FALSE(c.session.head_pending());
}

TEST(HttpPipelining, EmptyLinesMayBeBareLineFeedsOrCarriageReturns) {
  Connection c;
  EXPECT_TRUE(c.feed("\n\r\r\n" + get("/plaintext")));
  EXPECT_EQ(only_response(c).body, "Hello, World!");
}

// The streams of the split tests: every kind of framing a request can have.
std::vector<std::string> framing_streams() {
  return {
      get("/plaintext") + get("/"),
      post("/echo", "hello\r\n\r\nworld") + get("/plaintext"),
      chunked_post("/echo", "5\r\nhello\r\n1;name=value\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n") + get("/"),
      post("/echo", "expected", "Expect: 100-continue\r\n") + get("/"),
      "\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /x HTTP/1.0\r\n\r\n",
      get("/") + "GET / HTTP/2.0\r\nHost: t\r\n\r\n",
  };
}

TEST(HttpFraming, RequestsSplitAtEveryByteBoundaryGiveTheSameResponses) {
  for (const std::string& stream : framing_streams()) {
    const std::string whole = answer_whole(stream);
    ASSERT_FALSE(whole.empty());
    for (std::size_t cut = 1; cut < stream.size(); ++cut) {
      Connection c;
      c.feed(stream.substr(0, cut));
      c.feed(stream.substr(cut));
      EXPECT_EQ(c.out, whole) << "cut at " << cut << " of:\n" << stream;
    }
  }
}

TEST(HttpFraming, RequestsFedByteByByteGiveTheSameResponses) {
  for (const std::string& stream : framing_streams()) {
    Connection c;
    for (char byte : stream) c.feed(std::string_view(&byte, 1));
    EXPECT_EQ(c.out, answer_whole(stream)) << stream;
  }
}

TEST(HttpFraming, ABodyIsWaitedForWithoutConsumingTheHead) {
  Connection c;
  const std::string request = post("/echo", "0123456789");
  EXPECT_TRUE(c.feed(request.substr(0, request.size() - 3)));
  EXPECT_TRUE(c.out.empty());
  EXPECT_EQ(c.kept.size(), request.size() - 3);
  EXPECT_FALSE(c.session.head_pending());  // the head is complete: the body is what is late
  EXPECT_TRUE(c.feed(request.substr(request.size() - 3)));
  EXPECT_EQ(only_response(c).body, "0123456789");
}

// --- chunked bodies ---------------------------------------------------------------------------

TEST(HttpChunked, SeveralChunksAreDecodedAndEchoed) {
  Connection c;
  EXPECT_TRUE(c.feed(chunked_post("/echo", "3\r\nabc\r\nA\r\n0123456789\r\n1\r\nz\r\n0\r\n\r\n")));
  EXPECT_EQ(only_response(c).body, "abc0123456789z");
}

TEST(HttpChunked, ExtensionsAndTrailersAreAccepted) {
  Connection c;
  EXPECT_TRUE(c.feed(
      chunked_post("/echo", "4;a;b=c\r\nwiki\r\n5;x=\"y z\"\r\npedia\r\n0;last\r\nExpires: never\r\nX-A: b\r\n\r\n")));
  EXPECT_EQ(only_response(c).body, "wikipedia");
}

TEST(HttpChunked, PipelinedRequestAfterAChunkedBodyIsAnswered) {
  Connection c;
  EXPECT_TRUE(c.feed(chunked_post("/echo", "2\r\nhi\r\n0\r\n\r\n") + get("/plaintext")));
  const auto responses = take_all(c.out);
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(responses[0].body, "hi");
  EXPECT_EQ(responses[1].body, "Hello, World!");
}

TEST(HttpChunked, BodyGrowingPastMaxBodyIs413) {
  Options options;
  options.max_body = 100;
  Connection c(options);
  std::string chunks;
  for (int i = 0; i < 20; ++i) chunks += "8\r\n01234567\r\n";
  EXPECT_FALSE(c.feed(chunked_post("/echo", chunks)));
  const Response r = only_response(c);
  EXPECT_EQ(r.status(), 413);
  EXPECT_EQ(r.header("connection"), "close");
}

TEST(HttpChunked, BodyJustUnderMaxBodyIsAccepted) {
  Options options;
  options.max_body = 100;
  Connection c(options);
  // 6 chunks of 8: 13 bytes each, then "0\r\n\r\n": 83 bytes of framing and data.
  std::string chunks;
  for (int i = 0; i < 6; ++i) chunks += "8\r\n01234567\r\n";
  EXPECT_TRUE(c.feed(chunked_post("/echo", chunks + "0\r\n\r\n")));
  EXPECT_EQ(only_response(c).body.size(), 48u);
}

TEST(HttpChunked, MalformedChunkSizeIs400) {
  Connection c;
  EXPECT_FALSE(c.feed(chunked_post("/echo", "zz\r\nhello\r\n0\r\n\r\n")));
  EXPECT_EQ(only_response(c).status(), 400);
}

// --- limits and refusals ----------------------------------------------------------------------

struct Refusal {
  std::string name;
  std::string request;
  int status;
};

std::vector<Refusal> refusals() {
  const std::string long_target = "/" + std::string(8 * 1024, 'a');
  return {
      {"malformed request line", "GET / HTTP/1.1 extra\r\nHost: t\r\n\r\n", 400},
      {"malformed header", "GET / HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n", 400},
      {"space before colon", "GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400},
      {"missing Host on 1.1", "GET / HTTP/1.1\r\n\r\n", 400},
      {"two Host lines", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"invalid Content-Length", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n", 400},
      {"two Content-Lengths", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"Transfer-Encoding with Content-Length",
       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400},
      {"chunked twice", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 501},
      {"chunked on HTTP/1.0", "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"binary garbage", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11), 400},
      {"lower-case version", "GET / http/1.1\r\nHost: t\r\n\r\n", 400},
      {"Content-Length over max_body", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1114113\r\n\r\n", 413},
      {"huge Content-Length", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999\r\n\r\n", 413},
      {"target over max_uri", "GET " + long_target + " HTTP/1.1\r\nHost: t\r\n\r\n", 414},
      {"request line without end", "GET " + long_target + long_target, 414},
      {"head over max_head", "GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(20 * 1024, 'b') + "\r\n\r\n", 431},
      {"many headers",
       "GET / HTTP/1.1\r\nHost: t\r\n" +
           [] {
             std::string headers;
             for (int i = 0; i < 2000; ++i) headers += "X-" + std::to_string(i) + ": v\r\n";
             return headers;
           }() +
           "\r\n",
       431},
      {"gzip transfer coding", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {"gzip then chunked", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"unknown method", "BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n", 501},
      {"lower-case method (nginx: 400)", "get / HTTP/1.1\r\nHost: t\r\n\r\n", 400},
      {"method longer than any", "VERYVERYLONGMETHOD / HTTP/1.1\r\nHost: t\r\n\r\n", 501},
      {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505},
      {"HTTP/0.9 style line", "GET /\r\n\r\n", 505},
      {"HTTP/3.1", "GET / HTTP/3.1\r\nHost: t\r\n\r\n", 505},
      {"HTTP/2.0 line before a malformed field", "GET / HTTP/2.0\r\nno colon\r\n\r\n", 505},
      {"HTTP/2.0 line before an oversized head", "GET / HTTP/2.0\r\nX-Big: " + std::string(20 * 1024, 'b') + "\r\n\r\n",
       505},
      {"head ended by CR and another byte (http_parser, not strict, took it for CRLF)",
       "GET / HTTP/1.1\r\nHost: t\r\n\rX\r\n\r\n", 400},
      {"field line ended by CR and another byte, a request hidden behind it",
       "GET / HTTP/1.1\r\nHost: t\r\nX: \r\xa2\r\nGET /echo HTTP/1.1\r\nHost: t\r\n\r\n", 400},
      {"version 0.1 line before an ambiguous head end (found by the fuzzer)",
       "GET /x HTTP/0.1\r\nHost: \r\xa2\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n", 505},
      {"HTTP/0.9 line with a target over max_uri (found by the fuzzer)",
       "GET /" + std::string(8 * 1024, 'a') + "\nHost: t\n\n", 414},
      {"a line's \\n taken for the / of HTTP/ (http_parser, not strict, did; found by the fuzzer)",
       "GET / HTTP\n1./H\r\nHost: t\r\n\r\n", 400},
      {"malformed line before an oversized head", "GET / FTP/1.1\r\nX-Big: " + std::string(20 * 1024, 'b') + "\r\n\r\n",
       400},
  };
}

TEST(HttpLimits, EachRefusalHasItsStatusAndCloses) {
  for (const Refusal& test : refusals()) {
    Connection c;
    EXPECT_FALSE(c.feed(test.request)) << test.name;
    EXPECT_TRUE(c.kept.empty()) << test.name;  // everything is consumed: nothing more is read
    const Response r = only_response(c);
    EXPECT_EQ(r.status(), test.status) << test.name;
    EXPECT_EQ(r.header("connection"), "close") << test.name;
    EXPECT_EQ(r.header("content-type"), "text/plain") << test.name;
    EXPECT_EQ(r.body.substr(0, 3), std::to_string(test.status)) << test.name;
    EXPECT_EQ(c.requests, 0u) << test.name;
  }
}

TEST(HttpLimits, RefusalsDoNotDependOnHowTheRequestIsCut) {
  for (const Refusal& test : refusals()) {
    const std::string whole = answer_whole(test.request);
    for (std::size_t step : {1u, 7u, 1000u}) {
      Connection c;
      for (std::size_t at = 0; at < test.request.size() && !c.closed; at += step)
        c.feed(std::string_view(test.request).substr(at, step));
      EXPECT_TRUE(c.closed) << test.name << " in steps of " << step;
      EXPECT_EQ(c.out, whole) << test.name << " in steps of " << step;
    }
  }
}

TEST(HttpLimits, ResponsesBeforeARefusalComeFirst) {
  Connection c;
  EXPECT_FALSE(c.feed(get("/") + get("/plaintext") + "GET / HTTP/2.0\r\nHost: t\r\n\r\n" + get("/")));
  const auto responses = take_all(c.out);
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_EQ(responses[0].status(), 200);
  EXPECT_EQ(responses[1].status(), 200);
  EXPECT_EQ(responses[2].status(), 505);
  EXPECT_EQ(c.requests, 2u);
}

TEST(HttpLimits, GarbageIsRefusedWithoutWaitingForAHead) {
  Connection c;
  EXPECT_FALSE(c.feed("\x01"));
  EXPECT_EQ(only_response(c).status(), 400);
}

TEST(HttpLimits, ARequestLineIsJudgedBeforeItsHeadIsComplete) {
  struct Case {
    std::string line;
    int status;
  };
  // An HTTP/0.9 client sends its line and waits; so may a broken client.
  const Case cases[] = {
      {"GET /\r\n", 505},
      {"GET / HTTP/2.0\r\n", 505},
      {"GET / FTP/1.1\r\n", 400},
      {"BREW /pot HTTP/1.1\r\n", 501},
      {"GET /" + std::string(8 * 1024, 'a') + " HTTP/1.1\r\n", 414},
  };
  for (const Case& test : cases) {
    Connection c;
    EXPECT_FALSE(c.feed(test.line)) << test.line;
    EXPECT_EQ(only_response(c).status(), test.status) << test.line;
  }
  Connection fine;
  EXPECT_TRUE(fine.feed("GET / HTTP/1.1\r\n"));
  EXPECT_TRUE(fine.out.empty());
  EXPECT_TRUE(fine.session.head_pending());
}

TEST(HttpLimits, AnOverlongRequestLineIsRefusedBeforeItEnds) {
  Connection c;
  EXPECT_TRUE(c.feed("GET /"));
  std::size_t fed = 5;
  while (c.feed(std::string(1024, 'a'))) fed += 1024;
  EXPECT_LE(fed, 8 * 1024 + 64 + 1024);
  EXPECT_EQ(only_response(c).status(), 414);
}

TEST(HttpLimits, AHeadOfExactlyMaxHeadIsAcceptedAndOneMoreByteIsNot) {
  Options options;
  options.max_head = 300;
  const std::string start = "GET / HTTP/1.1\r\nHost: t\r\nX-Pad: ";
  const std::string pad(300 - start.size() - 4, 'p');
  {
    Connection c(options);
    EXPECT_TRUE(c.feed(start + pad + "\r\n\r\n"));
    EXPECT_EQ(only_response(c).status(), 200);
  }
  {
    Connection c(options);
    EXPECT_FALSE(c.feed(start + pad + "p\r\n\r\n"));
    EXPECT_EQ(only_response(c).status(), 431);
  }
}

TEST(HttpLimits, ABodyOfExactlyMaxBodyIsAcceptedAndOneMoreByteIsNot) {
  Options options;
  options.max_body = 10;
  Connection fits(options);
  EXPECT_TRUE(fits.feed(post("/echo", "0123456789")));
  EXPECT_EQ(only_response(fits).status(), 200);
  Connection too_big(options);
  EXPECT_FALSE(too_big.feed(post("/echo", "0123456789A")));
  EXPECT_EQ(only_response(too_big).status(), 413);
}

TEST(HttpLimits, ContentLengthOverMaxBodyIsRefusedBeforeTheBodyArrives) {
  Connection c;
  EXPECT_FALSE(c.feed("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n"));
  EXPECT_EQ(only_response(c).status(), 413);
}

TEST(HttpLimits, KeptInputStaysWithinMaxKeptInput) {
  Options options;
  options.max_head = 200;
  options.max_body = 100;
  Connection c(options);
  EXPECT_EQ(c.session.max_kept_input(), 300u);
  // A head at its limit, then a body one byte short: the most a connection keeps.
  const std::string start = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\nX-Pad: ";
  const std::string head = start + std::string(200 - start.size() - 4, 'p') + "\r\n\r\n";
  ASSERT_EQ(head.size(), 200u);
  const std::string request = head + std::string(100, 'b');
  for (std::size_t i = 0; i + 1 < request.size(); ++i) EXPECT_TRUE(c.feed(request.substr(i, 1)));
  EXPECT_EQ(c.kept.size(), 299u);  // Connection::feed checks the bound after every call
  EXPECT_TRUE(c.feed(request.substr(request.size() - 1)));
  EXPECT_EQ(c.requests, 1u);
}

// --- Expect: 100-continue ---------------------------------------------------------------------

TEST(HttpExpectContinue, ContinueIsSentWhenTheHeadIsAcceptedBeforeTheBody) {
  Connection c;
  const std::string head = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
  EXPECT_TRUE(c.feed(head));
  EXPECT_EQ(c.out, "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_TRUE(c.feed("hello"));
  std::string_view out = c.out;
  EXPECT_EQ(take_response(out).status(), 100);
  const Response r = take_response(out);
  EXPECT_EQ(r.status(), 200);
  EXPECT_EQ(r.body, "hello");
  EXPECT_TRUE(out.empty());
}

TEST(HttpExpectContinue, ContinueIsSentOnceEvenWhenTheBodyTrickles) {
  Connection c;
  const std::string request = chunked_post("/echo", "3\r\nabc\r\n0\r\n\r\n", "Expect: 100-Continue\r\n");
  for (char byte : request) c.feed(std::string_view(&byte, 1));
  const auto responses = take_all(c.out);
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(responses[0].status_line, "HTTP/1.1 100 Continue");
  EXPECT_EQ(responses[1].body, "abc");
}

TEST(HttpExpectContinue, ATooLargeBodyIsRefusedInsteadOfContinued) {
  Connection c;
  EXPECT_FALSE(c.feed("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n"));
  EXPECT_EQ(only_response(c).status(), 413);
}

TEST(HttpExpectContinue, Http10ExpectationIsIgnored) {
  Connection c;
  EXPECT_TRUE(
      c.feed("POST /echo HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n"
             "Connection: keep-alive\r\n\r\n"));
  EXPECT_TRUE(c.out.empty());
}

TEST(HttpExpectContinue, NoContinueWithoutABody) {
  Connection c;
  c.feed(get("/", "Expect: 100-continue\r\n"));
  EXPECT_EQ(only_response(c).status(), 200);
}

// --- work and timing --------------------------------------------------------------------------

TEST(HttpWork, AMaxSizeHeadTricklingByteByByteTakesLinearWork) {
  Options options;  // max_head 16 KiB
  const std::string start = "GET /plaintext HTTP/1.1\r\nHost: t\r\n";
  std::string head = start;
  while (head.size() + 32 < options.max_head) head += "X-H" + std::to_string(head.size()) + ": v\r\n";
  head += "X-Last: " + std::string(options.max_head - head.size() - 12, 'v') + "\r\n\r\n";
  ASSERT_EQ(head.size(), options.max_head);

  Connection c(options);
  for (std::size_t i = 0; i + 1 < head.size(); ++i) {
    EXPECT_TRUE(c.feed(head.substr(i, 1)));
    ASSERT_TRUE(c.session.head_pending());
  }
  EXPECT_TRUE(c.feed(head.substr(head.size() - 1)));
  EXPECT_EQ(only_response(c).body, "Hello, World!");
  EXPECT_FALSE(c.session.head_pending());
  // llhttp keeps its state between calls: each byte is given to it once. Searching the head
  // from its start at every call would examine size^2/2 = 134 million bytes.
  EXPECT_LE(c.session.bytes_examined(), head.size());
}

TEST(HttpWork, AChunkedBodyTricklingByteByByteIsDecodedOnce) {
  std::string chunks;
  for (int i = 0; i < 200; ++i) chunks += "5\r\nabcde\r\n";
  const std::string request = chunked_post("/echo", chunks + "0\r\n\r\n");
  Connection c;
  for (char byte : request) c.feed(std::string_view(&byte, 1));
  EXPECT_EQ(only_response(c).body.size(), 1000u);
  EXPECT_LE(c.session.bytes_examined(), request.size());
}

TEST(HttpWork, HeadPendingOnlyWhileAPartialHeadIsKept) {
  Connection c;
  EXPECT_FALSE(c.session.head_pending());
  c.feed("\r\n");  // an empty line is no head
  EXPECT_FALSE(c.session.head_pending());
  c.feed("GET / HT");
  EXPECT_TRUE(c.session.head_pending());
  c.feed("TP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_FALSE(c.session.head_pending());
}

TEST(HttpWork, WaitingSaysWhatTheSessionWaitsFor) {
  Connection c;
  EXPECT_EQ(c.session.waiting(), Session::Waiting::request);
  c.feed("POST /echo HTTP/1.1\r\nHost: t\r\n");
  EXPECT_EQ(c.session.waiting(), Session::Waiting::head);
  c.feed("Content-Length: 4\r\n\r\nab");
  EXPECT_EQ(c.session.waiting(), Session::Waiting::body);
  c.feed("cd");
  EXPECT_EQ(c.session.waiting(), Session::Waiting::request);
  EXPECT_EQ(c.requests, 1u);
}

TEST(HttpWork, ATimedOutBodyIsAnswered408AndForgotten) {
  Connection c;
  c.feed("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nab");
  c.session.time_out(c.out, kNow);
  const Response r = only_response(c);
  EXPECT_EQ(r.status(), 408);
  EXPECT_EQ(r.header("connection"), "close");
  EXPECT_EQ(c.session.waiting(), Session::Waiting::request);
}

TEST(HttpWork, ALargeChunkedBodyIsNotKeptAfterItsRequest) {
  Connection c;
  std::string chunks;
  for (int i = 0; i < 100; ++i) chunks += "3e8\r\n" + std::string(1000, 'x') + "\r\n";
  const std::string request = chunked_post("/echo", chunks + "0\r\n\r\n");
  c.feed(request.substr(0, request.size() - 20));
  EXPECT_GE(c.session.held_bytes(), 90'000u);  // held while the body arrives, and reported
  c.feed(request.substr(request.size() - 20));
  EXPECT_EQ(only_response(c).body.size(), 100'000u);
  EXPECT_LT(c.session.held_bytes(), 4096u);
}

// The observer sees each request as parsed: what the fuzzer re-frames.
TEST(HttpWork, AnObserverSeesTheParsedRequest) {
  struct Seen final : RequestObserver {
    std::vector<std::string> lines;
    void on_request(const ParsedRequest& r) override {
      std::string line = std::string(r.method) + " " + std::string(r.target) + " 1." + std::to_string(r.http_minor);
      for (const Field& f : r.fields) line += " [" + std::string(f.name) + "=" + std::string(f.value) + "]";
      lines.push_back(line + " {" + std::string(r.body) + "}" + (r.keep_alive ? " keep" : " close"));
    }
  } seen;
  Connection c;
  c.session.observe(&seen);
  c.feed(chunked_post("/echo", "2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n", "X-Empty:\r\nX-Pad:  v  \r\n") +
         "GET /plaintext?q HTTP/1.0\r\n\r\n");
  ASSERT_EQ(seen.lines.size(), 2u);
  EXPECT_EQ(seen.lines[0], "POST /echo 1.1 [Host=test] [Transfer-Encoding=chunked] [X-Empty=] [X-Pad=v] {hi} keep");
  EXPECT_EQ(seen.lines[1], "GET /plaintext?q 1.0 {} close");
}

// --- the Date header --------------------------------------------------------------------------

TEST(HttpDate, ResponsesCarryTheCallersClock) {
  Service service{Options{}};
  Session session(service);
  std::string out;
  session.process(get("/plaintext"), out, 0);
  EXPECT_NE(out.find("Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n"), std::string::npos) << out;
  out.clear();
  session.process(get("/plaintext"), out, 1);
  EXPECT_NE(out.find("Date: Thu, 01 Jan 1970 00:00:01 GMT\r\n"), std::string::npos) << out;
}

TEST(HttpDate, OneFormatPerSecondHoweverManyResponses) {
  Service service{Options{}};
  Session session(service);
  std::string input;
  for (int i = 0; i < 50; ++i) input += get("/plaintext");
  std::string out;
  const std::size_t before = DateCache::this_thread().formats();
  session.process(input, out, kNow + 1000);
  session.process(input, out, kNow + 1000);
  EXPECT_EQ(DateCache::this_thread().formats() - before, 1u);
  session.process(input, out, kNow + 1001);
  EXPECT_EQ(DateCache::this_thread().formats() - before, 2u);
}

TEST(HttpDate, TheOverloadWithoutNowReadsTheClock) {
  Service service{Options{}};
  Session session(service);
  std::string out;
  session.process(get("/plaintext"), out);
  const Response r = take_all(out).at(0);
  EXPECT_EQ(r.header("date").size(), DateCache::kSize);
  EXPECT_NE(r.header("date"), kDate);
}

// ---- A graceful stop (Session::start_draining) and GET /health.

TEST(HttpDrain, HealthAnswersOkWhileServing) {
  Connection c;
  EXPECT_TRUE(c.feed("GET /health HTTP/1.1\r\nHost: t\r\n\r\n"));
  const Response r = only_response(c);
  EXPECT_EQ(r.status(), 200);
  EXPECT_EQ(r.body, "ok");
  EXPECT_FALSE(r.has("connection"));
}

TEST(HttpDrain, HealthAnswers503AndClosesWhileDraining) {
  Connection c;
  c.session.start_draining();
  EXPECT_FALSE(c.feed("GET /health HTTP/1.1\r\nHost: t\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n"));
  const Response r = only_response(c);
  EXPECT_EQ(r.status(), 503);
  EXPECT_EQ(r.body, "draining");
  EXPECT_EQ(r.header("connection"), "close");
}

// Every request received is answered; only the last one says Connection: close, and the
// session asks to close after it.
TEST(HttpDrain, TheLastRequestReceivedIsAnsweredWithClose) {
  Connection c;
  c.session.start_draining();
  const std::string get = "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n";
  EXPECT_FALSE(c.feed(get + get + get));
  const std::vector<Response> responses = take_all(c.out);
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_FALSE(responses[0].has("connection"));
  EXPECT_FALSE(responses[1].has("connection"));
  EXPECT_EQ(responses[2].header("connection"), "close");
  for (const Response& r : responses) EXPECT_EQ(r.body, "Hello, World!");
}

// A request still arriving behind a complete one keeps the connection: it is answered (with
// the close) once it is complete.
TEST(HttpDrain, ARequestStillArrivingIsWaitedFor) {
  Connection c;
  c.session.start_draining();
  EXPECT_TRUE(c.feed("GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\nGET /plaintext HTTP/1.1\r\nHo"));
  EXPECT_FALSE(c.feed("st: t\r\n\r\n"));
  const std::vector<Response> responses = take_all(c.out);
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_FALSE(responses[0].has("connection"));
  EXPECT_EQ(responses[1].header("connection"), "close");
  EXPECT_EQ(c.requests, 2u);
}

}  // namespace
}  // namespace iomux::http
