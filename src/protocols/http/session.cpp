#include "protocols/http/session.hpp"

#include <algorithm>

namespace iomux::http {
namespace {

// A chunked body buffer larger than this is given back after its request rather than kept for
// the next one: an idle connection should hold a few KB at most.
constexpr std::size_t kKeptBodyCapacity = 4 * 1024;

bool is_line_break(char c) noexcept {
  return c == '\r' || c == '\n';
}

}  // namespace

// Inline: once per request, here only.
inline void Session::finish_request() noexcept {
  examined_ += parser_.fed();
  parser_.reset();
  if (phase_ == Phase::chunked_body) release_body();
  phase_ = Phase::head;
}

Result Session::process(std::string_view input, ResponseSink& out, std::time_t now) {
  Result result;
  std::size_t offset = 0;
  Status refusal = Status::ok;
  while (offset < input.size()) {
    const std::string_view request = input.substr(offset);
    if (phase_ == Phase::head) {
      // Empty lines before a request are skipped (RFC 9112 2.2: some clients send a CRLF after
      // a POST body). Consumed at once, so a request never starts with one.
      if (is_line_break(request.front()) && !parser_.started()) {
        ++offset;
        while (offset < input.size() && is_line_break(input[offset])) ++offset;
        continue;
      }
      const HeadProgress progress = parser_.read_head(request);
      if (progress.state != HeadProgress::State::complete) [[unlikely]] {
        if (progress.state == HeadProgress::State::more) break;
        refusal = progress.status;
        break;
      }
      const RequestHead& head = parser_.head();
      if (head.has_body()) {
        // Sent whether or not the body is here already, so that what a client receives does
        // not depend on how its bytes were cut into reads.
        if (head.expect_continue) out.append(kContinue);
        phase_ = head.chunked ? Phase::chunked_body : Phase::identity_body;
      }
    }
    std::size_t size = parser_.head().size;
    std::string_view body;
    if (phase_ != Phase::head) {
      const Progress progress = read_body(request, size, body, refusal);
      if (progress != Progress::complete) break;
    }

    const RequestHead& head = parser_.head();
    if (observer_) show(request, body);
    // Draining: the connection ends after the last request received, whatever it asked.
    const bool last_while_draining = draining_ && offset + size == input.size();
    const Request complete{
        head.method, head.target(request), body, head.http10, head.keep_alive && !last_while_draining, draining_};
    const bool close = service_->answer(complete, now, out);
    ++result.requests;
    finish_request();
    if (close) {
      result.consumed = input.size();
      result.close = true;
      return result;
    }
    offset += size;
  }
  if (refusal != Status::ok) [[unlikely]] {
    service_->refuse(refusal, now, out);
    reset();
    result.consumed = input.size();
    result.close = true;
    return result;
  }
  result.consumed = offset;
  return result;
}

Session::Progress Session::read_body(std::string_view request, std::size_t& size, std::string_view& body,
                                     Status& refusal) {
  const RequestHead& head = parser_.head();
  if (phase_ == Phase::identity_body) {
    // content_length <= max_body (checked with the head), so the sum cannot overflow.
    size = head.size + static_cast<std::size_t>(head.content_length);
    if (request.size() < size) return Progress::more;
    body = request.substr(head.size, size - head.size);
    return Progress::complete;
  }
  // The framing counts against max_body too: it is kept in the input like the data.
  const std::size_t limit = head.size + service_->options().max_body;
  const BodyProgress progress = parser_.decode_chunked(request, limit, chunked_body_);
  if (progress.state == BodyProgress::State::refused) {
    refusal = progress.status;
    return Progress::refused;
  }
  if (progress.state == BodyProgress::State::complete) {
    size = progress.used;
    body = chunked_body_;
    return Progress::complete;
  }
  if (request.size() > limit) {
    refusal = Status::payload_too_large;
    return Progress::refused;
  }
  return Progress::more;
}

void Session::show(std::string_view request, std::string_view body) {
  shown_fields_.clear();
  for (const FieldPosition& field : parser_.fields())
    shown_fields_.push_back(
        {request.substr(field.name_offset, field.name_size), request.substr(field.value_offset, field.value_size)});
  ParsedRequest parsed;
  parsed.method = request.substr(0, request.find(' '));
  parsed.target = parser_.head().target(request);
  parsed.http_minor = parser_.http_minor();
  parsed.fields = shown_fields_;
  parsed.body = body;
  parsed.keep_alive = parser_.head().keep_alive;
  observer_->on_request(parsed);
}

void Session::time_out(ResponseSink& out, std::time_t now) {
  service_->refuse(Status::request_timeout, now, out);
  reset();
}

void Session::observe(RequestObserver* observer) {
  observer_ = observer;
  parser_.record_fields(observer != nullptr);
}

void Session::reset() noexcept {
  examined_ += parser_.fed();
  parser_.reset();
  release_body();
  phase_ = Phase::head;
}

void Session::release_body() noexcept {
  chunked_body_.clear();
  if (chunked_body_.capacity() > kKeptBodyCapacity) std::string().swap(chunked_body_);
}

}  // namespace iomux::http
