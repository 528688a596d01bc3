// The request parser: llhttp (Node.js's, 8.1, built strict) run over a request's bytes as they
// arrive, each byte once, with the checks llhttp leaves to its caller.
//
// The bytes of a request stay in the connection's kept input until the request is answered,
// and every call is given that input again from the request's first byte, with new bytes
// appended. The parser feeds llhttp only the bytes it has not fed before, and remembers what
// its callbacks report as positions in the request, never as pointers (the input may move
// between calls). A field name or value cut by a read boundary arrives in pieces; its
// positions are contiguous all the same, and it is read in place, whole, once llhttp has seen
// its end: nothing of a head is copied.
//
// A Content-Length body never goes through llhttp: it is a range of the input. A chunked body
// is decoded incrementally, its data appended to a caller's string (it is not contiguous in the
// input).
//
// Strictness. llhttp in strict mode refuses bare CR everywhere, a bare LF inside a field line,
// chunk data not followed by CRLF, a chunk-size line not ended by CRLF, bad chunk sizes and
// extensions, Content-Length with Transfer-Encoding, duplicate Content-Length, "chunked"
// followed by another coding. What it accepts and this class refuses (RFC 9112 sections in
// brackets; nginx accepts some of these, refusing is the stricter choice):
//   - a bare LF ending the request line, the head or the trailers [2.2];
//   - obs-fold, a field line starting with whitespace [5.2];
//   - an empty field name; Content-Length, Transfer-Encoding or Host as a trailer [7.1.2];
//   - a version other than HTTP/1.0 and HTTP/1.1 (505), HTTP/0.9's line without a version
//     (505), a protocol other than HTTP ("RTSP/1.0");
//   - CONNECT (405, or 400 with a body: its body would be parsed as the next request);
//   - an asterisk-form target, an absolute-form one whose scheme is not http or https [3.2];
//   - Transfer-Encoding on HTTP/1.0 or twice (400), a coding other than chunked (501) [6.1];
//   - a tab around Host, Content-Length or Transfer-Encoding (nginx refuses it);
//   - HTTP/1.1 without Host, Host twice, an empty or malformed Host [3.2];
//   - a method token with characters other than A-Z, '-' and '_' (400, as nginx), an unknown
//     one (501).
// The Connection header is read as a token list: "close" wins over "keep-alive" (RFC 9112 9.3).
//
// Every verdict is one that more bytes cannot change, reached at a position that does not
// depend on how the bytes were cut into reads (the fuzzer checks it).
#pragma once

#include <llhttp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/http/llhttp_binding.h"
#include "protocols/http/request.hpp"
#include "protocols/http/response.hpp"

namespace iomux::http {

struct HeadLimits {
  std::size_t max_head = 0;    // head bytes, blank line included (431 past it)
  std::size_t max_uri = 0;     // target bytes (414 past it)
  std::uint64_t max_body = 0;  // Content-Length (413 past it)
};

struct HeadProgress {
  enum class State { more, complete, refused };
  State state = State::more;
  Status status = Status::ok;  // refused: why
};

struct BodyProgress {
  enum class State { more, complete, refused };
  State state = State::more;
  std::size_t used = 0;        // complete: bytes of the request, head included
  Status status = Status::ok;  // refused: why
};

class RequestParser {
 public:
  // Thread rule: one session's, like the session. `limits` must outlive the parser.
  explicit RequestParser(const HeadLimits& limits) noexcept;
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Reads the head of the request that `request` starts with (all of it received so far,
  // including what earlier calls saw). complete: head() is filled, and head().size is where
  // the body or the next request starts; refused: the status to answer. Refusals in order of
  // precedence, each decided as soon as the bytes decide it:
  //   414  the target's first max_uri + 1 bytes were accepted
  //   400, 501, 505, 405, 413  what llhttp or the checks above refuse
  //   431  max_head bytes without the head's end
  // Inline (below): every request's path.
  HeadProgress read_head(std::string_view request) noexcept;

  // The head read_head() found complete, until reset().
  [[nodiscard]] const RequestHead& head() const noexcept { return head_; }

  // After a complete chunked head: decodes the body's bytes up to `limit` bytes of the request
  // (head included), appending its data to `body`. Stops right after the body's end (the last
  // chunk and the trailers), so bytes of a next request are left alone.
  BodyProgress decode_chunked(std::string_view request, std::size_t limit, std::string& body);

  // Forgets the request; the next call is given a new one. Inline (below).
  void reset() noexcept;

  // Bytes of the request given to llhttp so far (its head, and its chunked body's framing).
  [[nodiscard]] std::size_t fed() const noexcept { return fed_; }
  // True once a byte of a request was read (its head is in progress, or complete).
  [[nodiscard]] bool started() const noexcept { return fed_ > 0 || method_failed_; }

  // For an observer (ParsedRequest): the head's field lines are also recorded, as positions in
  // the request.
  void record_fields(bool on) noexcept { record_fields_ = on; }
  [[nodiscard]] const std::vector<FieldPosition>& fields() const noexcept { return fields_; }
  [[nodiscard]] int http_minor() const noexcept { return parser_.http_minor; }

 private:
  // What the current header field is, for the ones read here.
  enum class FieldKind : std::uint8_t { other, host, expect, transfer_encoding, framing };

  // The callbacks, and what they call. Declared inline: each is called in request_parser.cpp
  // only (llhttp_binding.h's functions call the callbacks), and the library is built -fPIC,
  // where the compiler does not inline a function with external linkage into its callers.
  // A span's piece is [at, end).
  static inline int on_url(llhttp_t* parser, const char* at, const char* end);
  static inline int on_version_complete(llhttp_t* parser, const char* at);
  static inline int on_header_field(llhttp_t* parser, const char* at, const char* end);
  static inline int on_header_value(llhttp_t* parser, const char* at, const char* end);
  static inline int on_headers_complete(llhttp_t* parser);
  static inline int on_body(llhttp_t* parser, const char* at, const char* end);
  static inline int on_chunk_header(llhttp_t* parser);
  friend int ::iomux_http_on_url(llhttp_t*, const char*, const char*);
  friend int ::iomux_http_on_version_complete(llhttp_t*, const char*);
  friend int ::iomux_http_on_header_field(llhttp_t*, const char*, const char*);
  friend int ::iomux_http_on_header_value(llhttp_t*, const char*, const char*);
  friend int ::iomux_http_on_headers_complete(llhttp_t*);
  friend int ::iomux_http_on_body(llhttp_t*, const char*, const char*);
  friend int ::iomux_http_on_chunk_header(llhttp_t*);
  // A refusal decided by a callback: remembered, and llhttp told to stop.
  inline int refuse(Status status) noexcept;
  inline int judge_name(const char* name, std::size_t size) noexcept;
  static FieldKind other_field_kind(const char* name, std::size_t size) noexcept;
  inline Status judge_value(std::string_view raw) noexcept;
  // Out of line, the cases the callbacks above meet rarely: they would make the common case
  // save and restore more registers.
  Status judge_read_value(std::string_view raw) noexcept;
  bool value_follows_colon(std::size_t after_colon) noexcept;
  void record_field();
  inline Status judge_head() noexcept;

  std::size_t url_accepted(std::size_t stop) const noexcept;
  Status refusal_of(llhttp_errno_t error) const noexcept;
  HeadProgress judge_method(std::string_view request) noexcept;
  // read_head() for what is not a head complete as it should be: more to come, or a refusal.
  HeadProgress head_stopped(std::string_view request, llhttp_errno_t error, std::size_t end) noexcept;

  llhttp_t parser_;

  const HeadLimits* limits_;
  RequestHead head_;
  // Valid during one execute: where the request starts in this call's input.
  const char* base_ = nullptr;
  const char* end_ = nullptr;  // the end of what this execute gives llhttp
  std::string* body_ = nullptr;

  std::size_t fed_ = 0;  // bytes of the request given to llhttp
  std::size_t url_offset_ = 0;
  std::size_t url_size_ = 0;
  std::size_t version_end_ = 0;  // the byte after the version, where the request line ends
  std::size_t field_offset_ = 0;
  std::size_t field_size_ = 0;
  std::size_t value_offset_ = 0;
  std::size_t value_size_ = 0;
  std::size_t method_judged_ = 0;  // bytes judge_method() has looked at
  Status refusal_ = Status::ok;
  FieldKind field_kind_ = FieldKind::other;
  std::uint8_t hosts_ = 0;
  std::uint8_t transfer_encodings_ = 0;
  bool url_seen_ = false;
  bool url_open_ = false;  // the target's last piece reached the end of an execute
  bool field_open_ = false;
  bool value_open_ = false;
  bool expect_continue_ = false;
  bool tab_before_value_ = false;  // the current field's value follows a tab
  bool trailers_ = false;
  bool method_failed_ = false;  // llhttp refused the method: the token's end decides the status
  bool record_fields_ = false;
  std::uint8_t valid_host_size_ = 0;  // 0: none yet (an empty Host is not valid)
  char valid_host_[40];               // the last Host value found valid, if it fits
  std::vector<FieldPosition> fields_;
};

inline HeadProgress RequestParser::read_head(std::string_view request) noexcept {
  if (method_failed_) [[unlikely]]
    return judge_method(request);
  const std::size_t end = std::min(request.size(), limits_->max_head);
  if (end <= fed_) return {};
  base_ = request.data();
  end_ = base_ + end;
  const llhttp_errno_t error = llhttp_execute(&parser_, base_ + fed_, end - fed_);
  if (error == HPE_PAUSED) [[likely]] {
    // Complete: the target and the version were judged on the way (on_version_complete), the
    // head when it ended (on_headers_complete). llhttp takes a bare LF for the blank line that
    // ends the head, which head_stopped() refuses.
    const std::size_t stop = static_cast<std::size_t>(parser_.error_pos - base_);
    if (base_[stop - 2] == '\r') [[likely]] {
      fed_ = stop;
      head_.size = stop;
      return {HeadProgress::State::complete, Status::ok};
    }
  }
  return head_stopped(request, error, end);
}

inline void RequestParser::reset() noexcept {
  // llhttp_init(), not llhttp_reset(): the same state (this parser sets nothing llhttp_reset()
  // keeps but `data`), without saving and restoring what it keeps.
  llhttp_init(&parser_, HTTP_REQUEST, nullptr);
  parser_.data = this;
  fed_ = 0;
  url_size_ = 0;
  method_judged_ = 0;
  // Every one of these small members, in declaration order, field_kind_ and tab_before_value_
  // too (they are set before they are read): adjacent stores of zero merge into two.
  refusal_ = Status::ok;
  field_kind_ = FieldKind::other;
  hosts_ = 0;
  transfer_encodings_ = 0;
  url_seen_ = false;
  url_open_ = false;
  field_open_ = false;
  value_open_ = false;
  expect_continue_ = false;
  tab_before_value_ = false;
  trailers_ = false;
  method_failed_ = false;
  fields_.clear();
}

}  // namespace iomux::http
