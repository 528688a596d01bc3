#include "protocols/http/session.hpp"

#include <algorithm>

#include "protocols/http/date_cache.hpp"

namespace iomux::http {
namespace {

// A chunked body buffer larger than this is given back after its request rather than kept for
// the next one: an idle connection should not hold a megabyte.
constexpr std::size_t kKeptBodyCapacity = 64 * 1024;

bool is_line_break(char c) noexcept {
  return c == '\r' || c == '\n';
}

}  // namespace

Result Session::process(std::string_view input, std::string& out) {
  return process(input, out, std::time(nullptr));
}

Result Session::process(std::string_view input, std::string& out, std::time_t now) {
  Result result;
  const std::string_view date = DateCache::this_thread().at(now);
  std::size_t offset = 0;
  while (offset < input.size()) {
    const std::string_view request = input.substr(offset);
    Step step;
    switch (phase_) {
      case Phase::head:
        step = read_head(request, out, date);
        break;
      case Phase::identity_body:
        step = read_identity_body(request, out, date);
        break;
      case Phase::chunked_body:
        step = read_chunked_body(request, out, date);
        break;
    }
    offset += step.consumed;
    result.requests += step.answered ? 1 : 0;
    if (step.close) {
      reset();
      result.consumed = input.size();
      result.close = true;
      return result;
    }
    if (step.waiting) break;
  }
  result.consumed = offset;
  return result;
}

Session::Step Session::read_head(std::string_view request, std::string& out, std::string_view date) {
  // Empty lines before a request are skipped (RFC 9112 2.2: some clients send a CRLF after a
  // POST body). Consumed at once, so a request never starts with one.
  if (!scanner_.started() && is_line_break(request.front())) {
    std::size_t skipped = 1;
    while (skipped < request.size() && is_line_break(request[skipped])) ++skipped;
    return {skipped, false, false, false};
  }
  const HeadScan scan = scanner_.scan(request, service_->head_limits());
  examined_ += scan.examined;
  const Options& options = service_->options();
  if (scan.kind == HeadScan::Kind::refused) return refuse(scan.status, out, date);
  if (scan.kind != HeadScan::Kind::complete) {
    // The head is not all here, but its request line may be: judge it now rather than when
    // the head is complete, which for an HTTP/0.9 client or a broken one would be never.
    if (!line_judged_ && scanner_.line_size() > 0) {
      line_judged_ = true;
      examined_ += scanner_.line_size();
      const Status status = parser_.parse_request_line(request.substr(0, scanner_.line_size()), options.max_uri);
      if (status != Status::ok) return refuse(status, out, date);
    }
    if (scan.kind == HeadScan::Kind::too_large) return refuse(scan.status, out, date);
    return {0, false, false, true};
  }

  examined_ += scan.size;
  const Status status =
      parser_.parse_head(request.substr(0, scan.size), scanner_.line_size(), options.max_uri, options.max_body, head_);
  if (status != Status::ok) return refuse(status, out, date);
  scanner_.reset();
  // Sent whether or not the body is here already, so that what a client receives does not
  // depend on how its bytes were cut into reads.
  if (head_.expect_continue) out.append(kContinue);
  if (head_.chunked) {
    phase_ = Phase::chunked_body;
    chunked_fed_ = head_.size;
    return read_chunked_body(request, out, date);
  }
  if (head_.content_length > 0) {
    phase_ = Phase::identity_body;
    return read_identity_body(request, out, date);
  }
  return answer(request, head_.size, {}, out, date);
}

Session::Step Session::read_identity_body(std::string_view request, std::string& out, std::string_view date) {
  // content_length <= max_body (checked with the head), so the sum cannot overflow.
  const std::size_t size = head_.size + static_cast<std::size_t>(head_.content_length);
  if (request.size() < size) return {0, false, false, true};
  return answer(request, size, request.substr(head_.size, size - head_.size), out, date);
}

Session::Step Session::read_chunked_body(std::string_view request, std::string& out, std::string_view date) {
  // The framing counts against max_body too: it is kept in the input like the data.
  const std::size_t limit = head_.size + service_->options().max_body;
  const std::size_t available = std::min(request.size(), limit);
  if (available > chunked_fed_) {
    const BodyProgress progress =
        parser_.decode_chunked(request.substr(chunked_fed_, available - chunked_fed_), chunked_body_);
    examined_ += progress.used;
    chunked_fed_ += progress.used;
    if (progress.state == BodyProgress::State::refused) return refuse(progress.status, out, date);
    if (progress.state == BodyProgress::State::complete) return answer(request, chunked_fed_, chunked_body_, out, date);
  }
  if (request.size() > limit) return refuse(Status::payload_too_large, out, date);
  return {0, false, false, true};
}

Session::Step Session::answer(std::string_view request, std::size_t size, std::string_view body, std::string& out,
                              std::string_view date) {
  const Request complete{head_.method, head_.target(request), body, head_.http10, head_.keep_alive};
  const bool close = service_->answer(complete, date, out);
  finish_request();
  return {size, true, close, false};
}

Session::Step Session::refuse(Status status, std::string& out, std::string_view date) {
  service_->refuse(status, date, out);
  return {0, false, true, false};
}

void Session::finish_request() noexcept {
  phase_ = Phase::head;
  scanner_.reset();
  line_judged_ = false;
  chunked_fed_ = 0;
  chunked_body_.clear();
  if (chunked_body_.capacity() > kKeptBodyCapacity) std::string().swap(chunked_body_);
}

void Session::reset() noexcept {
  finish_request();
}

}  // namespace iomux::http
