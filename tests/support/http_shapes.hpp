// HTTP requests a hostile client sends, shared by the unit tests of the HTTP core
// (tests/unit/http_smuggling_test.cpp) and the differential test against nginx
// (tests/interop/nginx_differential_test.cpp): framing shapes a proxy could read differently
// from iomux (request smuggling), each with the status iomux answers.
#pragma once

#include <string>
#include <string_view>
#include <vector>
#include "support/internals.hpp"

namespace iomux::test {

// The request a smuggler hides behind a shape: answered 200 if it is ever parsed.
inline const std::string kHiddenRequest = "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n";

struct Shape {
  std::string name;
  std::string request;
  int status;
};

inline std::string chunked(std::string_view body) {
  return "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(body);
}

inline std::string with_field(std::string_view lines) {
  return "GET / HTTP/1.1\r\nHost: t\r\n" + std::string(lines) + "\r\n";
}

inline std::vector<Shape> refused_shapes() {
  const std::string& connect_body = kHiddenRequest;
  return {
      // CONNECT: after it the bytes are a tunnel's; a body would be read as the next request.
      {"CONNECT with a body that is a request",
       "CONNECT x:443 HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(connect_body.size()) + "\r\n\r\n" +
           connect_body,
       400},
      {"CONNECT with a chunked body",
       "CONNECT x:443 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"CONNECT without a body", "CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", 405},

      // Chunk framing.
      {"chunk data not followed by CRLF", chunked("5\r\nhelloXY0\r\n\r\n"), 400},
      {"chunk data longer than its size", chunked("3\r\nhello\r\n0\r\n\r\n"), 400},
      {"chunk size line ended by CR and another byte", chunked("5\rXhello\r\n0\r\n\r\n"), 400},
      {"last chunk ended by CR and another byte", chunked("5\r\nhello\r\n0\rX\r\n\r\n"), 400},
      {"bare LF after chunk data", chunked("5\r\nhello\n0\r\n\r\n"), 400},
      {"bare LF after a chunk size", chunked("5\nhello\r\n0\r\n\r\n"), 400},
      {"bare LF after the last chunk size", chunked("5\r\nhello\r\n0\n\r\n"), 400},
      {"bare LF ending the trailers", chunked("5\r\nhello\r\n0\r\n\n"), 400},
      {"negative chunk size", chunked("-5\r\nhello\r\n0\r\n\r\n"), 400},
      {"chunk size with 0x", chunked("0x5\r\nhello\r\n0\r\n\r\n"), 400},
      {"chunk size with a plus sign", chunked("+5\r\nhello\r\n0\r\n\r\n"), 400},
      {"space before a chunk size", chunked(" 5\r\nhello\r\n0\r\n\r\n"), 400},
      {"space after a chunk size", chunked("5 \r\nhello\r\n0\r\n\r\n"), 400},
      {"empty chunk size line", chunked("\r\nhello\r\n0\r\n\r\n"), 400},
      {"chunk size overflowing 64 bits", chunked("10000000000000005\r\nhello\r\n0\r\n\r\n"), 400},
      {"chunk extension without a name", chunked("5;\r\nhello\r\n0\r\n\r\n"), 400},
      {"chunk extension with whitespace", chunked("5 ;a=b\r\nhello\r\n0\r\n\r\n"), 400},
      {"chunk extension name with a space", chunked("5;a b\r\nhello\r\n0\r\n\r\n"), 400},
      {"chunk extension with an unterminated quote", chunked("5;a=\"b\r\nhello\r\n0\r\n\r\n"), 400},
      {"chunk extension with a control byte", chunked(std::string("5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n", 20)), 400},
      // llhttp 8.1 refuses an extension after one with a value (fixed in later versions): stricter
      // than RFC 9112 7.1.1, and nginx, allow.
      {"chunk extension after one with a value", chunked("5;a=b;c\r\nhello\r\n0\r\n\r\n"), 400},
      {"trailer ended by a bare LF", chunked("5\r\nhello\r\n0\r\nX: y\n\r\n"), 400},
      {"folded trailer", chunked("5\r\nhello\r\n0\r\nX: y\r\n z\r\n\r\n"), 400},
      {"Content-Length as a trailer", chunked("5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n"), 400},
      {"Transfer-Encoding as a trailer", chunked("5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400},
      {"Host as a trailer", chunked("5\r\nhello\r\n0\r\nHost: other\r\n\r\n"), 400},
      {"trailer without a colon", chunked("5\r\nhello\r\n0\r\nno colon\r\n\r\n"), 400},
      {"data after the last chunk", chunked("0\r\nhello\r\n\r\n"), 400},
      {"backslash in a quoted chunk extension", chunked("5;a=\"b\\\"c\"\r\nhello\r\n0\r\n\r\n"), 400},

      // Line ends and folding in the head.
      {"obs-fold", with_field("X: a\r\n b\r\n"), 400},
      {"obs-fold with a tab", with_field("X: a\r\n\tb\r\n"), 400},
      {"obs-fold of an empty first line", with_field("X:\r\n b\r\n"), 400},
      {"obs-fold of whitespace only", with_field("X:\r\n \r\n"), 400},
      {"obs-fold of Transfer-Encoding",
       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n \r\n\r\n0\r\n\r\n", 400},
      {"whitespace before the first field", "GET / HTTP/1.1\r\n Host: t\r\n\r\n", 400},
      {"request line ended by a bare LF", "GET / HTTP/1.1\nHost: t\r\n\r\n", 400},
      {"field line ended by a bare LF", "GET / HTTP/1.1\r\nHost: t\nX: y\r\n\r\n", 400},
      {"head ended by a bare LF", "GET / HTTP/1.1\r\nHost: t\r\n\n", 400},
      {"all lines ended by bare LFs", "GET / HTTP/1.1\nHost: t\n\n", 400},
      {"bare CR in the request line", "GET / HTTP/1.1\rHost: t\r\n\r\n", 400},
      {"bare CR in a field line", "GET / HTTP/1.1\r\nHost: t\rX: y\r\n\r\n", 400},
      {"bare CR before the blank line", "GET / HTTP/1.1\r\nHost: t\r\n\rX\r\n\r\n", 400},
      {"empty field name", with_field(": v\r\n"), 400},
      {"field name with an invalid character", with_field("X@: y\r\n"), 400},
      {"field name with a space", with_field("X Y: z\r\n"), 400},
      {"bare CR in a field value", with_field("X: a\rb\r\n"), 400},
      {"bare LF in a field value", with_field("X: a\nb: c\r\n"), 400},
      {"request line with a trailing space", "GET / HTTP/1.1 \r\nHost: t\r\n\r\n", 400},

      {"NUL in a field value", with_field(std::string("X: a\0b\r\n", 8)), 400},
      {"DEL in a field value",
       with_field("X: a\x7f"
                  "b\r\n"),
       400},
      {"NUL in the target", std::string("GET /a\0b HTTP/1.1\r\nHost: t\r\n\r\n", 30), 400},

      // Body length: Content-Length and Transfer-Encoding.
      {"Content-Length then Transfer-Encoding",
       "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"Transfer-Encoding then Content-Length",
       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400},
      {"two equal Content-Lengths",
       "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400},
      {"Content-Length list", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 5\r\n\r\nhello", 400},
      {"Content-Length with a sign", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello", 400},
      {"negative Content-Length", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400},
      {"hexadecimal Content-Length", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0x5\r\n\r\nhello", 400},
      {"empty Content-Length", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length:\r\n\r\n", 400},
      {"Transfer-Encoding not ending in chunked",
       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 501},
      {"Transfer-Encoding identity", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\n\r\n", 501},
      {"Transfer-Encoding gzip with Content-Length",
       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\nhello", 501},
      {"Transfer-Encoding twice",
       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       400},
      {"Transfer-Encoding with an empty element",
       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: , chunked\r\n\r\n0\r\n\r\n", 501},
      {"Transfer-Encoding after a tab (nginx: 501)",
       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n", 501},
      {"Transfer-Encoding before a tab (nginx: 501)",
       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n", 501},
      {"Transfer-Encoding with a trailing comma",
       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", 501},
      {"Transfer-Encoding quoted", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n",
       501},
      {"space before the colon of Transfer-Encoding",
       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400},
      {"Content-Length after a tab (nginx: 400)", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length:\t5\r\n\r\nhello",
       400},
      {"Content-Length overflowing 64 bits",
       "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 18446744073709551616\r\n\r\n", 400},
      {"Content-Length with a space inside", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1 0\r\n\r\n0123456789",
       400},
      {"Transfer-Encoding on HTTP/1.0", "POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},

      // Targets and Host.
      {"absolute-form with another scheme", "GET ftp://x/plaintext HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"absolute-form without an authority", "GET http:// HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"absolute-form with userinfo", "GET http://u@x/plaintext HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"absolute-form without //", "GET http:/x/plaintext HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"authority-form on GET", "GET x:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"asterisk-form on GET", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"asterisk-form on OPTIONS", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"non-ASCII target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
      {"HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", 400},
      {"two Host lines", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
      {"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400},
      {"Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
      {"Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
      {"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400},
      {"Host with a bad port", "GET / HTTP/1.1\r\nHost: a:8a\r\n\r\n", 400},
      {"Host with an unclosed bracket", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},
      {"Host after a tab (nginx: 400)", "GET / HTTP/1.1\r\nHost:\tt\r\n\r\n", 400},
      {"Host of a port alone", "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400},
      {"Host twice, in two cases", "GET / HTTP/1.1\r\nHost: t\r\nhost: t\r\n\r\n", 400},
      {"Host with trailing whitespace (nginx: 400)", "GET / HTTP/1.1\r\nHost: t \t\r\n\r\n", 400},

      // Versions and methods.
      {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: t\r\n\r\n", 505},
      {"HTTP/12.0", "GET / HTTP/12.0\r\nHost: t\r\n\r\n", 505},
      {"HTTP/1.10", "GET / HTTP/1.10\r\nHost: t\r\n\r\n", 400},
      {"HTTP/0.9 by its version", "GET / HTTP/0.9\r\n\r\n", 505},
      {"RTSP", "GET / RTSP/1.0\r\nHost: t\r\n\r\n", 400},
      {"an RTSP method over HTTP", "DESCRIBE / HTTP/1.1\r\nHost: t\r\n\r\n", 501},
      {"tab after the method", "GET\t/ HTTP/1.1\r\nHost: t\r\n\r\n", 400},
      {"tab in the target", "GET /a\tb HTTP/1.1\r\nHost: t\r\n\r\n", 400},
      {"space in the target", "GET /a b HTTP/1.1\r\nHost: t\r\n\r\n", 400},
      {"lower-case version", "GET / http/1.1\r\nHost: t\r\n\r\n", 400},
      {"method longer than any", "VERYVERYLONGMETHODNAME / HTTP/1.1\r\nHost: t\r\n\r\n", 501},

  };
}

// Shapes a strict reading still accepts (RFC 9112 allows them), each answered 200.
inline std::vector<Shape> accepted_shapes() {
  return {
      {"chunk extensions, quoted", chunked("5;a;b=\"d e\"\r\nhello\r\n0;x=y\r\n\r\n"), 200},
      {"trailers", chunked("5\r\nhello\r\n0\r\nX-Check: 1\r\nX-More: 2\r\n\r\n"), 200},
      {"upper-case hex chunk size with leading zeros", chunked("0005\r\nhello\r\n000\r\n\r\n"), 200},
      {"Chunked in another case", "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n", 200},
      {"absolute-form, HTTP in capitals", "GET HTTP://x/plaintext HTTP/1.1\r\nHost: y\r\n\r\n", 200},
      {"absolute-form https without a path", "GET https://x HTTP/1.1\r\nHost: y\r\n\r\n", 200},
      {"Host with a port and an IPv6 literal", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 200},
      {"HTTP/1.0 without Host", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200},
      {"empty field value", with_field("X-Empty:\r\n"), 200},
      {"Transfer-Encoding with a trailing space",
       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked \r\n\r\n0\r\n\r\n", 200},
      {"Content-Length with leading zeros", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 005\r\n\r\nhello", 200},
      {"Content-Length: 0", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 200},
      {"chunk size with many leading zeros", chunked("00000000000000000000005\r\nhello\r\n0\r\n\r\n"), 200},
      {"several spaces in the request line", "GET  /  HTTP/1.1\r\nHost: t\r\n\r\n", 200},
      {"target with a fragment", "GET /#frag HTTP/1.1\r\nHost: t\r\n\r\n", 200},
      {"field value with obs-text", with_field("X: \xe9\r\n"), 200},
      {"GET with a body", "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", 200},
      {"absolute-form with an IPv6 literal", "GET http://[::1]/ HTTP/1.1\r\nHost: t\r\n\r\n", 200},
      {"absolute-form with a port", "GET http://x:80/ HTTP/1.1\r\nHost: t\r\n\r\n", 200},
      {"Host without a space after the colon", "GET / HTTP/1.1\r\nHost:t\r\n\r\n", 200},
      {"Connection: Upgrade, ignored", "GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
       200},
      {"Upgrade with a body, ignored",
       "POST /echo HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: foo\r\nContent-Length: 5\r\n\r\nhello", 200},
      {"HTTP/1.0 Expect: 100-continue, kept alive",
       "POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", 200},

  };
}

}  // namespace iomux::test
