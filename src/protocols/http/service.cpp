#include "protocols/http/service.hpp"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

namespace iomux::http {
namespace {

constexpr std::string_view kTextPlain = "text/plain";

// Enough for "GET_PARAMETER " + " HTTP/1.1\r\n" around a target of max_uri bytes, with room
// for a few extra spaces (llhttp allows several between the parts), so that a target over
// max_uri is found before a head over max_head.
constexpr std::size_t kRequestLineOverhead = 64;

// The smallest head a Service accepts as a limit: room for a short request line and Host.
constexpr std::size_t kMinHead = 128;

std::string error_text(Status status) {
  return std::to_string(static_cast<int>(status)) + " " + std::string(reason_phrase(status)) + "\n";
}

CannedResponse error_response(Status status) {
  return CannedResponse(status, kTextPlain, error_text(status));
}

// The limits the parser applies, fitted to each other: a target over max_uri must be refused
// as such (414) before its head reaches max_head (431).
HeadLimits head_limits_of(Options& options) {
  options.max_head = std::max(options.max_head, kMinHead);
  options.max_uri = std::min(options.max_uri, options.max_head - kRequestLineOverhead - 1);
  return {options.max_head, options.max_uri, options.max_body};
}

}  // namespace

// The path of an absolute-form target ("http://host:8080/plaintext?x", RFC 9112 3.2.2) and
// what follows it; an origin-form target ("/plaintext?x") as it is.
std::string_view Service::origin_form_of(std::string_view target) noexcept {
  if (!target.empty() && target.front() != '/') {
    const std::size_t scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos) return target;  // authority-form, asterisk-form
    const std::size_t slash = target.find('/', scheme_end + 3);
    return slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  return target;
}

Service::Service(Options options)
    : options_(std::move(options)),
      head_limits_(head_limits_of(options_)),
      tutorial_(Status::ok, kTextPlain, options_.reply),
      plaintext_(Status::ok, kTextPlain, "Hello, World!"),
      not_found_(error_response(Status::not_found)),
      health_ok_(Status::ok, kTextPlain, "ok"),
      health_draining_(Status::service_unavailable, kTextPlain, "draining"),
      get_only_(Status::method_not_allowed, kTextPlain, error_text(Status::method_not_allowed), "Allow: GET, HEAD\r\n"),
      post_only_(Status::method_not_allowed, kTextPlain, error_text(Status::method_not_allowed), "Allow: POST\r\n"),
      bad_request_(error_response(Status::bad_request)),
      connect_refused_(Status::method_not_allowed, kTextPlain, error_text(Status::method_not_allowed),
                       "Allow: GET, HEAD, POST\r\n"),
      request_timeout_(error_response(Status::request_timeout)),
      payload_too_large_(error_response(Status::payload_too_large)),
      uri_too_long_(error_response(Status::uri_too_long)),
      header_fields_too_large_(error_response(Status::header_fields_too_large)),
      not_implemented_(error_response(Status::not_implemented)),
      version_not_supported_(error_response(Status::version_not_supported)) {}

void Service::answer_echo(Method method, std::string_view body, Persistence persistence, std::time_t now,
                          ResponseSink& out) const {
  if (method == Method::post)
    append_response(out, Status::ok, "application/octet-stream", body, persistence, now, true);
  else
    post_only_.append_to(out, persistence, now, method != Method::head);
}

void Service::answer_stats(bool with_body, Persistence persistence, std::time_t now, ResponseSink& out) const {
  const std::string json = options_.stats ? options_.stats().dump() : std::string("{}");
  append_response(out, Status::ok, "application/json", json, persistence, now, with_body);
}

void Service::refuse(Status status, std::time_t now, ResponseSink& out) const {
  const CannedResponse* response = &bad_request_;
  switch (status) {
    case Status::method_not_allowed:
      response = &connect_refused_;
      break;
    case Status::request_timeout:
      response = &request_timeout_;
      break;
    case Status::payload_too_large:
      response = &payload_too_large_;
      break;
    case Status::uri_too_long:
      response = &uri_too_long_;
      break;
    case Status::header_fields_too_large:
      response = &header_fields_too_large_;
      break;
    case Status::not_implemented:
      response = &not_implemented_;
      break;
    case Status::version_not_supported:
      response = &version_not_supported_;
      break;
    default:
      break;
  }
  response->append_to(out, Persistence::close, now, true);
}

}  // namespace iomux::http
