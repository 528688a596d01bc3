// An HTTP/1.1 server as a Handler, on any of the ten models: curl, ab and wrk talk to it.
// Requests parsed by llhttp (Node.js's parser) in strict mode, with the framing checks a
// server in front of or behind a proxy needs (no request smuggling); Content-Length and chunked
// bodies, keep-alive (HTTP/1.1 by default, HTTP/1.0 on request), pipelining answered in order,
// HEAD, Expect: 100-continue; every limit answered with its status and a close (400, 405 to
// CONNECT, 408, 413, 414, 431, 501, 505); nginx's header, body and keep-alive timeouts. Routes:
//
//   GET  /            the tutorial's reply text
//   GET  /plaintext   "Hello, World!" (the TechEmpower plaintext test)
//   POST /echo        the request body back
//   GET  /stats       the server's counters as JSON
//   GET  /health      200 "ok" while serving, 503 "draining" once a graceful stop began
//
// A graceful stop loses no request: every connection reads on and answers what arrives (a
// request on its way, any pipelined behind it, an idle keep-alive connection's next request),
// the last response saying "Connection: close", then closes; an idle one that stays idle goes
// at its keep-alive timeout (on the models that read while they drain, see
// Handler::on_server_drain).
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
  // Timeouts with nginx's meanings and defaults; 0: none.
  // A request head must be complete this long after the accept (the first request) or after
  // its first byte (later ones); otherwise the connection is closed (client_header_timeout):
  // this also ends a connection that sends nothing.
  std::chrono::milliseconds header_timeout{10'000};
  // A request body must not pause longer than this between two reads; otherwise it is
  // answered 408 and the connection closed (client_body_timeout).
  std::chrono::milliseconds body_timeout{60'000};
  // A connection with no request in progress is closed after this long (keepalive_timeout).
  std::chrono::milliseconds keepalive_timeout{75'000};
  std::string reply{kDefaultReply};  // GET / answers it
};

HandlerFactory http_protocol(HttpOptions options = {});

}  // namespace iomux
