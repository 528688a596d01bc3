// One connection's HTTP/1.1: bytes in, responses out, no IO.
//
// The connection layer owns the input. It calls process() with every byte of the connection
// not consumed yet (what the previous call left, with the new bytes appended), and keeps
// whatever process() does not consume for the next call. So an unfinished request simply stays
// in the connection's kept input, where the server's memory budget sees it, and the parser
// reads headers in place, without copying them. process() answers each complete request at the
// front of the input, in order (pipelining), and consumes nothing of a request until it is
// complete.
//
// Work stays linear in the bytes received however they are cut into reads: llhttp is given
// each byte of a head and of a chunked body's framing once (it keeps its state between calls),
// and a Content-Length body is waited for by its size alone.
//
// What a client receives never depends on how its bytes were cut into reads: every verdict is
// one that more bytes cannot change (the fuzzer checks this against one-shot processing).
//
// Map: Session (framing, per connection) -> RequestParser (llhttp: head, chunked body, checks)
//                                        -> Service (routes, fixed responses; shared)
#pragma once

#include <cstddef>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/http/request.hpp"
#include "protocols/http/request_parser.hpp"
#include "protocols/http/response.hpp"
#include "protocols/http/service.hpp"

namespace iomux::http {

struct Result {
  std::size_t consumed = 0;  // bytes of input used up; the rest must be presented again
  std::size_t requests = 0;  // requests answered (a refusal is not counted)
  bool close = false;        // close the connection once `out` is flushed (then consumed is all)
};

class Session {
 public:
  // `service` must outlive the session.
  explicit Session(const Service& service) noexcept : service_(&service), parser_(service.head_limits()) {}

  // Thread rule for everything below: one thread at a time, like the connection.

  // Answers every complete request at the start of `input` (all unconsumed bytes of the
  // connection), appending the responses to `out` in order; a request that is not complete
  // yet consumes nothing (it is presented again with more bytes). close: the connection must
  // close after `out` is flushed (Connection: close, HTTP/1.0 without keep-alive, an error
  // status). `now` (seconds since the epoch) dates the responses; the overload without it
  // reads the clock once.
  Result process(std::string_view input, ResponseSink& out, std::time_t now);
  Result process(std::string_view input, std::string& out, std::time_t now) {
    StringSink sink(out);
    return process(input, sink, now);
  }
  Result process(std::string_view input, std::string& out) { return process(input, out, std::time(nullptr)); }

  // What the session waits for, for the caller's timeouts: nothing of a request yet (between
  // requests, or before the first), the rest of a head, or the rest of a body.
  enum class Waiting : unsigned char { request, head, body };
  [[nodiscard]] Waiting waiting() const noexcept {
    if (phase_ != Phase::head) return Waiting::body;
    return parser_.started() ? Waiting::head : Waiting::request;
  }
  // True while part of a request head is kept waiting for the rest.
  [[nodiscard]] bool head_pending() const noexcept { return waiting() == Waiting::head; }

  // Appends the 408 that ends a request whose body stopped coming, and forgets the request;
  // the connection closes after it.
  void time_out(ResponseSink& out, std::time_t now);
  void time_out(std::string& out, std::time_t now) {
    StringSink sink(out);
    time_out(sink, now);
  }

  // The most input the connection must keep between calls (Service::max_kept_input()).
  [[nodiscard]] std::size_t max_kept_input() const noexcept { return service_->max_kept_input(); }

  // Memory the session holds between calls beyond its own size (a chunked body being decoded).
  [[nodiscard]] std::size_t held_bytes() const noexcept { return chunked_body_.capacity(); }

  // Input bytes looked at so far: given to llhttp. Grows linearly with the bytes received,
  // whatever the reads (the tests count it).
  [[nodiscard]] std::size_t bytes_examined() const noexcept { return examined_ + parser_.fed(); }

  // Every request answered from now on is shown to `observer` (null: none) before its response,
  // with its header fields (which the session then records; it does not otherwise).
  void observe(RequestObserver* observer);

  // The server is stopping gracefully: from now on, the last request the input holds is answered
  // with "Connection: close" (and Result::close), once the requests before it are answered, so
  // a request already on its way is answered and none is cut; GET /health answers 503.
  void start_draining() noexcept { draining_ = true; }
  [[nodiscard]] bool draining() const noexcept { return draining_; }

  // Forgets any unfinished request, for a new connection.
  void reset() noexcept;

 private:
  enum class Phase : unsigned char { head, identity_body, chunked_body };

  // How far the request at the front of the input is.
  enum class Progress : unsigned char { more, complete, refused };

  // Each is given the input from the front request's first byte on; complete: `size` is the
  // request's, `body` its body.
  Progress read_body(std::string_view request, std::size_t& size, std::string_view& body, Status& refusal);
  void show(std::string_view request, std::string_view body);
  inline void finish_request() noexcept;
  void release_body() noexcept;

  const Service* service_;
  RequestParser parser_;
  std::string chunked_body_;  // the front request's decoded chunked body so far
  std::size_t examined_ = 0;  // by the requests before the one in progress
  RequestObserver* observer_ = nullptr;
  std::vector<Field> shown_fields_;  // for the observer
  Phase phase_ = Phase::head;
  bool draining_ = false;
};

}  // namespace iomux::http
