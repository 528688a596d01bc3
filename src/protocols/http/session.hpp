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
// Work stays linear in the bytes received however they are cut into reads: the end of a head
// is searched for once per byte (HeadScanner), http_parser runs over a head once it is whole
// (and over its request line once, if that arrives before the rest, so that a bad line is
// refused without waiting for a blank line that may never come), a Content-Length body is
// waited for by its size alone, and a chunked body is decoded incrementally, each byte once.
//
// What a client receives never depends on how its bytes were cut into reads: every verdict is
// one that more bytes cannot change (the fuzzer checks this against one-shot processing).
//
// Map: Session (framing, per connection) -> HeadScanner (end of head, early limits)
//                                        -> RequestParser (http_parser: head, chunked body)
//                                        -> Service (routes, fixed responses; shared)
#pragma once

#include <cstddef>
#include <ctime>
#include <string>
#include <string_view>

#include "protocols/http/head_scanner.hpp"
#include "protocols/http/request.hpp"
#include "protocols/http/request_parser.hpp"
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
  explicit Session(const Service& service) noexcept : service_(&service) {}

  // Thread rule for everything below: one thread at a time, like the connection.

  // Answers every complete request at the start of `input` (all unconsumed bytes of the
  // connection), appending the responses to `out` in order; a request that is not complete
  // yet consumes nothing (it is presented again with more bytes). close: the connection must
  // close after `out` is flushed (Connection: close, HTTP/1.0 without keep-alive, an error
  // status). `now` (seconds since the epoch) dates the responses; the overload without it
  // reads the clock once.
  Result process(std::string_view input, std::string& out, std::time_t now);
  Result process(std::string_view input, std::string& out);

  // True while part of a request head is kept waiting for the rest: the caller arms its header
  // timeout for slow clients then.
  [[nodiscard]] bool head_pending() const noexcept { return phase_ == Phase::head && scanner_.started(); }

  // The most input the connection must keep between calls (Service::max_kept_input()).
  [[nodiscard]] std::size_t max_kept_input() const noexcept { return service_->max_kept_input(); }

  // Input bytes looked at so far: searched for a head's end or given to http_parser. Grows
  // linearly with the bytes received, whatever the reads (the tests count it).
  [[nodiscard]] std::size_t bytes_examined() const noexcept { return examined_; }

  // Forgets any unfinished request, for a new connection.
  void reset() noexcept;

 private:
  enum class Phase : unsigned char { head, identity_body, chunked_body };

  // What one step did to the request at the front of the input.
  struct Step {
    std::size_t consumed = 0;
    bool answered = false;
    bool close = false;
    bool waiting = false;  // the front request needs more bytes
  };

  // Each is given the input from the front request's first byte on.
  Step read_head(std::string_view request, std::string& out, std::string_view date);
  Step read_identity_body(std::string_view request, std::string& out, std::string_view date);
  Step read_chunked_body(std::string_view request, std::string& out, std::string_view date);
  Step answer(std::string_view request, std::size_t size, std::string_view body, std::string& out,
              std::string_view date);
  Step refuse(Status status, std::string& out, std::string_view date);
  void finish_request() noexcept;

  const Service* service_;
  HeadScanner scanner_;
  RequestParser parser_;
  RequestHead head_;             // the front request's, once its head is accepted
  std::string chunked_body_;     // the front request's decoded chunked body so far
  std::size_t chunked_fed_ = 0;  // bytes of the front request given to parser_, head included
  std::size_t examined_ = 0;
  Phase phase_ = Phase::head;
  bool line_judged_ = false;  // the front request's line was judged while its head was partial
};

}  // namespace iomux::http
