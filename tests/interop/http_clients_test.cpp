// iomux serving http_protocol() to real HTTP clients — curl, ab (apache2-utils) and wrk — and
// to a pipelining client of our own, on several models. Every case is skipped, not passed,
// when the client or the model is not available here.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "interop/client_tools.hpp"
#include "iomux/http.hpp"
#include "support/test_net.hpp"

namespace iomux::test {
namespace {

const std::string kPlaintext = "Hello, World!";

// ---- Responses as bytes: what the server must send, and a reader that splits a stream of them.

// The server's response head up to its Date line, as src/protocols/http/response.cpp writes
// it. `connection` is "" (HTTP/1.1's implied keep-alive), "keep-alive" or "close".
std::string expected_head(std::string_view status, std::string_view content_type, std::size_t content_length,
                          std::string_view connection = "") {
  std::string head = "HTTP/1.1 " + std::string(status) +
                     "\r\nServer: iomux\r\nContent-Type: " + std::string(content_type) +
                     "\r\nContent-Length: " + std::to_string(content_length) + "\r\n";
  if (!connection.empty()) head += "Connection: " + std::string(connection) + "\r\n";
  return head + "Date: <date>\r\n\r\n";
}

// `head` with its Date value (an IMF-fixdate, RFC 9110 5.6.7) replaced by "<date>", or nullopt
// when it has no well-formed Date.
std::optional<std::string> with_date_masked(std::string head) {
  static const std::regex date("\r\nDate: [A-Z][a-z]{2}, \\d{2} [A-Z][a-z]{2} \\d{4} \\d{2}:\\d{2}:\\d{2} GMT\r\n");
  std::smatch m;
  if (!std::regex_search(head, m, date)) return std::nullopt;
  return head.replace(static_cast<std::size_t>(m.position(0)), static_cast<std::size_t>(m.length(0)),
                      "\r\nDate: <date>\r\n");
}

struct Response {
  std::string head;  // status line and headers, with the blank line; Date masked
  std::string body;
};

// Takes one response off the front of `stream`; nullopt (and `stream` untouched) when it is
// not all there or is malformed. A response to HEAD has no body whatever its Content-Length.
std::optional<Response> take_response(std::string& stream, bool to_head, std::string* why) {
  const std::size_t end = stream.find("\r\n\r\n");
  if (end == std::string::npos) return std::nullopt;
  Response r;
  r.head = stream.substr(0, end + 4);
  static const std::regex length_re("\r\nContent-Length: (\\d+)\r\n", std::regex::icase);
  std::smatch m;
  if (!std::regex_search(r.head, m, length_re)) {
    *why = "no Content-Length in " + r.head;
    return std::nullopt;
  }
  const std::size_t length = to_head ? 0 : std::stoul(m[1].str());
  if (stream.size() < end + 4 + length) return std::nullopt;
  r.body = stream.substr(end + 4, length);
  std::optional<std::string> masked = with_date_masked(r.head);
  if (!masked) {
    *why = "no well-formed Date in " + r.head;
    return std::nullopt;
  }
  r.head = std::move(*masked);
  stream.erase(0, end + 4 + length);
  return r;
}

// Reads until the server closes the connection (or the socket's timeout); everything received.
std::string read_until_closed(int fd) {
  std::string all;
  char buf[65536];
  for (;;) {
    const ssize_t got = ::recv(fd, buf, sizeof buf, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return all;
    all.append(buf, static_cast<std::size_t>(got));
  }
}

// Bytes that are not text, so a body that comes back altered or truncated shows.
std::string binary_body(std::size_t size, unsigned seed) {
  std::string body(size, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (char& c : body) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return body;
}

class HttpClients : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    raise_fd_limit();
    IOMUX_REQUIRE_MODEL(GetParam());
    ServerOptions o;
    o.model = GetParam();
    server_ = std::make_unique<RunningServer>(std::move(o), http_protocol(), LogLevel::warn);
  }

  // Nothing here should make the server warn (a protocol error, a failed thread...).
  void TearDown() override {
    if (server_) {
      EXPECT_EQ(server_->log().lines(), std::vector<std::string>{}) << "the server logged warnings";
    }
  }

  // One client at a time on `blocking`: ab and wrk use one connection there.
  bool concurrent() const { return find_model(GetParam())->serves_concurrently; }
  std::string url(std::string_view path = "") const {
    return "http://127.0.0.1:" + port_of(server_->endpoint()) + std::string(path);
  }
  // curl, quiet but for errors, bounded in time; `args` follow the common options.
  ToolRun curl(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{"curl", "--silent", "--show-error", "--max-time", "20"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_tool(argv, 30s);
  }

  std::unique_ptr<RunningServer> server_;
};

// ---- curl

TEST_P(HttpClients, CurlGetsTheTutorialReply) {
  IOMUX_REQUIRE_TOOL("curl", "curl");
  const ToolRun run = curl({url("/")});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  EXPECT_EQ(run.out, "----ok----Request accepted");
}

TEST_P(HttpClients, CurlHeadGetsHeadersOnly) {
  IOMUX_REQUIRE_TOOL("curl", "curl");
  const ToolRun run = curl({"--head", url("/plaintext")});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  EXPECT_EQ(with_date_masked(run.out).value_or(run.out), expected_head("200 OK", "text/plain", 13));

  // curl reads no body after a HEAD whatever the server sends, so check the bytes on the wire:
  // the response to a GET pipelined behind the HEAD must start right after the HEAD's head.
  UniqueFd c = connect_to(server_->endpoint());
  ASSERT_TRUE(c);
  ASSERT_TRUE(send_text(c.get(),
                        "HEAD /plaintext HTTP/1.1\r\nHost: t\r\n\r\n"
                        "GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  std::string stream = read_until_closed(c.get());
  std::string why;
  const std::optional<Response> head = take_response(stream, true, &why);
  ASSERT_TRUE(head) << why << stream;
  EXPECT_EQ(head->head, expected_head("200 OK", "text/plain", 13));
  const std::optional<Response> get = take_response(stream, false, &why);
  ASSERT_TRUE(get) << why << stream;
  EXPECT_EQ(get->head, expected_head("200 OK", "text/plain", 13, "close"));
  EXPECT_EQ(get->body, kPlaintext);
  EXPECT_EQ(stream, "");
}

TEST_P(HttpClients, CurlPostOfOneMebibyteEchoesEveryByte) {
  IOMUX_REQUIRE_TOOL("curl", "curl");
  const std::string body = binary_body(1024 * 1024, 7);
  const std::filesystem::path file = std::filesystem::path(::testing::TempDir()) /
                                     ("iomux_echo_" + std::to_string(::getpid()) + "_" + GetParam() + ".bin");
  {
    std::ofstream f(file, std::ios::binary);
    f.write(body.data(), static_cast<std::streamsize>(body.size()));
    ASSERT_TRUE(f.good()) << file;
  }
  // curl 7.88 sends "Expect: 100-continue" with a body this large, and waits for the 100.
  const ToolRun run =
      curl({"--data-binary", "@" + file.string(), "-H", "Content-Type: application/octet-stream", url("/echo")});
  std::filesystem::remove(file);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  ASSERT_EQ(run.out.size(), body.size());
  EXPECT_TRUE(run.out == body) << "the echoed body differs from the one sent";
}

TEST_P(HttpClients, CurlReusesOneKeepAliveConnection) {
  IOMUX_REQUIRE_TOOL("curl", "curl");
  const ToolRun run = curl({"--verbose", url("/plaintext"), url("/")});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, kPlaintext + "----ok----Request accepted");
  EXPECT_TRUE(contains(run.err, "Re-using existing connection")) << run.err;
  EXPECT_FALSE(contains(run.err, "Closing connection")) << run.err;
}

TEST_P(HttpClients, CurlGetsNotFound) {
  IOMUX_REQUIRE_TOOL("curl", "curl");
  const ToolRun run = curl({"--write-out", "|%{http_code}", url("/no/such/page")});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "404 Not Found\n|404");
}

TEST_P(HttpClients, CurlWithAnOversizedHeaderGets431) {
  IOMUX_REQUIRE_TOOL("curl", "curl");
  // 20 KiB in one header field: past HttpOptions::max_head (16 KiB).
  const ToolRun run = curl({"-H", "X-Big: " + std::string(20 * 1024, 'b'), "--write-out", "|%{http_code}", url("/")});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "431 Request Header Fields Too Large\n|431");
  // The server keeps serving.
  EXPECT_EQ(curl({url("/plaintext")}).out, kPlaintext);
}

TEST_P(HttpClients, CurlReadsStatsAsJson) {
  IOMUX_REQUIRE_TOOL("curl", "curl");
  ASSERT_EQ(curl({url("/plaintext")}).out, kPlaintext);
  const ToolRun run = curl({url("/stats")});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  const nlohmann::json stats = nlohmann::json::parse(run.out, nullptr, false);
  ASSERT_FALSE(stats.is_discarded()) << "not JSON: " << run.out;
  ASSERT_TRUE(stats.is_object()) << run.out;
  EXPECT_EQ(stats.value("model", ""), GetParam());
  for (const char* counter : {"connections_open", "connections_accepted", "connections_refused",
                              "connections_timed_out", "connections_paused", "connections_evicted", "requests",
                              "bytes_in", "bytes_out", "bytes_pending", "bytes_held", "handler_errors"}) {
    ASSERT_TRUE(stats.contains(counter)) << counter << " missing from " << run.out;
    EXPECT_TRUE(stats[counter].is_number_unsigned()) << counter << " in " << run.out;
  }
  // The earlier curl's connection and request, and this one's connection.
  EXPECT_GE(stats["connections_accepted"].get<std::uint64_t>(), 2u) << run.out;
  EXPECT_GE(stats["requests"].get<std::uint64_t>(), 1u) << run.out;
  EXPECT_GE(stats["connections_open"].get<std::uint64_t>(), 1u) << run.out;
  EXPECT_EQ(stats["handler_errors"].get<std::uint64_t>(), 0u) << run.out;
}

// ---- ab and wrk

// The load generators, on load_models() only.
class HttpLoad : public HttpClients {
 protected:
  void run_wrk(std::vector<std::string> target) {
    IOMUX_REQUIRE_TOOL("wrk", "wrk");
    std::vector<std::string> argv{"wrk", "-t", "1", "-c", concurrent() ? "10" : "1", "-d", "1"};
    argv.insert(argv.end(), target.begin(), target.end());
    const ToolRun run = run_tool(argv, 30s);
    EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(run.out, m, std::regex("(\\d+) requests in "))) << run.out;
    EXPECT_GT(std::stoull(m[1].str()), 0u) << run.out;
    EXPECT_FALSE(contains(run.out, "Socket errors")) << run.out;
    EXPECT_FALSE(contains(run.out, "Non-2xx")) << run.out;
    EXPECT_EQ(run.err, "");
  }
};

TEST_P(HttpLoad, AbKeepAliveCompletesEveryRequest) {
  IOMUX_REQUIRE_TOOL("ab", "apache2-utils");
  // ab's default concurrency is 1: one keep-alive connection, fine for `blocking` too.
  const ToolRun run = run_tool({"ab", "-k", "-n", "2000", url("/plaintext")}, 60s);
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_TRUE(std::regex_search(run.out, std::regex("Complete requests:\\s+2000\n"))) << run.out;
  EXPECT_TRUE(std::regex_search(run.out, std::regex("Failed requests:\\s+0\n"))) << run.out;
  EXPECT_TRUE(std::regex_search(run.out, std::regex("Keep-Alive requests:\\s+2000\n"))) << run.out;
  EXPECT_FALSE(contains(run.out, "Non-2xx")) << run.out;
  EXPECT_TRUE(std::regex_search(run.out, std::regex("Document Length:\\s+13 bytes\n"))) << run.out;
}

TEST_P(HttpLoad, WrkPlaintextWithoutErrors) {
  run_wrk({url("/plaintext")});
}

TEST_P(HttpLoad, WrkPipelinedPlaintextWithoutErrors) {
  const std::string script = std::string(IOMUX_SOURCE_DIR) + "/bench/wrk/pipeline.lua";
  ASSERT_TRUE(std::filesystem::exists(script)) << script << " is gone: update this test";
  run_wrk({"-s", script, url(), "--", "/plaintext", "16"});
}

// ---- A pipelining client of our own

TEST_P(HttpClients, HundredPipelinedRequestsInOneWriteGetHundredResponsesInOrder) {
  // GETs of /plaintext and POSTs to /echo of distinct binary bodies, all in one write; the
  // last asks the server to close, so the stream of responses has a known end.
  struct Expected {
    std::string head;
    std::string body;
  };
  std::string requests;
  std::vector<Expected> expected;
  constexpr int kRequests = 100;
  for (int i = 0; i < kRequests; ++i) {
    const bool last = i == kRequests - 1;
    const std::string connection = last ? "Connection: close\r\n" : "";
    if (i % 3 == 0) {
      const std::size_t size = static_cast<std::size_t>(i) * 37 % 1500;
      std::string body = "request " + std::to_string(i) + ": " + binary_body(size, static_cast<unsigned>(i));
      requests += "POST /echo HTTP/1.1\r\nHost: t\r\n" + connection +
                  "Content-Type: application/octet-stream\r\nContent-Length: " + std::to_string(body.size()) +
                  "\r\n\r\n" + body;
      expected.push_back({expected_head("200 OK", "application/octet-stream", body.size(), last ? "close" : ""), body});
    } else {
      requests += "GET /plaintext HTTP/1.1\r\nHost: t\r\n" + connection + "\r\n";
      expected.push_back({expected_head("200 OK", "text/plain", kPlaintext.size(), last ? "close" : ""), kPlaintext});
    }
  }
  UniqueFd c = connect_to(server_->endpoint());
  ASSERT_TRUE(c);
  // One send on a blocking socket hands the whole buffer to the kernel (or fails).
  const ssize_t sent = ::send(c.get(), requests.data(), requests.size(), MSG_NOSIGNAL);
  ASSERT_EQ(sent, static_cast<ssize_t>(requests.size())) << "errno " << errno;

  std::string stream = read_until_closed(c.get());
  const std::size_t received = stream.size();
  for (int i = 0; i < kRequests; ++i) {
    std::string why;
    const std::optional<Response> r = take_response(stream, false, &why);
    ASSERT_TRUE(r) << "response " << i << " incomplete or malformed after " << received - stream.size() << " of "
                   << received << " bytes: " << why;
    EXPECT_EQ(r->head, expected[static_cast<std::size_t>(i)].head) << "response " << i;
    EXPECT_TRUE(r->body == expected[static_cast<std::size_t>(i)].body) << "response " << i << "'s body differs";
  }
  EXPECT_EQ(stream.size(), 0u) << "bytes after the last response";
}

INSTANTIATE_TEST_SUITE_P(Models, HttpClients, ::testing::ValuesIn(interop_models()), ModelTestName());
INSTANTIATE_TEST_SUITE_P(Models, HttpLoad, ::testing::ValuesIn(load_models()), ModelTestName());

}  // namespace
}  // namespace iomux::test
