// The built-in protocols (protocols.hpp) as handlers on the public API, nothing else: what any
// user of the library can write. Each answers with write_static() where it can (a constant
// reply, no copy) or write() of its own input (sent without a copy when the socket takes it).
#include <cstdint>
#include <cstring>
#include <memory>

#include "iomux/protocols.hpp"

namespace iomux {
namespace {

// Logs each request at debug level (`iomux serve -v`). The logger is looked up once per
// connection: asking whether debug is on is then one load per request.
class RequestLogger {
 public:
  void open(Connection& conn) noexcept { log_ = &conn.log(); }
  void operator()(Connection& conn, std::string_view request) const {
    if (log_->enabled(LogLevel::debug))
      log_->debug("request from {}: \"{}\"", conn.peer().to_string(), escape_bytes(request));
  }

 private:
  Logger* log_ = nullptr;
};

// The built-in protocols' drain (Handler::on_server_drain) in a hand-over to another process
// (an upgrade): a connection that has sent nothing yet was accepted for a request that is on
// its way (a client connects, then sends), and closing it now would reset that request; so it
// is kept until it is answered, and so is one with input waiting. The drain may take its time:
// the other process serves the new connections. An idle one that was answered closes at once.
// Once draining, each answer is the connection's last. A plain stop keeps the default (read no
// more, send what is owed, close): it may not wait for a client that never speaks.
class DrainPolicy {
 public:
  bool on_server_drain(const Connection& conn, bool input_waiting) noexcept {
    draining_ = conn.server_handing_over() && (conn.requests() == 0 || input_waiting);
    return draining_;
  }
  // After a request was answered.
  void answered(Connection& conn) {
    if (draining_) [[unlikely]]
      conn.close_after_flush("server draining");
  }

 private:
  bool draining_ = false;
};

// The reply text lives in the factory, which the server keeps as long as it exists, so every
// handler can send it with write_static().
class AckHandler final : public Handler {
 public:
  explicit AckHandler(const std::string& reply) noexcept : reply_(reply) {}

  void on_open(Connection& conn) override { log_request_.open(conn); }

  std::size_t on_data(std::span<const char> in, Connection& conn) override {
    log_request_(conn, {in.data(), in.size()});
    conn.count_requests();
    conn.write_static(reply_);
    drain_.answered(conn);
    return in.size();
  }
  bool on_server_drain(Connection& conn, bool input_waiting) override {
    return drain_.on_server_drain(conn, input_waiting);
  }

 private:
  std::string_view reply_;
  RequestLogger log_request_;
  DrainPolicy drain_;
};

class EchoHandler final : public Handler {
 public:
  void on_open(Connection& conn) override { log_request_.open(conn); }

  std::size_t on_data(std::span<const char> in, Connection& conn) override {
    const std::string_view bytes(in.data(), in.size());
    log_request_(conn, bytes);
    conn.count_requests();
    conn.write(bytes);
    drain_.answered(conn);
    return in.size();
  }
  bool on_server_drain(Connection& conn, bool input_waiting) override {
    return drain_.on_server_drain(conn, input_waiting);
  }

 private:
  RequestLogger log_request_;
  DrainPolicy drain_;
};

struct LineSettings {
  std::string reply;     // reply + "\r\n"
  std::string too_long;  // the error line
  std::size_t max_line;
};

class LineHandler final : public Handler {
 public:
  explicit LineHandler(const LineSettings& settings) noexcept : s_(settings) {}

  void on_open(Connection& conn) override {
    log_request_.open(conn);
    // An unfinished line is kept until its '\n': up to max_line bytes and a '\r'.
    if (conn.max_input() < s_.max_line + 1) conn.set_max_input(s_.max_line + 1);
  }

  std::size_t on_data(std::span<const char> in, Connection& conn) override {
    const std::string_view input(in.data(), in.size());
    std::size_t line_start = 0;
    // Bytes before `scanned_` were searched by an earlier call and hold no '\n': a line that
    // trickles in byte by byte costs O(n), not O(n^2).
    std::size_t search_from = std::min(scanned_, input.size());
    std::uint64_t answered = 0;
    while (search_from < input.size()) {
      const void* hit = std::memchr(input.data() + search_from, '\n', input.size() - search_from);
      if (!hit) break;
      const auto newline = static_cast<std::size_t>(static_cast<const char*>(hit) - input.data());
      std::string_view line = input.substr(line_start, newline - line_start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.size() > s_.max_line) return refuse(conn, input.size(), answered);
      log_request_(conn, line);
      conn.write_static(s_.reply);
      ++answered;
      line_start = search_from = newline + 1;
    }
    conn.count_requests(answered);
    if (answered > 0) drain_.answered(conn);
    // What is left is an unfinished line. Refuse it as soon as it cannot fit, rather than
    // keeping an unbounded amount waiting for a '\n' that may never come (+1: its '\r').
    if (input.size() - line_start > s_.max_line + 1) return refuse(conn, input.size(), 0);
    scanned_ = input.size() - line_start;
    return line_start;
  }

 private:
  std::size_t refuse(Connection& conn, std::size_t all, std::uint64_t answered) {
    conn.count_requests(answered);
    conn.log().warn("closing connection from {}: line longer than max_line ({} bytes)", conn.peer().to_string(),
                    s_.max_line);
    conn.write_static(s_.too_long);
    conn.close_after_flush("protocol error: line too long");
    scanned_ = 0;
    return all;  // the rest of the input is never looked at
  }

  bool on_server_drain(Connection& conn, bool input_waiting) override {
    return drain_.on_server_drain(conn, input_waiting);
  }

  const LineSettings& s_;
  std::size_t scanned_ = 0;
  RequestLogger log_request_;
  DrainPolicy drain_;
};

}  // namespace

HandlerFactory ack_protocol(std::string reply) {
  auto text = std::make_shared<const std::string>(std::move(reply));
  return [text] { return std::make_unique<AckHandler>(*text); };
}

HandlerFactory line_protocol(std::string reply, std::size_t max_line) {
  auto settings = std::make_shared<const LineSettings>(
      LineSettings{reply + "\r\n", "ERROR line too long (max " + std::to_string(max_line) + " bytes)\r\n", max_line});
  return [settings] { return std::make_unique<LineHandler>(*settings); };
}

HandlerFactory echo_protocol() {
  return [] { return std::make_unique<EchoHandler>(); };
}

}  // namespace iomux
