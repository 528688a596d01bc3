#include "iomux/log.hpp"

#include <cstdio>
#include <ctime>

namespace iomux {

std::string escape_bytes(std::string_view bytes, std::size_t max_len) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  std::size_t n = bytes.size() < max_len ? bytes.size() : max_len;
  out.reserve(n + 8);
  for (std::size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(bytes[i]);
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          out += static_cast<char>(c);
        } else {
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        }
    }
  }
  if (bytes.size() > max_len) out += "...";
  return out;
}

namespace {

std::string_view level_name(LogLevel level) {
  switch (level) {
    case LogLevel::error:
      return "error";
    case LogLevel::warn:
      return "warn ";
    case LogLevel::info:
      return "info ";
    case LogLevel::debug:
      return "debug";
  }
  return "?";
}

}  // namespace

Logger::Logger(LogLevel level, Sink sink) : level_(static_cast<int>(level)), sink_(std::move(sink)) {}

void Logger::write(LogLevel level, std::string_view message) {
  if (sink_) {
    std::lock_guard lock(mutex_);
    sink_(level, message);
    return;
  }
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  gmtime_r(&ts.tv_sec, &utc);
  auto line =
      fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {} {}\n", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
                  utc.tm_hour, utc.tm_min, utc.tm_sec, ts.tv_nsec / 1'000'000, level_name(level), message);
  std::lock_guard lock(mutex_);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

bool RateLimiter::allow(std::uint64_t* suppressed) noexcept {
  auto now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  auto next = next_ns_.load(std::memory_order_relaxed);
  if (now >= next && next_ns_.compare_exchange_strong(next, now + interval_ns_)) {
    auto dropped = dropped_.exchange(0);
    if (suppressed) *suppressed = dropped;
    return true;
  }
  dropped_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace iomux
