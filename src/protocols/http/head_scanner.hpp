// Finds where a request head ends, incrementally, and refuses a head as soon as its first bytes
// show it cannot be accepted.
//
// A session is given the same unfinished head again and again, a few bytes longer each time,
// until the blank line arrives. Searching from the start on every call would be quadratic in
// the head's size for a client that sends it byte by byte, so the scanner remembers how far it
// has looked. http_parser runs over a head once, when it is complete (and over its request line
// once, when that is complete and the rest is not; see Session).
//
// What it refuses, checked in this order on the bytes seen so far (every check keeps its
// verdict as bytes are added, so the verdict never depends on how the head was cut into reads):
//   1. the method: 400 unless the request starts with a token (RFC 9110 5.6.2) and a space;
//      501 when the token is longer than any method http_parser knows (the rest of 501,
//      a short unknown method, is http_parser's to find);
//   2. the request line: 414 when no line end comes within max_request_line bytes;
//   3. the head: too large (431) when no blank line comes within max_head bytes.
// max_request_line < max_head (Service sees to it), so 2 is decided before 3 can be. Between 2
// and 3 the session has http_parser judge the request line once it is complete (line_size()),
// which is why 3 is reported as its own kind rather than as a refusal.
#pragma once

#include <cstddef>
#include <string_view>

#include "protocols/http/response.hpp"

namespace iomux::http {

struct HeadLimits {
  std::size_t max_head = 0;          // head bytes, blank line included
  std::size_t max_request_line = 0;  // request line bytes before its '\n'
};

struct HeadScan {
  enum class Kind { incomplete, complete, refused, too_large };
  Kind kind = Kind::incomplete;
  std::size_t size = 0;        // complete: the head's size, its blank line included
  Status status = Status::ok;  // refused: why (too_large: 431)
  std::size_t examined = 0;    // bytes this call looked at (for work accounting)
};

class HeadScanner {
 public:
  // Thread rule: one session's, like the session.
  //
  // `request` starts at the request's first byte and begins with the bytes given to the
  // previous call (if that call found the head incomplete). A line ends at "\n" (with or
  // without "\r" before it, as http_parser reads lines) and the head at the first empty line.
  HeadScan scan(std::string_view request, const HeadLimits& limits) noexcept;

  // True once part of a head has been seen and kept: the caller may time a slow client out.
  [[nodiscard]] bool started() const noexcept { return scanned_ > 0; }

  // The request line's size with its "\n", once seen; 0 before.
  [[nodiscard]] std::size_t line_size() const noexcept { return line_end_ == kNotFound ? 0 : line_end_ + 1; }

  // Forgets the head; the next scan() is given a new request.
  void reset() noexcept {
    scanned_ = 0;
    line_end_ = kNotFound;
  }

 private:
  static constexpr std::size_t kNotFound = static_cast<std::size_t>(-1);

  std::size_t scanned_ = 0;           // leading bytes searched without finding the head's end
  std::size_t line_end_ = kNotFound;  // where the request line's '\n' is, once seen
};

}  // namespace iomux::http
