// Response bytes: the status codes this service sends, where responses go, and the two ways a
// response is made.
//
// Every response has the same layout, so a fixed one can be laid down in advance except for
// its Date:
//
//   HTTP/1.1 200 OK\r\n
//   Server: iomux\r\n
//   Content-Type: text/plain\r\n
//   Content-Length: 13\r\n
//   [Connection: keep-alive | close\r\n]      one of three heads, chosen per request
//   [Allow: GET, HEAD\r\n]                    405 only
//   Date: <29 bytes from DateCache>\r\n
//   \r\n
//   Hello, World!                             left out for HEAD
//
// A CannedResponse holds the three heads (up to "Date: ") and the tail ("\r\n\r\n" + body), and
// each thread keeps them composed with the current second's Date, so answering is one append of
// bytes that are already there. append_response() writes the same layout for a body known only
// at run time (echo, stats).
#pragma once

#include <array>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

namespace iomux::http {

enum class Status : std::uint16_t {
  ok = 200,
  bad_request = 400,
  not_found = 404,
  method_not_allowed = 405,
  request_timeout = 408,
  payload_too_large = 413,
  uri_too_long = 414,
  header_fields_too_large = 431,
  not_implemented = 501,
  service_unavailable = 503,
  version_not_supported = 505,
};

std::string_view reason_phrase(Status status) noexcept;

// Sent before the body of a request that asked for it (Expect: 100-continue).
inline constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

// What the response says about the connection after it.
enum class Persistence : std::uint8_t {
  implied,     // HTTP/1.1 without "Connection: close": persistent, nothing to say
  keep_alive,  // an HTTP/1.0 client asked for it: "Connection: keep-alive"
  close,       // "Connection: close", and the server closes after sending
};

// Where a session's responses go, in order: the connection's output (the handler writes each
// one as it is made, so the bytes are copied once, into the send) or a string (tests). The bytes
// given to append() are valid only during the call.
class ResponseSink {
 public:
  virtual void append(std::string_view bytes) = 0;

 protected:
  ~ResponseSink() = default;
};

class StringSink final : public ResponseSink {
 public:
  explicit StringSink(std::string& out) noexcept : out_(&out) {}
  // Out of line (response.cpp): seen here, the compiler guesses it is the sink a session
  // writes to and tests for it before every call to the connection's.
  void append(std::string_view bytes) override;

 private:
  std::string* out_;
};

// Appends a whole response whose body is known only now; `now` (seconds since the epoch) dates
// it.
void append_response(ResponseSink& out, Status status, std::string_view content_type, std::string_view body,
                     Persistence persistence, std::time_t now, bool with_body);

class CannedResponse {
 public:
  // `extra_headers`: whole lines, each ending in "\r\n" (e.g. "Allow: GET, HEAD\r\n").
  CannedResponse(Status status, std::string_view content_type, std::string_view body,
                 std::string_view extra_headers = {});

  // with_body false: a response to HEAD, same headers (Content-Length included), no body.
  // Inline (below): every request's path.
  void append_to(ResponseSink& out, Persistence persistence, std::time_t now, bool with_body) const;

 private:
  // The thread's last composed responses (head, date and tail in one string). Direct-mapped: a
  // slot holds the latest of the responses that map to it, and a new second (a new Date)
  // composes again. What a lookup reads is trivially destructible, so the thread's slots are
  // reached without the guard a thread_local with a destructor needs; the strings are apart.
  struct Composed {
    std::uint64_t key = 0;  // key_of(); 0: empty
    std::time_t second = 0;
    const char* bytes = nullptr;  // the slot's string
    std::size_t size = 0;
    std::size_t head_size = 0;  // up to and with the blank line: a HEAD response
  };
  static constexpr std::size_t kComposedSlots = 16;
  static std::array<Composed, kComposedSlots>& composed_slots() noexcept {
    thread_local constinit std::array<Composed, kComposedSlots> slots{};
    return slots;
  }
  [[nodiscard]] std::uint64_t key_of(Persistence persistence) const noexcept {
    return id_ * 3 + static_cast<std::uint64_t>(persistence) + 1;
  }
  // Composes the response into its slot, then appends it: append_to() when the slot does not
  // hold it for this second (out of line, so that the common case keeps nothing across a call).
  void compose_and_append(ResponseSink& out, Persistence persistence, std::time_t now, bool with_body) const;

  std::array<std::string, 3> heads_;  // indexed by Persistence; each ends with "Date: "
  std::string tail_;                  // "\r\n\r\n" + body
  std::uint64_t id_;                  // unique in the process, for the composed responses' cache
};

inline void CannedResponse::append_to(ResponseSink& out, Persistence persistence, std::time_t now,
                                      bool with_body) const {
  const std::uint64_t key = key_of(persistence);
  const Composed& slot = composed_slots()[key % kComposedSlots];
  if (slot.key == key && slot.second == now) [[likely]]
    out.append({slot.bytes, with_body ? slot.size : slot.head_size});
  else
    compose_and_append(out, persistence, now, with_body);
}

}  // namespace iomux::http
