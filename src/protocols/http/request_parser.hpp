// The request parser: http_parser (Node.js's, 2.9) run over a complete head, and then, for a
// chunked body, over the body's bytes as they arrive.
//
// The head is parsed in one go, from one contiguous buffer (the connection's kept input), so
// every callback sees a whole field or value and nothing is copied. A chunked body is decoded
// incrementally instead: its bytes are fed once each, across reads, and the decoded data is
// appended to a caller's string (it is not contiguous in the input). A Content-Length body
// never goes through the parser: it is a range of the input.
#pragma once

#include <http_parser.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "protocols/http/request.hpp"
#include "protocols/http/response.hpp"

namespace iomux::http {

struct BodyProgress {
  enum class State { more, complete, refused };
  State state = State::more;
  std::size_t used = 0;        // bytes of the input the parser took
  Status status = Status::ok;  // refused: why
};

class RequestParser {
 public:
  // Thread rule: one session's, like the session.
  RequestParser() noexcept;

  // Parses `head`, a whole request head ending with its blank line; its request line (with
  // its "\n") is the first `line_size` bytes. Status::ok and `out` filled when the request is
  // acceptable so far; otherwise the status to refuse it with. After Status::ok with
  // out.chunked, decode_chunked() takes the body.
  //
  // A verdict on the request line comes before any on the fields, so that it is the same one
  // parse_request_line() gives while the fields are still on their way.
  //
  // Refusals, RFC 9112 and 9110 sections in brackets:
  //   400  malformed (http_parser's verdict); Transfer-Encoding with Content-Length [6.1];
  //        Transfer-Encoding other than one final "chunked" [6.3], or on HTTP/1.0 [6.1];
  //        HTTP/1.1 without Host, or several Host lines [3.2]
  //   413  Content-Length over max_body (decided before the body arrives)
  //   414  target over max_uri
  //   431  http_parser's own header size limit (80 KiB, above the default max_head)
  //   501  a method http_parser does not know; a transfer coding other than chunked [6.1]
  //   505  an HTTP major version other than 1 (HTTP/2.0, a version-less HTTP/0.9 line)
  Status parse_head(std::string_view head, std::size_t line_size, std::size_t max_uri, std::uint64_t max_body,
                    RequestHead& out) noexcept;

  // Judges a request line alone (with its "\n"), before the rest of its head has arrived: a
  // malformed line, an unknown method or a long target are refused as parse_head() would,
  // and so is a version other than 1.x (an HTTP/0.9 client sends this line and nothing more).
  // Status::ok: no refusal yet; the head is still to be parsed whole. Every refusal here is
  // the one parse_head() gives for any head that starts with this line.
  Status parse_request_line(std::string_view line, std::size_t max_uri) noexcept;

  // Decodes the next bytes of a chunked body (after those given before; never empty),
  // appending its data to `body`. Stops right after the body's end (the last chunk and
  // trailers), so bytes of a next request are left alone.
  BodyProgress decode_chunked(std::string_view bytes, std::string& body);

 private:
  http_parser parser_;
};

}  // namespace iomux::http
