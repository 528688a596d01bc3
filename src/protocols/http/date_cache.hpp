// The Date header's value (an IMF-fixdate, RFC 9110 5.6.7: "Sun, 06 Nov 1994 08:49:37 GMT"),
// formatted once per second rather than once per response.
//
// A server answers thousands of requests within one second and every answer carries the same
// Date; formatting it (gmtime_r and a dozen digits) would cost more than the rest of a small
// response. So each thread keeps one cache and reformats only when the second changes.
#pragma once

#include <cstddef>
#include <ctime>
#include <string_view>

namespace iomux::http {

class DateCache {
 public:
  static constexpr std::size_t kSize = 29;  // "Sun, 06 Nov 1994 08:49:37 GMT"

  // The value for `now` (seconds since the epoch); valid until the next call.
  std::string_view at(std::time_t now) noexcept {
    if (now != second_) format(now);
    return {text_, kSize};
  }

  // How many times the text was formatted (one per distinct second asked for).
  [[nodiscard]] std::size_t formats() const noexcept { return formats_; }

  // The calling thread's cache. Sessions on one thread share it; no locking is needed since
  // nothing is shared between threads.
  static DateCache& this_thread() noexcept;

 private:
  void format(std::time_t now) noexcept;

  std::time_t second_ = -1;  // the second text_ shows; -1 (1969) is never asked for
  std::size_t formats_ = 0;
  char text_[kSize] = {};
};

}  // namespace iomux::http
