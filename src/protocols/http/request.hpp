// What a session knows about a request, in two stages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace iomux::http {

// The methods the routes tell apart; every other method llhttp knows is `other`.
enum class Method : std::uint8_t { get, head, post, other };

// A parsed, accepted head. Positions rather than views: while the body arrives the head waits
// in the connection's kept input, which is presented again on the next read, not necessarily at
// the same address.
struct RequestHead {
  std::size_t size = 0;           // bytes of the head, its blank line included
  std::size_t target_offset = 0;  // the request target, as a range of the head
  std::size_t target_size = 0;
  std::uint64_t content_length = 0;  // a Content-Length body's size; 0 when chunked or none
  Method method = Method::other;
  bool http10 = false;           // HTTP/1.0; otherwise HTTP/1.1
  bool keep_alive = false;       // the connection persists after the response (RFC 9112 9.3)
  bool chunked = false;          // the body comes in chunks (Transfer-Encoding: chunked)
  bool expect_continue = false;  // HTTP/1.1 with Expect: 100-continue and a body to come

  [[nodiscard]] bool has_body() const noexcept { return chunked || content_length > 0; }
  // `request` starts where the head does.
  [[nodiscard]] std::string_view target(std::string_view request) const noexcept {
    return {request.data() + target_offset, target_size};
  }
};

// A complete request as the service answers it. The views are valid during the
// Session::process() call that found the request.
struct Request {
  Method method = Method::other;
  std::string_view target;
  std::string_view body;  // decoded if it came chunked
  bool http10 = false;
  bool keep_alive = false;
  bool draining = false;  // the server is stopping gracefully: GET /health answers 503
};

// A header field line of a head, as positions in the request (name and value without the
// colon and the whitespace around the value).
struct FieldPosition {
  std::size_t name_offset = 0;
  std::size_t name_size = 0;
  std::size_t value_offset = 0;
  std::size_t value_size = 0;
};

struct Field {
  std::string_view name;
  std::string_view value;
};

// Everything the parser made of an accepted request, for an observer (the fuzzer's re-framing
// property, tests): what a proxy would forward. Valid during the observer's call.
struct ParsedRequest {
  std::string_view method;  // the method token as sent
  std::string_view target;
  int http_minor = 1;             // HTTP/1.x
  std::span<const Field> fields;  // in order, Content-Length and Transfer-Encoding included
  std::string_view body;          // decoded
  bool keep_alive = false;
};

class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  // Called for every request the session answers (not for refusals), before its response.
  virtual void on_request(const ParsedRequest& request) = 0;
};

}  // namespace iomux::http
