#include "protocols/http/request_parser.hpp"

namespace iomux::http {
namespace {

// What the head callbacks gather. Lives on the stack of parse_head(); parser->data points to it.
struct HeadContext {
  const char* head = nullptr;
  std::size_t max_uri = 0;
  RequestHead* out = nullptr;
  enum class Field { other, host, expect, transfer_encoding } field = Field::other;
  int hosts = 0;
  int chunked_codings = 0;      // "chunked" tokens in Transfer-Encoding
  bool unknown_coding = false;  // any other token there
  bool chunked_last = false;    // the last token seen is "chunked"
  bool expect_continue = false;
  bool headers_complete = false;
  bool message_complete = false;
};

HeadContext& head_context(http_parser* parser) {
  return *static_cast<HeadContext*>(parser->data);
}

bool iequals(std::string_view text, std::string_view lower) noexcept {
  if (text.size() != lower.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

std::string_view trim(std::string_view text) noexcept {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Transfer-Encoding is a list of codings; empty list elements are allowed (RFC 9110 5.6.1).
void read_transfer_codings(std::string_view value, HeadContext& context) noexcept {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    const std::string_view coding = trim(value.substr(0, comma));
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    if (coding.empty()) continue;
    const bool chunked = iequals(coding, "chunked");
    context.chunked_codings += chunked ? 1 : 0;
    context.unknown_coding = context.unknown_coding || !chunked;
    context.chunked_last = chunked;
  }
}

int on_url(http_parser* parser, const char* at, std::size_t length) {
  HeadContext& context = head_context(parser);
  if (length > context.max_uri) return 1;  // HPE_CB_url: 414
  context.out->target_offset = static_cast<std::size_t>(at - context.head);
  context.out->target_size = length;
  return 0;
}

// The head arrives whole, so each name and each value comes in one callback.
int on_header_field(http_parser* parser, const char* at, std::size_t length) {
  HeadContext& context = head_context(parser);
  const std::string_view name(at, length);
  using Field = HeadContext::Field;
  context.field = Field::other;
  if (iequals(name, "host")) {
    context.field = Field::host;
    ++context.hosts;
  } else if (iequals(name, "expect")) {
    context.field = Field::expect;
  } else if (iequals(name, "transfer-encoding")) {
    context.field = Field::transfer_encoding;
  }
  return 0;
}

int on_header_value(http_parser* parser, const char* at, std::size_t length) {
  HeadContext& context = head_context(parser);
  const std::string_view value(at, length);
  switch (context.field) {
    case HeadContext::Field::expect:
      context.expect_continue = context.expect_continue || iequals(trim(value), "100-continue");
      break;
    case HeadContext::Field::transfer_encoding:
      read_transfer_codings(value, context);
      break;
    default:
      break;
  }
  return 0;
}

Method method_of(unsigned method) noexcept {
  switch (method) {
    case HTTP_GET:
      return Method::get;
    case HTTP_HEAD:
      return Method::head;
    case HTTP_POST:
      return Method::post;
    default:
      return Method::other;
  }
}

int on_headers_complete(http_parser* parser) {
  HeadContext& context = head_context(parser);
  RequestHead& out = *context.out;
  context.headers_complete = true;
  out.method = method_of(parser->method);
  out.http10 = parser->http_major == 1 && parser->http_minor == 0;
  // http_should_keep_alive()'s rule for a request (RFC 9112 9.3), without the call.
  out.keep_alive = parser->http_major > 0 && parser->http_minor > 0 ? (parser->flags & F_CONNECTION_CLOSE) == 0
                                                                    : (parser->flags & F_CONNECTION_KEEP_ALIVE) != 0;
  out.chunked = (parser->flags & F_CHUNKED) != 0;
  out.content_length = (parser->flags & F_CONTENTLENGTH) ? parser->content_length : 0;
  // Stop here, on the head's last '\n', so that the parser cannot read on past where it thinks
  // the head ends; parse_head() checks that this is where HeadScanner found the end.
  http_parser_pause(parser, 1);
  return 0;
}

int on_head_message_complete(http_parser* parser) {
  head_context(parser).message_complete = true;
  return 0;
}

int on_body(http_parser* parser, const char* at, std::size_t length) {
  static_cast<std::string*>(parser->data)->append(at, length);
  return 0;
}

// Stops the parser at the end of the body, so that a pipelined request behind it stays unread.
int on_body_message_complete(http_parser* parser) {
  http_parser_pause(parser, 1);
  return 0;
}

constexpr http_parser_settings kHeadSettings = {
    .on_message_begin = nullptr,
    .on_url = on_url,
    .on_status = nullptr,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = nullptr,
    .on_message_complete = on_head_message_complete,
    .on_chunk_header = nullptr,
    .on_chunk_complete = nullptr,
};

// Trailer fields are parsed (and so checked) but not looked at.
constexpr http_parser_settings kBodySettings = {
    .on_message_begin = nullptr,
    .on_url = nullptr,
    .on_status = nullptr,
    .on_header_field = nullptr,
    .on_header_value = nullptr,
    .on_headers_complete = nullptr,
    .on_body = on_body,
    .on_message_complete = on_body_message_complete,
    .on_chunk_header = nullptr,
    .on_chunk_complete = nullptr,
};

// A request line http_parser stopped in: the target too long (our on_url), the method unknown
// (the token itself was checked by HeadScanner), http_parser's own size limit, or malformed.
Status request_line_refusal(http_errno error) noexcept {
  switch (error) {
    case HPE_CB_url:
      return Status::uri_too_long;
    case HPE_INVALID_METHOD:
      return Status::not_implemented;
    case HPE_HEADER_OVERFLOW:
      return Status::header_fields_too_large;
    default:
      return Status::bad_request;
  }
}

// The verdict on a head http_parser has run over (`parsed` bytes of it, stopping on the last
// '\n' of what it took for the head), in the order the checks matter: the request line's
// first, then the fields', then what needs the whole head.
Status judge_head(const http_parser& parser, const HeadContext& context, std::size_t head_size, std::size_t parsed,
                  std::size_t line_size, std::uint64_t max_body) {
  const RequestHead& head = *context.out;
  auto error = HTTP_PARSER_ERRNO(&parser);
  if (error == HPE_PAUSED) error = HPE_OK;  // our pause at the end of the head
  // An error past the request line's bytes is the fields'; but our on_url's refusal is the
  // line's wherever it stops the parser: a data callback's failure counts the byte it was
  // called on, which for an HTTP/0.9 line ("GET /\n") is the line's '\n'.
  const bool line_parsed = context.headers_complete || (error != HPE_CB_url && parsed >= line_size);
  if (error != HPE_OK && !line_parsed) return request_line_refusal(error);
  if (parser.http_major != 1) return Status::version_not_supported;
  if (!context.headers_complete)
    return error == HPE_HEADER_OVERFLOW ? Status::header_fields_too_large : Status::bad_request;
  // libhttp-parser as Debian builds it is not strict: it takes "\r" and any byte for a line end
  // where HeadScanner wants "\n". Where the two disagree on the head's end, the request's
  // framing is ambiguous, and ambiguous framing is what request smuggling feeds on.
  if (parsed + 1 != head_size) return Status::bad_request;
  if (context.unknown_coding) return Status::not_implemented;
  if (parser.uses_transfer_encoding && (head.http10 || context.chunked_codings != 1 || !context.chunked_last))
    return Status::bad_request;
  if (context.hosts > 1 || (context.hosts == 0 && !head.http10)) return Status::bad_request;
  if (head.content_length > max_body) return Status::payload_too_large;
  return Status::ok;
}

}  // namespace

RequestParser::RequestParser() noexcept {
  http_parser_init(&parser_, HTTP_REQUEST);
}

Status RequestParser::parse_head(std::string_view head, std::size_t line_size, std::size_t max_uri,
                                 std::uint64_t max_body, RequestHead& out) noexcept {
  out = RequestHead{};
  out.size = head.size();
  HeadContext context;
  context.head = head.data();
  context.max_uri = max_uri;
  context.out = &out;
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = &context;
  const std::size_t parsed = http_parser_execute(&parser_, &kHeadSettings, head.data(), head.size());
  const Status status = judge_head(parser_, context, head.size(), parsed, line_size, max_body);
  // A request without Content-Length or Transfer-Encoding has no body (RFC 9112 6.3) and is
  // complete. Otherwise resume on the last '\n', where the parser decides what follows: a body,
  // or not (a CONNECT's), or a refusal (Transfer-Encoding without a final chunked).
  if (status == Status::ok && (out.has_body() || parser_.uses_transfer_encoding)) {
    http_parser_pause(&parser_, 0);
    http_parser_execute(&parser_, &kHeadSettings, head.data() + parsed, head.size() - parsed);
  }
  parser_.data = nullptr;
  if (status != Status::ok) return status;
  const auto error = HTTP_PARSER_ERRNO(&parser_);
  if (error != HPE_OK && error != HPE_PAUSED) return Status::bad_request;
  if (context.message_complete) {
    out.chunked = false;
    out.content_length = 0;
  }
  out.expect_continue = context.expect_continue && !out.http10 && out.has_body();
  return Status::ok;
}

Status RequestParser::parse_request_line(std::string_view line, std::size_t max_uri) noexcept {
  RequestHead ignored;
  HeadContext context;
  context.head = line.data();
  context.max_uri = max_uri;
  context.out = &ignored;
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = &context;
  http_parser_execute(&parser_, &kHeadSettings, line.data(), line.size());
  const auto error = HTTP_PARSER_ERRNO(&parser_);
  // Whether http_parser has finished the line too: not being strict, it may have taken the
  // '\n' for a character of the line (the '/' in "HTTP/"), and then the version is not known
  // yet. An empty line after a finished request line ends the head at once; after anything
  // else it does not.
  if (error == HPE_OK) {
    static constexpr char kEmptyLine[] = "\r\n";
    http_parser_execute(&parser_, &kHeadSettings, kEmptyLine, sizeof kEmptyLine - 1);
  }
  parser_.data = nullptr;
  if (error != HPE_OK) return request_line_refusal(error);
  if (!context.headers_complete) return Status::ok;  // the whole head will tell
  if (parser_.http_major != 1) return Status::version_not_supported;
  return Status::ok;
}

BodyProgress RequestParser::decode_chunked(std::string_view bytes, std::string& body) {
  BodyProgress progress;
  if (bytes.empty()) return progress;  // to http_parser an empty buffer means end of stream
  parser_.data = &body;
  progress.used = http_parser_execute(&parser_, &kBodySettings, bytes.data(), bytes.size());
  parser_.data = nullptr;
  switch (HTTP_PARSER_ERRNO(&parser_)) {
    case HPE_OK:
      break;
    case HPE_PAUSED:
      progress.state = BodyProgress::State::complete;
      break;
    case HPE_HEADER_OVERFLOW:  // trailers past http_parser's limit
      progress.state = BodyProgress::State::refused;
      progress.status = Status::header_fields_too_large;
      break;
    default:
      progress.state = BodyProgress::State::refused;
      progress.status = Status::bad_request;
      break;
  }
  return progress;
}

}  // namespace iomux::http
