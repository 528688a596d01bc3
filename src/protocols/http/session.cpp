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

Result Session::process(std::string_view input, ResponseSink& out, std::time_t now) {
  Result result;
  std::size_t offset = 0;
  while (offset < input.size()) {
    const std::string_view request = input.substr(offset);
    std::size_t size = 0;
    std::string_view body;
    Status refusal = Status::ok;
    if (phase_ == Phase::head) {
      // Empty lines before a request are skipped (RFC 9112 2.2: some clients send a CRLF after
      // a POST body). Consumed at once, so a request never starts with one.
      if (!parser_.started() && is_line_break(request.front())) {
        ++offset;
        while (offset < input.size() && is_line_break(input[offset])) ++offset;
        continue;
      }
      const std::size_t fed_before = parser_.fed();
      const HeadProgress progress = parser_.read_head(request);
      examined_ += parser_.fed() - fed_before;
      if (progress.state == HeadProgress::State::more) break;
      if (progress.state == HeadProgress::State::refused) {
        refusal = progress.status;
      } else {
        const RequestHead& head = parser_.head();
        // Sent whether or not the body is here already, so that what a client receives does
        // not depend on how its bytes were cut into reads.
        if (head.expect_continue) out.append(kContinue);
        size = head.size;
        if (head.chunked) {
          phase_ = Phase::chunked_body;
        } else if (head.content_length > 0) {
          phase_ = Phase::identity_body;
        }
      }
    }
    if (phase_ != Phase::head && refusal == Status::ok) {
      const Progress progress = read_body(request, size, body, refusal);
      if (progress == Progress::more) break;
    }
    if (refusal != Status::ok) {
      service_->refuse(refusal, now, out);
      reset();
      result.consumed = input.size();
      result.close = true;
      return result;
    }

    const RequestHead& head = parser_.head();
    if (observer_) show(request, body);
    const Request complete{head.method, head.target(request), body, head.http10, head.keep_alive};
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
  const std::size_t fed_before = parser_.fed();
  const BodyProgress progress = parser_.decode_chunked(request, limit, chunked_body_);
  examined_ += parser_.fed() - fed_before;
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

void Session::finish_request() noexcept {
  phase_ = Phase::head;
  parser_.reset();
  chunked_body_.clear();
  if (chunked_body_.capacity() > kKeptBodyCapacity) std::string().swap(chunked_body_);
}

void Session::reset() noexcept {
  finish_request();
}

}  // namespace iomux::http
