// What an HTTP service answers and the limits it holds a client to.
//
// The limits bound what one connection can make the server keep: an unfinished request waits
// in the connection's kept input, so a slow or hostile client holds at most max_head + max_body
// bytes (Service::max_kept_input()).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace iomux::http {

// The tutorial servers' reply text (iomux::kDefaultReply, the plain-TCP protocols' default
// reply), which GET / answers so the HTTP service says what they say. Spelled out here rather
// than included, so this core does not depend on the connection layer's headers.
inline constexpr std::string_view kTutorialReply = "----ok----Request accepted";

struct Options {
  // Request line and header fields together, with the blank line that ends them. nginx reads a
  // head into at most 4 buffers of 8 KiB (large_client_header_buffers 4 8k), each line within
  // one buffer; Apache allows 8190 bytes per line. 16 KiB passes a browser's cookie-laden head
  // (typically 1-8 KiB) while keeping what a slowloris client can pin per connection small.
  std::size_t max_head = 16 * 1024;

  // The request target. nginx answers 414 when the request line does not fit one 8 KiB
  // buffer, Apache past 8190 bytes (LimitRequestLine). The whole request line may be a little
  // longer (method, spaces, version); see HeadScanner.
  std::size_t max_uri = 8 * 1024;

  // The request body. nginx's client_max_body_size is 1m and lets a body of exactly 1 MiB
  // through; so do we (POST /echo of 1 MiB is part of the suite). A chunked body's framing
  // (chunk sizes, extensions, trailers) counts against this limit too, since it is kept
  // in the connection's input all the same, so there is 64 KiB of room above 1 MiB for it.
  std::size_t max_body = 1024 * 1024 + 64 * 1024;

  // GET / answers this text.
  std::string reply{kTutorialReply};

  // GET /stats answers what this returns, serialised. Called on the thread of the session that
  // got the request, so it must be safe to call from every thread that runs sessions, and must
  // not throw. Empty: /stats answers {}.
  std::function<nlohmann::json()> stats;
};

}  // namespace iomux::http
