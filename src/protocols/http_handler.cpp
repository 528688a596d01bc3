// The HTTP protocol (http.hpp) as a Handler on the public API: an http::Session per connection
// over a Service shared by all (src/protocols/http/). Each response is written to the connection
// as the session makes it: its bytes are copied once, into the send (a canned response is
// already composed in the thread's cache, an echoed body is sent from the input).
//
// Timeouts, nginx's three: a request head must be complete header_timeout after it started (the
// first one after the accept, later ones after their first byte), a body must not pause longer
// than body_timeout between reads (408), and a connection between requests is closed after
// keepalive_timeout. One timer per connection serves all three: the handler keeps a deadline,
// which the request path moves without touching the timer, and the timer, when it fires early,
// starts again for what is left. The timer is restarted only when the deadline comes before it.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "iomux/http.hpp"
#include "protocols/http/service.hpp"
#include "protocols/http/session.hpp"

namespace iomux {
namespace {

using Clock = std::chrono::steady_clock;
constexpr Clock::time_point kNever = Clock::time_point::max();

// The connection whose request is being answered, for GET /stats: the Service's stats
// callback is called on this thread, inside Session::process().
thread_local Connection* answering = nullptr;

nlohmann::json stats_json() {
  if (!answering) return nlohmann::json::object();
  const StatsSnapshot s = answering->server_stats();
  return {{"model", std::string(answering->model())},
          {"connections_open", s.connections_open},
          {"connections_accepted", s.connections_accepted},
          {"connections_refused", s.connections_refused},
          {"connections_timed_out", s.connections_timed_out},
          {"connections_paused", s.connections_paused},
          {"connections_evicted", s.connections_evicted},
          {"requests", s.requests},
          {"bytes_in", s.bytes_in},
          {"bytes_out", s.bytes_out},
          {"bytes_pending", s.bytes_pending},
          {"bytes_held", s.bytes_held},
          {"handler_errors", s.handler_errors},
          {"connections_outbound", s.connections_outbound},
          {"connects_failed", s.connects_failed}};
}

http::Options service_options(const HttpOptions& o) {
  http::Options s;
  s.max_head = o.max_head;
  s.max_uri = o.max_uri;
  s.max_body = o.max_body;
  s.reply = o.reply;
  s.stats = stats_json;
  return s;
}

struct HttpShared {
  explicit HttpShared(const HttpOptions& o)
      : service(service_options(o)),
        header_timeout(o.header_timeout),
        body_timeout(o.body_timeout),
        keepalive_timeout(o.keepalive_timeout) {}
  http::Service service;
  std::chrono::milliseconds header_timeout;
  std::chrono::milliseconds body_timeout;
  std::chrono::milliseconds keepalive_timeout;
};

Clock::time_point after(Clock::time_point from, std::chrono::milliseconds timeout) {
  return timeout.count() > 0 ? from + timeout : kNever;
}

// A session's responses, written to the connection as they are made.
class ConnectionSink final : public http::ResponseSink {
 public:
  explicit ConnectionSink(Connection& conn) noexcept : conn_(&conn) {}
  void append(std::string_view bytes) override { conn_->write(bytes); }

 private:
  Connection* conn_;
};

class HttpHandler final : public Handler {
 public:
  explicit HttpHandler(const HttpShared& shared) : shared_(shared), session_(shared.service) {}

  void on_open(Connection& conn) override {
    conn.set_max_input(session_.max_kept_input());
    log_ = &conn.log();
    // The first request's head is timed from the accept: a connection that sends nothing is
    // closed like one that sends too slowly (nginx's client_header_timeout does both).
    deadline_ = after(conn.now(), shared_.header_timeout);
    arm(conn);
  }

  std::size_t on_data(std::span<const char> in, Connection& conn) override {
    answering = &conn;
    ConnectionSink responses(conn);
    const http::Result r = session_.process(std::string_view(in.data(), in.size()), responses, std::time(nullptr));
    answering = nullptr;
    if (log_->enabled(LogLevel::debug) && r.consumed > 0) [[unlikely]]  // iomux serve -v
      log_requests(conn, {in.data(), r.consumed});
    conn.count_requests(r.requests);
    answered_ += r.requests;
    if (session_.held_bytes() != reported_) [[unlikely]]
      report_memory(conn);
    if (r.close) {
      conn.close_after_flush("HTTP: connection closes after the response");
      return r.consumed;
    }
    const bool new_bytes = in.size() > kept_;
    kept_ = in.size() - r.consumed;
    watch(conn, r.requests > 0, new_bytes);
    return r.consumed;
  }

  // Draining: every connection reads on and closes after its next response, which says
  // "Connection: close" (Session::start_draining). An idle keep-alive connection is kept too:
  // its client may have sent a request that is still on its way, and closing now would cut it
  // (the client learns of the close only when its request meets it). It goes after that
  // request is answered, at its keep-alive timeout, or at the server's drain timeout.
  bool on_server_drain(Connection& /*conn*/, bool /*input_waiting*/) override {
    session_.start_draining();
    return true;
  }

 private:
  // What the session keeps between calls (a chunked body being decoded) is counted in the
  // memory budget and bytes_held.
  void report_memory(Connection& conn) {
    const std::size_t held = session_.held_bytes();
    if (held != reported_) {
      reported_ = held;
      conn.set_handler_memory(held);
    }
  }

  // Out of line: its strings would make every call set up a larger frame.
  [[gnu::noinline]] void log_requests(Connection& conn, std::string_view requests) {
    log_->debug("requests from {}: \"{}\"", conn.peer().to_string(), escape_bytes(requests));
  }

  // Moves the deadline for what the session waits for now.
  void watch(Connection& conn, bool answered, bool new_bytes) {
    const http::Session::Waiting waiting = session_.waiting();
    const bool same_request = waiting_ == waiting && !answered;
    waiting_ = waiting;
    switch (waiting) {
      case http::Session::Waiting::request:
        // Idle between requests; before the first one, the accept's header deadline holds.
        if (answered) deadline_ = after(conn.now(), shared_.keepalive_timeout);
        break;
      case http::Session::Waiting::head:
        // A new head has header_timeout from its first byte, whatever came before it.
        if (!same_request && answered_ > 0) deadline_ = after(conn.now(), shared_.header_timeout);
        break;
      case http::Session::Waiting::body:
        // nginx's client_body_timeout is between two reads, not for the whole body.
        if (new_bytes || !same_request) deadline_ = after(conn.now(), shared_.body_timeout);
        break;
    }
    arm(conn);
  }

  std::chrono::milliseconds timeout_of(http::Session::Waiting waiting) const noexcept {
    switch (waiting) {
      case http::Session::Waiting::request:
        return answered_ == 0 ? shared_.header_timeout : shared_.keepalive_timeout;
      case http::Session::Waiting::head:
        return shared_.header_timeout;
      case http::Session::Waiting::body:
        return shared_.body_timeout;
    }
    return shared_.header_timeout;
  }

  // Makes sure the timer fires by the deadline: a timer already due before it stays (it starts
  // again for the rest when it fires), so the request path rarely touches it.
  void arm(Connection& conn) {
    if (deadline_ == kNever || (timer_ != kNoTimer && timer_due_ <= deadline_)) return;
    restart_timer(conn);
  }

  // Out of line: the request path calls arm() every time and this rarely.
  [[gnu::noinline]] void restart_timer(Connection& conn) {
    if (timer_ != kNoTimer) conn.cancel_timer(std::exchange(timer_, kNoTimer));
    const auto now = conn.now();
    const auto delay =
        std::max(std::chrono::ceil<std::chrono::milliseconds>(deadline_ - now), std::chrono::milliseconds(1));
    timer_due_ = now + delay;
    timer_ = conn.start_timer(delay, [this](Connection& c) { on_timer(c); });
  }

  void on_timer(Connection& conn) {
    timer_ = kNoTimer;
    const auto now = conn.now();
    if (now < deadline_) return arm(conn);
    // Not the client's silence: the client is still taking a response (that wait is a send
    // timeout's), or reading is paused by back-pressure or the memory budget.
    if (conn.pending_output() > 0 || conn.reading_paused()) {
      deadline_ = after(now, timeout_of(session_.waiting()));
      return arm(conn);
    }
    switch (session_.waiting()) {
      case http::Session::Waiting::request:
        if (answered_ == 0) {
          conn.close("HTTP: no request (header timeout)");
        } else {
          conn.close("HTTP: idle between requests (keepalive timeout)");
        }
        return;
      case http::Session::Waiting::head:
        log_->warn("closing connection from {}: request head not complete after {} ms", conn.peer().to_string(),
                   shared_.header_timeout.count());
        conn.close("HTTP: request head too slow (header timeout)");
        return;
      case http::Session::Waiting::body:
        log_->warn("closing connection from {}: request body sent nothing for {} ms", conn.peer().to_string(),
                   shared_.body_timeout.count());
        ConnectionSink responses(conn);
        session_.time_out(responses, std::time(nullptr));
        report_memory(conn);
        conn.close_after_flush("HTTP: request body stalled (body timeout)");
        return;
    }
  }

  const HttpShared& shared_;
  http::Session session_;
  Clock::time_point deadline_ = kNever;
  Clock::time_point timer_due_{};
  TimerId timer_ = kNoTimer;
  std::uint64_t answered_ = 0;
  std::size_t kept_ = 0;      // input left unconsumed by the last call
  std::size_t reported_ = 0;  // what set_handler_memory() was last told
  http::Session::Waiting waiting_ = http::Session::Waiting::request;
  Logger* log_ = nullptr;
};

}  // namespace

HandlerFactory http_protocol(HttpOptions options) {
  auto shared = std::make_shared<HttpShared>(options);
  return [shared] { return std::make_unique<HttpHandler>(*shared); };
}

}  // namespace iomux
