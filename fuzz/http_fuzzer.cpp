// libFuzzer target for the HTTP core (src/protocols/http/).
//
// It drives Session::process() the way a server does: bytes arrive in chunks, and each call sees
// every byte not consumed before with the new chunk appended. The same stream is also processed
// in one call by a second session; the two must answer alike, since a client cannot tell how its
// bytes were cut into reads. The input is a small header that picks the limits and the
// chunking, then the stream:
//
//   byte 0      flags: bit 0 small limits (below), bit 1 a /stats callback
//   byte 1      max_head = 128 + 4 * byte    (small limits only)
//   byte 2      max_uri  = 16 + 4 * byte     (small limits only; the Service caps it)
//   byte 3      max_body = 4 * byte          (small limits only)
//   bytes 4-7   four chunk sizes, used in turn; 0 presents the kept bytes again with nothing new
//   bytes 8..   the stream
//
// Properties, each checked with __builtin_trap() so a violation is a crash libFuzzer keeps:
//   - consumed never exceeds the input, and a close consumes all of it;
//   - the kept bytes stay within max_kept_input(); nothing new means nothing happens;
//   - the work (bytes given to llhttp) is at most the bytes fed: each byte once;
//   - responses, request counts, closing, the kept tail and the requests as parsed equal those
//     of one-shot processing (split invariance);
//   - every request accepted, re-framed from its parsed form (method, target, version, fields,
//     decoded body, serialized canonically with Content-Length instead of its framing), parses
//     to the same request (reframes_the_same()): what the parser took is what the bytes meant,
//     whatever framing carried it;
//   - the output is a sequence of well-formed responses: a status line of ours, Server, Date,
//     Content-Type and Content-Length headers, and a body of Content-Length bytes (or none,
//     for a HEAD request's response; see parses_as_responses()).
//
//   build and run: scripts/check.sh fuzz (or make fuzz), which configure build-fuzz/ with clang
//   (fuzz/CMakeLists.txt) and run build-fuzz/fuzz/http_fuzzer -max_len=4096 CORPUS_DIR fuzz/corpus/http
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/http/date_cache.hpp"
#include "protocols/http/request.hpp"
#include "protocols/http/session.hpp"

namespace {

void require(bool ok) {
  if (!ok) __builtin_trap();
}

constexpr std::time_t kNow = 784111777;
constexpr std::size_t kHeaderSize = 8;

struct Header {
  iomux::http::Options options;
  std::size_t chunk_sizes[4] = {};
};

Header read_header(const std::uint8_t* data) {
  Header h;
  if (data[0] & 1) {
    h.options.max_head = 128 + 4 * std::size_t{data[1]};
    h.options.max_uri = 16 + 4 * std::size_t{data[2]};
    h.options.max_body = 4 * std::size_t{data[3]};
  }
  if (data[0] & 2) h.options.stats = [] { return nlohmann::json{{"requests", 1}}; };
  bool all_empty = true;
  for (int i = 0; i < 4; ++i) {
    h.chunk_sizes[i] = data[4 + i];
    all_empty = all_empty && h.chunk_sizes[i] == 0;
  }
  if (all_empty) h.chunk_sizes[0] = 1;  // always make progress
  return h;
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool is_our_status_line(std::string_view line) {
  static constexpr std::string_view kLines[] = {
      "HTTP/1.1 100 Continue",
      "HTTP/1.1 200 OK",
      "HTTP/1.1 400 Bad Request",
      "HTTP/1.1 404 Not Found",
      "HTTP/1.1 405 Method Not Allowed",
      "HTTP/1.1 408 Request Timeout",
      "HTTP/1.1 413 Payload Too Large",
      "HTTP/1.1 414 URI Too Long",
      "HTTP/1.1 431 Request Header Fields Too Large",
      "HTTP/1.1 501 Not Implemented",
      "HTTP/1.1 505 HTTP Version Not Supported",
  };
  return std::find(std::begin(kLines), std::end(kLines), line) != std::end(kLines);
}

// One response head, checked; its size and Content-Length.
struct ResponseHead {
  bool ok = false;
  std::size_t size = 0;
  std::size_t content_length = 0;
  bool body_required = false;  // a refusal or an echo: never answers HEAD
  bool interim = false;        // 100 Continue: a head alone
};

ResponseHead read_response_head(std::string_view out) {
  ResponseHead head;
  const std::size_t end = out.find("\r\n\r\n");
  if (end == std::string_view::npos) return head;
  head.size = end + 4;
  std::string_view lines = out.substr(0, end + 2);
  const std::size_t status_end = lines.find("\r\n");
  const std::string_view status_line = lines.substr(0, status_end);
  if (!is_our_status_line(status_line)) return head;
  lines.remove_prefix(status_end + 2);
  if (status_line == "HTTP/1.1 100 Continue") {
    head.interim = head.ok = lines.empty();
    return head;
  }
  bool server = false, date = false, type = false, length = false;
  while (!lines.empty()) {
    const std::size_t line_end = lines.find("\r\n");
    const std::string_view line = lines.substr(0, line_end);
    lines.remove_prefix(line_end + 2);
    if (line == "Server: iomux") {
      server = true;
    } else if (starts_with(line, "Date: ")) {
      date = line.size() == 6 + iomux::http::DateCache::kSize;
    } else if (starts_with(line, "Content-Type: ")) {
      type = true;
      head.body_required = head.body_required || line == "Content-Type: application/octet-stream";
    } else if (starts_with(line, "Content-Length: ")) {
      const std::string_view digits = line.substr(16);
      if (digits.empty() || digits.size() > 9) return head;
      for (char c : digits) {
        if (c < '0' || c > '9') return head;
        head.content_length = head.content_length * 10 + static_cast<std::size_t>(c - '0');
      }
      length = true;
    } else if (line != "Connection: close" && line != "Connection: keep-alive" && !starts_with(line, "Allow: ")) {
      return head;
    }
  }
  const bool refusal =
      status_line.substr(9, 1) != "2" && status_line.substr(9, 3) != "404" && status_line.substr(9, 3) != "405";
  head.body_required = head.body_required || refusal;
  head.ok = server && date && type && length;
  return head;
}

// Whether `out` from `at` on splits into well-formed responses. A response to HEAD carries the
// Content-Length of the GET it stands for but no body, and the output does not say which
// requests were HEADs, so a body that may be left out is tried both ways (memoised by offset:
// linear in the output's size).
bool parses_as_responses(std::string_view out, std::size_t at, std::vector<signed char>& memo) {
  if (at == out.size()) return true;
  if (memo[at] >= 0) return memo[at] != 0;
  bool ok = false;
  const ResponseHead head = read_response_head(out.substr(at));
  if (head.ok) {
    const std::size_t body_start = at + head.size;
    if (head.interim) {
      ok = parses_as_responses(out, body_start, memo);
    } else {
      ok = head.content_length <= out.size() - body_start &&
           parses_as_responses(out, body_start + head.content_length, memo);
      if (!ok && !head.body_required && head.content_length > 0) ok = parses_as_responses(out, body_start, memo);
    }
  }
  memo[at] = ok ? 1 : 0;
  return ok;
}

// A request as the parser took it, in owned strings.
struct Parsed {
  std::string method;
  std::string target;
  int http_minor = 1;
  std::vector<std::pair<std::string, std::string>> fields;
  std::string body;
  bool keep_alive = false;

  bool operator==(const Parsed&) const = default;
};

bool is_framing(std::string_view name) {
  auto lower = [](std::string_view text) {
    std::string l(text);
    for (char& c : l) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return l;
  };
  const std::string l = lower(name);
  return l == "content-length" || l == "transfer-encoding";
}

// Keeps what the session parsed, framing fields left out (they are what re-framing changes).
struct Recorder final : iomux::http::RequestObserver {
  std::vector<Parsed> requests;
  void on_request(const iomux::http::ParsedRequest& r) override {
    Parsed p{std::string(r.method), std::string(r.target), r.http_minor, {}, std::string(r.body), r.keep_alive};
    for (const iomux::http::Field& f : r.fields)
      if (!is_framing(f.name)) p.fields.emplace_back(f.name, f.value);
    requests.push_back(std::move(p));
  }
};

// The canonical form of a parsed request: one space between the parts, "name: value" lines,
// the body framed by Content-Length (left out when empty).
std::string serialize(const Parsed& p) {
  std::string bytes = p.method + " " + p.target + " HTTP/1." + std::to_string(p.http_minor) + "\r\n";
  for (const auto& [name, value] : p.fields) bytes += name + ": " + value + "\r\n";
  if (!p.body.empty()) bytes += "Content-Length: " + std::to_string(p.body.size()) + "\r\n";
  return bytes + "\r\n" + p.body;
}

// A request the session accepted, re-framed, is accepted and parsed to the same thing. The
// re-framed head may be a little longer (a space after each colon), so it is read with room
// for that.
bool reframes_the_same(const Parsed& original, iomux::http::Options options) {
  options.max_head = 2 * options.max_head + 1024;
  const iomux::http::Service service(options);
  iomux::http::Session session(service);
  Recorder again;
  session.observe(&again);
  std::string out;
  const std::string bytes = serialize(original);
  const iomux::http::Result r = session.process(bytes, out, kNow);
  return r.requests == 1 && r.consumed == bytes.size() && again.requests.size() == 1 && again.requests[0] == original;
}

struct Outcome {
  std::string out;
  std::string kept;
  std::size_t requests = 0;
  bool closed = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < kHeaderSize) return 0;
  const Header header = read_header(data);
  const std::string_view stream(reinterpret_cast<const char*>(data) + kHeaderSize, size - kHeaderSize);
  const iomux::http::Service service(header.options);
  const std::size_t max_kept = service.max_kept_input();

  // In chunks, as a server reads it.
  iomux::http::Session session(service);
  Recorder chunked_parsed;
  session.observe(&chunked_parsed);
  Outcome chunked;
  std::size_t offset = 0;
  for (std::size_t turn = 0; offset < stream.size() && !chunked.closed; ++turn) {
    const std::size_t chunk_size = std::min(header.chunk_sizes[turn % 4], stream.size() - offset);
    chunked.kept.append(stream.substr(offset, chunk_size));
    offset += chunk_size;
    const std::size_t out_before = chunked.out.size();
    const iomux::http::Result r = session.process(chunked.kept, chunked.out, kNow);

    require(r.consumed <= chunked.kept.size());
    if (chunk_size == 0) require(r.consumed == 0 && r.requests == 0 && !r.close && chunked.out.size() == out_before);
    if (r.requests > 0) require(chunked.out.size() > out_before);
    chunked.requests += r.requests;
    chunked.closed = r.close;
    if (r.close) {
      require(r.consumed == chunked.kept.size());
      require(chunked.out.size() > out_before);
      chunked.kept.clear();
    } else {
      chunked.kept.erase(0, r.consumed);
      require(chunked.kept.size() <= max_kept);
      // A kept tail is an unfinished request: its head, or its head and part of its body.
      if (chunked.kept.empty()) require(!session.head_pending());
    }
    require(session.bytes_examined() <= offset);
  }
  require(chunked.closed || offset == stream.size());

  // At once.
  iomux::http::Session whole_session(service);
  Recorder whole_parsed;
  whole_session.observe(&whole_parsed);
  Outcome whole;
  const iomux::http::Result r = whole_session.process(stream, whole.out, kNow);
  require(r.consumed <= stream.size());
  whole.requests = r.requests;
  whole.closed = r.close;
  if (!r.close) whole.kept = std::string(stream.substr(r.consumed));

  require(chunked.out == whole.out);
  require(chunked.requests == whole.requests);
  require(chunked.closed == whole.closed);
  require(chunked.kept == whole.kept);
  require(whole.kept.size() <= max_kept);
  require(chunked_parsed.requests == whole_parsed.requests);
  require(whole_parsed.requests.size() == whole.requests);
  for (const Parsed& p : whole_parsed.requests) require(reframes_the_same(p, service.options()));

  std::vector<signed char> memo(whole.out.size() + 1, -1);
  require(parses_as_responses(whole.out, 0, memo));
  return 0;
}
