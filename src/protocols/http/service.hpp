// What an HTTP server answers: the routes, the limits, and every fixed response laid down in
// advance. Immutable once made, so one Service serves every session on every thread.
//
//   GET  /           the tutorial's reply text (text/plain)
//   GET  /plaintext  "Hello, World!" by the TechEmpower plaintext rules
//   POST /echo       the request body back (application/octet-stream)
//   GET  /stats      Options::stats(), as JSON
//   GET  /health     200 "ok" while serving; 503 "draining" (and Connection: close) once a
//                    graceful stop began, for a balancer's health check
// HEAD works wherever GET does; a route's other methods get 405 with Allow, other targets 404.
// Targets route by their path: a query is ignored and an absolute-form target
// ("http://host/plaintext") routes like its path.
#pragma once

#include <cstddef>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>

#include "protocols/http/options.hpp"
#include "protocols/http/request.hpp"
#include "protocols/http/request_parser.hpp"
#include "protocols/http/response.hpp"

namespace iomux::http {

class Service {
 public:
  // The limits are adjusted to fit each other: max_head is at least 128 bytes, and max_uri at
  // most max_head - 65 (a target must fit in a head with its request line); options() shows
  // the limits as applied.
  explicit Service(Options options);

  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Thread rule for everything below: safe from any thread (const, nothing mutable).

  [[nodiscard]] const Options& options() const noexcept { return options_; }
  [[nodiscard]] const HeadLimits& head_limits() const noexcept { return head_limits_; }

  // The most input a connection must keep for a request to be accepted: a head and a body of
  // the largest sizes accepted. A Session never leaves more than this unconsumed.
  [[nodiscard]] std::size_t max_kept_input() const noexcept { return options_.max_head + options_.max_body; }

  // Appends the response to a complete request, dated `now` (seconds since the epoch). Returns
  // true when the connection must close after it (the client did not ask to keep it). Inline
  // (below): every request's path.
  bool answer(const Request& request, std::time_t now, ResponseSink& out) const;

  // Appends the response refusing a request with `status` (an error), which closes the
  // connection.
  void refuse(Status status, std::time_t now, ResponseSink& out) const;

 private:
  enum class Route { none, tutorial, plaintext, echo, stats, health };
  static Route route_of(std::string_view target) noexcept;
  static std::string_view origin_form_of(std::string_view target) noexcept;
  template <std::size_t N>
  static bool has_path(std::string_view target, const char (&path)[N]) noexcept;
  // By value, not the Request: a request that does not escape stays in registers.
  void answer_echo(Method method, std::string_view body, Persistence persistence, std::time_t now,
                   ResponseSink& out) const;
  void answer_stats(bool with_body, Persistence persistence, std::time_t now, ResponseSink& out) const;

  Options options_;
  HeadLimits head_limits_;
  CannedResponse tutorial_;
  CannedResponse plaintext_;
  CannedResponse not_found_;
  CannedResponse health_ok_;
  CannedResponse health_draining_;
  CannedResponse get_only_;   // 405 from a GET route
  CannedResponse post_only_;  // 405 from a POST route
  CannedResponse bad_request_;
  CannedResponse connect_refused_;  // 405 to CONNECT, which no route takes
  CannedResponse request_timeout_;
  CannedResponse payload_too_large_;
  CannedResponse uri_too_long_;
  CannedResponse header_fields_too_large_;
  CannedResponse not_implemented_;
  CannedResponse version_not_supported_;
};

// Whether `target` is `path`, alone or followed by a query or a fragment. A constant-length
// memcmp compiles to a compare or two, and the rest of the target is never scanned.
template <std::size_t N>
bool Service::has_path(std::string_view target, const char (&path)[N]) noexcept {
  constexpr std::size_t size = N - 1;
  if (target.size() < size || std::memcmp(target.data(), path, size) != 0) return false;
  return target.size() == size || target[size] == '?' || target[size] == '#';
}

// Targets route by their path: an absolute-form one like its path.
inline Service::Route Service::route_of(std::string_view target) noexcept {
  if (target.front() != '/') target = origin_form_of(target);
  if (has_path(target, "/plaintext")) return Route::plaintext;
  if (has_path(target, "/")) return Route::tutorial;
  if (has_path(target, "/echo")) return Route::echo;
  if (has_path(target, "/stats")) return Route::stats;
  if (has_path(target, "/health")) return Route::health;
  return Route::none;
}

inline bool Service::answer(const Request& request, std::time_t now, ResponseSink& out) const {
  const Persistence persistence = !request.keep_alive ? Persistence::close
                                  : request.http10    ? Persistence::keep_alive
                                                      : Persistence::implied;
  const bool with_body = request.method != Method::head;
  const bool get_or_head = request.method == Method::get || request.method == Method::head;
  switch (route_of(request.target)) {
    case Route::plaintext:
      (get_or_head ? plaintext_ : get_only_).append_to(out, persistence, now, with_body);
      break;
    case Route::tutorial:
      (get_or_head ? tutorial_ : get_only_).append_to(out, persistence, now, with_body);
      break;
    case Route::echo:
      answer_echo(request.method, request.body, persistence, now, out);
      break;
    case Route::stats:
      if (get_or_head)
        answer_stats(with_body, persistence, now, out);
      else
        get_only_.append_to(out, persistence, now, with_body);
      break;
    case Route::health:
      if (!get_or_head)
        get_only_.append_to(out, persistence, now, with_body);
      else if (request.draining)
        health_draining_.append_to(out, Persistence::close, now, with_body);
      else
        health_ok_.append_to(out, persistence, now, with_body);
      return persistence == Persistence::close || request.draining;
    case Route::none:
      not_found_.append_to(out, persistence, now, with_body);
      break;
  }
  return persistence == Persistence::close;
}

}  // namespace iomux::http
