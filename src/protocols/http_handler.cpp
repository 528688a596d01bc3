// The HTTP protocol (http.hpp) as a Handler on the public API: an http::Session per connection
// over a Service shared by all (src/protocols/http/). A call's responses are gathered in a
// string of the handler's and written once. While part of a request head is kept, a timer
// bounds how long the client may take to finish it.
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "iomux/http.hpp"
#include "protocols/gathered_replies.hpp"
#include "protocols/http/service.hpp"
#include "protocols/http/session.hpp"

namespace iomux {
namespace {

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
          {"handler_errors", s.handler_errors}};
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
  explicit HttpShared(const HttpOptions& o) : service(service_options(o)), header_timeout(o.header_timeout) {}
  http::Service service;
  std::chrono::milliseconds header_timeout;
};

class HttpHandler final : public Handler {
 public:
  explicit HttpHandler(const HttpShared& shared) : shared_(shared), session_(shared.service) {}

  void on_open(Connection& conn) override {
    conn.set_max_input(session_.max_kept_input());
    log_ = &conn.log();
  }

  std::size_t on_data(std::span<const char> in, Connection& conn) override {
    answering = &conn;
    const http::Result r = session_.process(std::string_view(in.data(), in.size()), out_);
    answering = nullptr;
    if (log_->enabled(LogLevel::debug) && r.consumed > 0)  // iomux serve -v
      log_->debug("requests from {}: \"{}\"", conn.peer().to_string(), escape_bytes({in.data(), r.consumed}));
    conn.count_requests(r.requests);
    write_gathered(conn, out_);
    if (r.close) {
      conn.close_after_flush("HTTP: connection closes after the response");
      return r.consumed;
    }
    watch_head(conn);
    return r.consumed;
  }

 private:
  // A head in progress has header_timeout to complete, from when it started; none: no timer.
  void watch_head(Connection& conn) {
    if (!session_.head_pending()) {
      if (head_timer_ != kNoTimer) conn.cancel_timer(std::exchange(head_timer_, kNoTimer));
      return;
    }
    if (head_timer_ != kNoTimer) return;
    head_timer_ = conn.start_timer(shared_.header_timeout, [this](Connection& c) {
      head_timer_ = kNoTimer;
      if (!session_.head_pending()) return;
      c.log().warn("closing connection from {}: request head not complete after {} ms", c.peer().to_string(),
                   shared_.header_timeout.count());
      c.close("HTTP: request head too slow (header timeout)");
    });
  }

  const HttpShared& shared_;
  http::Session session_;
  std::string out_;
  TimerId head_timer_ = kNoTimer;
  Logger* log_ = nullptr;
};

}  // namespace

HandlerFactory http_protocol(HttpOptions options) {
  auto shared = std::make_shared<HttpShared>(options);
  return [shared] { return std::make_unique<HttpHandler>(*shared); };
}

}  // namespace iomux
