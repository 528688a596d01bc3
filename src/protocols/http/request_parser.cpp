#include "protocols/http/request_parser.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

namespace iomux::http {
namespace {

// Longer than any method llhttp knows ("GET_PARAMETER", "UNSUBSCRIBE"), so a method token that
// reaches it without a space cannot be one.
constexpr std::size_t kMaxMethod = 16;

// "HTTP/1.1": llhttp takes one digit on each side of the dot.
constexpr std::size_t kVersionSize = 8;

char to_lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view text, std::string_view lower) noexcept {
  if (text.size() != lower.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i)
    if (to_lower(text[i]) != lower[i]) return false;
  return true;
}

bool is_whitespace(char c) noexcept {
  return c == ' ' || c == '\t';
}

// N bytes as one word, in memory order (one load: memcpy of a constant size is a move).
template <typename Word>
Word load(const char* at) noexcept {
  Word word;
  std::memcpy(&word, at, sizeof word);
  return word;
}

// What load() reads from `text`, at compile time.
template <typename Word>
constexpr Word word_of(std::string_view text) noexcept {
  Word word = 0;
  for (std::size_t i = 0; i < sizeof(Word); ++i) {
    const std::size_t shift = std::endian::native == std::endian::little ? i : sizeof(Word) - 1 - i;
    word |= static_cast<Word>(static_cast<unsigned char>(text[i])) << (8 * shift);
  }
  return word;
}

// Bit 5 in every byte of a word: setting it lowers a letter and leaves digits and '-' alone,
// and maps no other token character onto a letter or '-'.
template <typename Word>
constexpr Word kLowerBits = static_cast<Word>(0x2020202020202020ull);

// Whether the sizeof(Word) bytes at `at` are `lower` (lower case letters, digits, '-') in any
// case.
template <typename Word>
bool is_lower_word(const char* at, std::string_view lower) noexcept {
  return (load<Word>(at) | kLowerBits<Word>) == word_of<Word>(lower);
}

// A field name (a token: letters, digits and a few marks) of `lower`'s size (at least 8 bytes)
// in any case equals `lower`: the first 8 bytes, then the last 8, overlapping, then the 8 before
// those.
bool is_long_field_name(const char* name, std::string_view lower) noexcept {
  const std::size_t last = lower.size() - 8;
  bool same = is_lower_word<std::uint64_t>(name, lower.substr(0, 8)) &&
              is_lower_word<std::uint64_t>(name + last, lower.substr(last, 8));
  if (lower.size() > 16) same = same && is_lower_word<std::uint64_t>(name + 8, lower.substr(8, 8));
  return same;
}

// Whether the `size` bytes at `a` and `b` are the same, for a size of at most a few words: a
// word at a time, the last one overlapping (memcmp is a call, for the few bytes of a Host).
bool same_bytes(const char* a, const char* b, std::size_t size) noexcept {
  if (size < 8) {
    for (std::size_t i = 0; i < size; ++i)
      if (a[i] != b[i]) return false;
    return true;
  }
  // The first word and the last (they overlap below 16 bytes), then the words between.
  std::uint64_t differ = (load<std::uint64_t>(a) ^ load<std::uint64_t>(b)) |
                         (load<std::uint64_t>(a + size - 8) ^ load<std::uint64_t>(b + size - 8));
  for (std::size_t i = 8; i + 8 < size; i += 8) differ |= load<std::uint64_t>(a + i) ^ load<std::uint64_t>(b + i);
  return differ == 0;
}

// llhttp leaves a value's leading whitespace out, not its trailing whitespace.
std::string_view trim_end(std::string_view text) noexcept {
  while (!text.empty() && is_whitespace(text.back())) text.remove_suffix(1);
  return text;
}

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

bool is_hex_digit(char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// nginx's method characters. A token (RFC 9110 9.1) may hold more, but nginx answers 400 to
// "get" and the like, and a refusal that agrees with it is the easier one to defend.
bool is_method_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}

// reg-name (RFC 3986 3.2.2): unreserved, pct-encoded and sub-delims. A table: every request
// has a Host to check.
constexpr std::array<std::uint8_t, 256> kRegNameChars = [] {
  std::array<std::uint8_t, 256> table{};
  for (int c = 'a'; c <= 'z'; ++c) table[c] = 1;
  for (int c = 'A'; c <= 'Z'; ++c) table[c] = 1;
  for (int c = '0'; c <= '9'; ++c) table[c] = 1;
  for (unsigned char c : std::string_view("-._~%!$&'()*+,;=")) table[c] = 1;
  return table;
}();

bool all_reg_name_chars(const char* p, const char* end) noexcept {
  const auto in = [](char c) { return kRegNameChars[static_cast<unsigned char>(c)]; };
  for (; end - p >= 4; p += 4)
    if (!(in(p[0]) & in(p[1]) & in(p[2]) & in(p[3]))) return false;
  for (; p != end; ++p)
    if (!in(*p)) return false;
  return true;
}

// Host = uri-host [ ":" port ] (RFC 9110 7.2), not empty: an IP-literal in brackets, or a
// reg-name (which covers IPv4 addresses).
bool is_valid_host(std::string_view host) noexcept {
  const char* const begin = host.data();
  const char* end = begin + host.size();
  // The port, from the end: digits after the last ':' (a reg-name has no ':').
  const char* port = end;
  while (port != begin && is_digit(port[-1])) --port;
  if (port != begin && port[-1] == ':') {
    end = port - 1;
  } else if (port != end) {
    port = end;  // digits that belong to the name
  }
  if (begin == end) return false;
  if (*begin != '[') return all_reg_name_chars(begin, end);
  if (end[-1] != ']' || end - begin < 3) return false;
  for (const char* p = begin + 1; p != end - 1; ++p)
    if (!is_hex_digit(*p) && *p != ':' && *p != '.') return false;
  return true;
}

// llhttp takes an asterisk-form target (OPTIONS *: nothing here answers it) or an absolute-form
// one, scheme "://" authority [path] (RFC 9112 3.2.2). Only HTTP's schemes name this server;
// the authority must be there, without userinfo (RFC 9110 4.2.4: a recipient treats it as an
// error).
[[gnu::noinline]] bool is_absolute_http_target(std::string_view target) noexcept {
  const std::size_t colon = target.find(':');
  if (colon == std::string_view::npos) return false;
  const std::string_view scheme = target.substr(0, colon);
  if (!iequals(scheme, "http") && !iequals(scheme, "https")) return false;
  const std::string_view rest = target.substr(colon + 3);  // llhttp saw "://"
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
  return !authority.empty() && authority.find('@') == std::string_view::npos;
}

Method method_of(std::uint8_t method) noexcept {
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

RequestParser& self_of(llhttp_t* parser) noexcept {
  return *static_cast<RequestParser*>(parser->data);
}

}  // namespace

RequestParser::RequestParser(const HeadLimits& limits) noexcept : limits_(&limits) {
  // No settings: the callbacks are bound at compile time (llhttp_binding.h).
  llhttp_init(&parser_, HTTP_REQUEST, nullptr);
  parser_.data = this;
}

int RequestParser::refuse(Status status) noexcept {
  refusal_ = status;
  // What llhttp's glue made of -1 from a span's callback; from an event's callback, any value
  // but 0 and HPE_PAUSED is that event's error (HPE_CB_*).
  return HPE_USER;
}

// ---- the callbacks -------------------------------------------------------------------------
//
// A data callback's piece ends before end_ when llhttp ended the span there (it saw the byte
// after it); a piece that reaches end_ is the part of a span this execute held, which the next
// one continues. So a span's end is known without llhttp's *_complete callbacks, which would
// cost a call each per field.

int RequestParser::on_url(llhttp_t* parser, const char* at, const char* end) {
  RequestParser& self = self_of(parser);
  if (!self.url_seen_) {
    self.url_seen_ = true;
    self.url_offset_ = static_cast<std::size_t>(at - self.base_);
  }
  self.url_size_ += static_cast<std::size_t>(end - at);
  self.url_open_ = end == self.end_;
  return 0;
}

int RequestParser::on_version_complete(llhttp_t* parser, const char* at) {
  RequestParser& self = self_of(parser);
  if (self.url_size_ > self.limits_->max_uri) return self.refuse(Status::uri_too_long);
  if (parser->http_major != 1) return self.refuse(Status::version_not_supported);
  // llhttp also takes "RTSP/1.0" and "ICE/1.0" for some methods. The version ends at `at`, and
  // llhttp takes one digit on each side of the dot: "HTTP/1.1" is the 8 bytes before it.
  if (std::memcmp(at - kVersionSize, "HTTP/", 5) != 0) return self.refuse(Status::bad_request);
  self.version_end_ = static_cast<std::size_t>(at - self.base_);
  return 0;
}

int RequestParser::on_header_field(llhttp_t* parser, const char* at, const char* end) {
  RequestParser& self = self_of(parser);
  const char* const base = self.base_;
  std::size_t size = static_cast<std::size_t>(end - at);
  if (self.field_open_)
    size += self.field_size_;
  else
    self.field_offset_ = static_cast<std::size_t>(at - base);
  self.field_size_ = size;
  self.field_open_ = end == self.end_;
  if (self.field_open_) return 0;  // continued in the next execute
  return self.judge_name(base + self.field_offset_, size);
}

// The fields read here other than Host, by their size first.
RequestParser::FieldKind RequestParser::other_field_kind(const char* name, std::size_t size) noexcept {
  switch (size) {
    case 6:
      if (is_lower_word<std::uint32_t>(name, "expe") && is_lower_word<std::uint16_t>(name + 4, "ct"))
        return FieldKind::expect;
      break;
    case 14:
      if (is_long_field_name(name, "content-length")) return FieldKind::framing;
      break;
    case 17:
      if (is_long_field_name(name, "transfer-encoding")) return FieldKind::transfer_encoding;
      break;
    default:
      break;
  }
  return FieldKind::other;
}

int RequestParser::judge_name(const char* name, std::size_t size) noexcept {
  // Host first: every request has one, and a test costs less than the switch's jump.
  FieldKind kind = FieldKind::host;
  if (size != 4 || !is_lower_word<std::uint32_t>(name, "host")) {
    if (size == 0) return refuse(Status::bad_request);
    kind = other_field_kind(name, size);
  }
  field_kind_ = kind;
  if (trailers_) {
    // A trailer must not frame or route the message (RFC 9110 6.5.1); a proxy that merged
    // trailers into the head would read these differently.
    if (kind == FieldKind::host || kind == FieldKind::framing || kind == FieldKind::transfer_encoding)
      return refuse(Status::bad_request);
    return 0;
  }
  if (kind == FieldKind::host && ++hosts_ > 1) return refuse(Status::bad_request);
  if (kind == FieldKind::transfer_encoding && ++transfer_encodings_ > 1) return refuse(Status::bad_request);
  return 0;
}

int RequestParser::on_header_value(llhttp_t* parser, const char* at, const char* end) {
  // Nothing but `self` is kept across the calls below (out of line), so that the common case
  // saves and restores few registers: what they need is in the members already.
  RequestParser& self = self_of(parser);
  const std::size_t offset = static_cast<std::size_t>(at - self.base_);
  const std::size_t length = static_cast<std::size_t>(end - at);
  const bool continued = self.value_open_;
  self.value_open_ = end == self.end_;
  if (!continued) {
    // The value's first piece. Only whitespace may come between the colon and it, on the same
    // line. llhttp reports an empty value where the next line starts, after the line's CRLF;
    // a value whose first line was folded (obs-fold: the next line starts with whitespace, and
    // llhttp joins it) shows as a line break before the value, or, for a piece that follows a
    // value's end, as that value and its line break.
    const std::size_t after_colon = self.field_offset_ + self.field_size_ + 1;
    self.value_offset_ = offset;
    self.value_size_ = length;
    if (offset == after_colon + 1 && self.base_[after_colon] == ' ' && length > 0) {
      self.tab_before_value_ = false;  // "Name: value", as nearly every client sends it
    } else if (!self.value_follows_colon(after_colon)) {
      return self.refuse(Status::bad_request);
    }
  } else {
    // A piece of the same span continues where the last one ended (a read cut the value).
    if (offset != self.value_offset_ + self.value_size_) return self.refuse(Status::bad_request);
    self.value_size_ += length;
  }
  if (self.value_open_ || self.trailers_) return 0;
  const Status status = self.judge_value(std::string_view(self.base_ + self.value_offset_, self.value_size_));
  if (status != Status::ok) return self.refuse(status);
  if (self.record_fields_) [[unlikely]]
    self.record_field();
  return 0;
}

// The general case of a value's first piece at `offset`, `length` bytes: whitespace other than
// one space after the colon at `after_colon` - 1, or an empty value.
bool RequestParser::value_follows_colon(std::size_t after_colon) noexcept {
  const char* const base = base_;
  const std::size_t offset = value_offset_;
  const std::size_t length = value_size_;
  std::size_t ws_end = after_colon;
  bool tab = false;
  for (; is_whitespace(base[ws_end]); ++ws_end) tab = tab || base[ws_end] == '\t';
  tab_before_value_ = tab;
  return length > 0 ? offset == ws_end : base[ws_end] == '\r' && offset == ws_end + 2;
}

void RequestParser::record_field() {
  const std::string_view value = trim_end({base_ + value_offset_, value_size_});
  const std::size_t value_offset = value.empty() ? 0 : static_cast<std::size_t>(value.data() - base_);
  fields_.push_back({field_offset_, field_size_, value_offset, value.size()});
}

// The fields whose values this class reads; llhttp reads Content-Length and Connection. `raw`
// is the value as llhttp gives it: without its leading whitespace, with its trailing.
//
// RFC 9110 5.6.3 lets whitespace around a value be spaces or tabs; nginx takes only spaces
// around Host, Content-Length and Transfer-Encoding (400, 400, 501 otherwise), and for the
// fields that frame or route a request, agreeing with the stricter reading leaves no room for
// a disagreement: a tab around them is refused here too.
Status RequestParser::judge_value(std::string_view raw) noexcept {
  if (field_kind_ == FieldKind::other) return Status::ok;
  // A client sends the same Host on every request of a connection: checked once.
  if (field_kind_ == FieldKind::host && !tab_before_value_ && raw.size() == valid_host_size_ && !raw.empty() &&
      same_bytes(raw.data(), valid_host_, raw.size()))
    return Status::ok;
  return judge_read_value(raw);
}

// judge_value() for the fields it does not settle.
Status RequestParser::judge_read_value(std::string_view raw) noexcept {
  switch (field_kind_) {
    case FieldKind::host:
      // Trailing whitespace is refused with the rest (is_valid_host()), as nginx does.
      if (tab_before_value_) return Status::bad_request;
      if (!is_valid_host(raw)) return Status::bad_request;
      if (raw.size() <= sizeof valid_host_) {
        if (!raw.empty()) std::memcpy(valid_host_, raw.data(), raw.size());  // memcpy takes no null
        valid_host_size_ = static_cast<std::uint8_t>(raw.size());
      }
      return Status::ok;
    case FieldKind::framing:
      return tab_before_value_ ? Status::bad_request : Status::ok;
    case FieldKind::expect:
      expect_continue_ = expect_continue_ || iequals(trim_end(raw), "100-continue");
      return Status::ok;
    case FieldKind::transfer_encoding: {
      // A body framed by a coding HTTP/1.0 does not know cannot be trusted (RFC 9112 6.1).
      // Of the codings, only chunked is decoded here, alone (nginx's rule too).
      if (parser_.http_minor == 0) return Status::bad_request;
      while (!raw.empty() && raw.back() == ' ') raw.remove_suffix(1);
      return !tab_before_value_ && iequals(raw, "chunked") ? Status::ok : Status::not_implemented;
    }
    default:
      return Status::ok;
  }
}

Status RequestParser::judge_head() noexcept {
  // HTTP/0.9's line (no version) reaches here when a head follows it in the same read.
  if (parser_.http_major != 1) return Status::version_not_supported;
  // llhttp takes a bare LF for the request line's end (the version was judged when it ended).
  if (base_[version_end_] != '\r') return Status::bad_request;
  if (hosts_ == 0 && parser_.http_minor != 0) return Status::bad_request;
  // A CONNECT's body would be taken for the next request by anything that follows llhttp's
  // reading (after CONNECT, the bytes belong to the tunnel). No tunnels here.
  if (parser_.method == HTTP_CONNECT) [[unlikely]] {
    const bool body = (parser_.flags & F_CHUNKED) || ((parser_.flags & F_CONTENT_LENGTH) && parser_.content_length > 0);
    return body ? Status::bad_request : Status::method_not_allowed;
  }
  if (base_[url_offset_] != '/' && !is_absolute_http_target({base_ + url_offset_, url_size_}))
    return Status::bad_request;
  // Read after the call above, so that nothing needs keeping across it.
  const std::uint16_t flags = parser_.flags;
  const std::uint64_t content_length = (flags & F_CONTENT_LENGTH) ? parser_.content_length : 0;
  if (content_length > limits_->max_body) return Status::payload_too_large;

  RequestHead& out = head_;
  const bool http10 = parser_.http_minor == 0;
  out.target_offset = url_offset_;
  out.target_size = url_size_;
  out.method = method_of(parser_.method);
  out.http10 = http10;
  out.chunked = (flags & F_CHUNKED) != 0;
  out.content_length = content_length;
  // Connection is a token list (llhttp reads every token): close wins (RFC 9112 9.3).
  out.keep_alive = (flags & F_CONNECTION_CLOSE) == 0 && (!http10 || (flags & F_CONNECTION_KEEP_ALIVE) != 0);
  out.expect_continue = expect_continue_ && !http10 && out.has_body();
  return Status::ok;
}

int RequestParser::on_headers_complete(llhttp_t* parser) {
  RequestParser& self = self_of(parser);
  const Status status = self.judge_head();
  if (status != Status::ok) return self.refuse(status);
  // Stop on the head's last byte: the body, if any, is the session's to frame.
  return HPE_PAUSED;
}

int RequestParser::on_body(llhttp_t* parser, const char* at, const char* end) {
  self_of(parser).body_->append(at, static_cast<std::size_t>(end - at));
  return 0;
}

int RequestParser::on_chunk_header(llhttp_t* parser) {
  if (parser->content_length == 0) self_of(parser).trailers_ = true;  // the last chunk
  return 0;
}

// ---- driving llhttp ------------------------------------------------------------------------

// How many bytes of the target llhttp had accepted when it stopped at `stop`.
std::size_t RequestParser::url_accepted(std::size_t stop) const noexcept {
  if (url_seen_ && !url_open_) return url_size_;
  std::size_t start = url_offset_;
  if (!url_seen_) {
    // The target has not reached a callback yet: it starts after the method and its spaces.
    const char* const space = static_cast<const char*>(std::memchr(base_, ' ', stop));
    if (!space) return 0;
    start = static_cast<std::size_t>(space - base_);
    while (start < stop && base_[start] == ' ') ++start;
  }
  return stop > start ? stop - start : 0;
}

Status RequestParser::refusal_of(llhttp_errno_t error) const noexcept {
  switch (error) {
    case HPE_USER:
    case HPE_CB_URL_COMPLETE:
    case HPE_CB_VERSION_COMPLETE:
    case HPE_CB_HEADER_FIELD_COMPLETE:
    case HPE_CB_HEADER_VALUE_COMPLETE:
    case HPE_CB_HEADERS_COMPLETE:
      return refusal_ != Status::ok ? refusal_ : Status::bad_request;
    case HPE_INVALID_VERSION: {
      // "HTTP/1.2" and "HTTP/3.0" are well-formed versions llhttp does not speak (its reason
      // says so); a second digit before the dot is a major version of 10 or more.
      if (std::strcmp(parser_.reason, "Invalid HTTP version") == 0) return Status::version_not_supported;
      const char* pos = llhttp_get_error_pos(&parser_);
      if (std::strcmp(parser_.reason, "Expected dot") == 0 && is_digit(*pos)) return Status::version_not_supported;
      return Status::bad_request;
    }
    case HPE_INVALID_CONSTANT:
      // An RTSP method with "HTTP/" ("DESCRIBE / HTTP/1.1"): a method this server lacks.
      if (std::strcmp(parser_.reason, "Invalid method for HTTP/x.x request") == 0) return Status::not_implemented;
      return Status::bad_request;
    case HPE_INVALID_TRANSFER_ENCODING:
      return Status::not_implemented;  // "chunked" followed by another coding: nginx's 501
    default:
      return Status::bad_request;
  }
}

// llhttp refused the method at its first byte that no method it knows has there; what to
// answer depends on where the token ends: a well-formed token is a method this server does not
// implement (501), anything else a malformed line (400). Undecided until then.
HeadProgress RequestParser::judge_method(std::string_view request) noexcept {
  HeadProgress progress;
  const std::size_t seen = std::min(request.size(), kMaxMethod + 1);
  for (std::size_t i = method_judged_; i < seen; ++i) {
    if (request[i] == ' ' || !is_method_char(request[i])) {
      progress.state = HeadProgress::State::refused;
      progress.status = request[i] == ' ' && i > 0 ? Status::not_implemented : Status::bad_request;
      return progress;
    }
  }
  method_judged_ = seen;
  if (seen == kMaxMethod + 1) {
    progress.state = HeadProgress::State::refused;
    progress.status = Status::not_implemented;
  }
  return progress;
}

HeadProgress RequestParser::head_stopped(std::string_view request, llhttp_errno_t error, std::size_t end) noexcept {
  HeadProgress progress;
  const HeadLimits& limits = *limits_;
  const std::size_t stop = error == HPE_OK ? end : static_cast<std::size_t>(parser_.error_pos - base_);
  fed_ = std::max(fed_, stop);
  if (error == HPE_PAUSED) {
    // A head ended by a bare LF (read_head() took the rest).
    progress.state = HeadProgress::State::refused;
    progress.status = Status::bad_request;
    return progress;
  }

  // The target's length is judged first: a refusal at its max_uri + 1'th byte comes before
  // anything llhttp finds further on, whichever read brought those bytes.
  if (url_accepted(stop) > limits.max_uri) {
    progress.state = HeadProgress::State::refused;
    progress.status = Status::uri_too_long;
    return progress;
  }
  // A target followed by a line end is HTTP/0.9's request line, which llhttp (strict) knows for
  // one only at the byte after the line end. An HTTP/0.9 client sends no such byte: it waits.
  if (url_seen_ && !url_open_) {
    const std::size_t url_end = url_offset_ + url_size_;
    if (url_end < stop && (base_[url_end] == '\r' || base_[url_end] == '\n')) {
      progress.state = HeadProgress::State::refused;
      progress.status = Status::version_not_supported;
      return progress;
    }
  }
  switch (error) {
    case HPE_OK:
      if (end == limits.max_head) {  // max_head bytes without the head's end
        progress.state = HeadProgress::State::refused;
        progress.status = Status::header_fields_too_large;
      }
      return progress;
    case HPE_INVALID_METHOD:
      method_failed_ = true;
      return judge_method(request);
    case HPE_CB_HEADERS_COMPLETE:
      // A refusal of the whole head; a bare LF ending it is refused first, as above.
      if (base_[stop - 2] != '\r') {
        progress.state = HeadProgress::State::refused;
        progress.status = Status::bad_request;
        return progress;
      }
      break;
    default:
      break;
  }
  progress.state = HeadProgress::State::refused;
  progress.status = refusal_of(error);
  return progress;
}

BodyProgress RequestParser::decode_chunked(std::string_view request, std::size_t limit, std::string& body) {
  BodyProgress progress;
  const std::size_t end = std::min(request.size(), limit);
  if (end <= fed_) return progress;
  llhttp_resume(&parser_);  // paused at the end of the head (only then: a no-op afterwards)
  base_ = request.data();
  end_ = base_ + end;
  body_ = &body;
  const llhttp_errno_t error = llhttp_execute(&parser_, base_ + fed_, end - fed_);
  body_ = nullptr;
  const std::size_t stop = error == HPE_OK ? end : static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - base_);
  fed_ = std::max(fed_, stop);
  if (error == HPE_OK) return progress;
  progress.state = BodyProgress::State::refused;
  progress.status = Status::bad_request;
  if (error == HPE_PAUSED) {
    // llhttp takes a bare LF for the blank line that ends the trailers.
    if (base_[stop - 2] != '\r') return progress;
    progress.state = BodyProgress::State::complete;
    progress.used = stop;
    return progress;
  }
  progress.status = refusal_of(error);
  return progress;
}

}  // namespace iomux::http

// ---- the binding (llhttp_binding.h) ----------------------------------------------------------

using iomux::http::RequestParser;

int iomux_http_on_url(llhttp_t* parser, const char* at, const char* end) {
  return RequestParser::on_url(parser, at, end);
}
int iomux_http_on_version_complete(llhttp_t* parser, const char* at) {
  return RequestParser::on_version_complete(parser, at);
}
int iomux_http_on_header_field(llhttp_t* parser, const char* at, const char* end) {
  return RequestParser::on_header_field(parser, at, end);
}
int iomux_http_on_header_value(llhttp_t* parser, const char* at, const char* end) {
  return RequestParser::on_header_value(parser, at, end);
}
int iomux_http_on_headers_complete(llhttp_t* parser) {
  return RequestParser::on_headers_complete(parser);
}
int iomux_http_on_body(llhttp_t* parser, const char* at, const char* end) {
  return RequestParser::on_body(parser, at, end);
}
int iomux_http_on_chunk_header(llhttp_t* parser) {
  return RequestParser::on_chunk_header(parser);
}
