// An HTTP/1.1 server as a Handler, on any of the ten models: curl, ab and wrk talk to it.
// Requests parsed by Node.js's http_parser (libhttp-parser), Content-Length and chunked
// bodies, keep-alive (HTTP/1.1 by default, HTTP/1.0 on request), pipelining answered in order,
// HEAD, Expect: 100-continue; every limit answered with its status and a close (400, 413,
// 414, 431, 501, 505); a slow client's head bounded in time and size. Routes:
//
//   GET  /            the tutorial's reply text
//   GET  /plaintext   "Hello, World!" (the TechEmpower plaintext test)
//   POST /echo        the request body back
//   GET  /stats       the server's counters as JSON
//
// docs/protocols.md has the details and where it differs from RFC 9112.
//
//   auto server = iomux::make_server(opts, iomux::http_protocol());
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "iomux/handler.hpp"
#include "iomux/protocols.hpp"

namespace iomux {

struct HttpOptions {
  std::size_t max_head = 16 * 1024;                // request line and headers: 431 past it
  std::size_t max_uri = 8 * 1024;                  // the request target: 414 past it
  std::size_t max_body = 1024 * 1024 + 64 * 1024;  // 413 past it (a 1 MiB body passes)
  // A request head must be complete this long after its first byte arrived; a client that
  // trickles its headers slower is closed (nginx's client_header_timeout).
  std::chrono::milliseconds header_timeout{10'000};
  std::string reply{kDefaultReply};  // GET / answers it
};

HandlerFactory http_protocol(HttpOptions options = {});

}  // namespace iomux
