// Logging for servers and tools: one line per event, written whole (thread-safe), levels
// error < warn < info < debug. Client bytes never reach a terminal raw: escape_bytes() turns
// control characters and non-ASCII into \n, \xNN escapes.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace iomux {

enum class LogLevel { error = 0, warn = 1, info = 2, debug = 3 };

// Printable ASCII stays; \r \n \t \\ become escapes; every other byte becomes \xNN. Output is
// cut at max_len input bytes with "..." appended, so one request can never flood a log.
std::string escape_bytes(std::string_view bytes, std::size_t max_len = 256);

class Logger {
 public:
  using Sink = std::function<void(LogLevel, std::string_view line)>;

  // Default sink: stderr, one fwrite per line, with a UTC timestamp.
  explicit Logger(LogLevel level = LogLevel::info, Sink sink = {});

  [[nodiscard]] bool enabled(LogLevel level) const noexcept {
    return static_cast<int>(level) <= level_.load(std::memory_order_relaxed);
  }
  void set_level(LogLevel level) noexcept { level_.store(static_cast<int>(level)); }

  void write(LogLevel level, std::string_view message);

  template <typename... Args>
  void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
    if (enabled(level)) write(level, fmt::format(format, std::forward<Args>(args)...));
  }
  template <typename... Args>
  void error(fmt::format_string<Args...> f, Args&&... a) {
    log(LogLevel::error, f, std::forward<Args>(a)...);
  }
  template <typename... Args>
  void warn(fmt::format_string<Args...> f, Args&&... a) {
    log(LogLevel::warn, f, std::forward<Args>(a)...);
  }
  template <typename... Args>
  void info(fmt::format_string<Args...> f, Args&&... a) {
    log(LogLevel::info, f, std::forward<Args>(a)...);
  }
  template <typename... Args>
  void debug(fmt::format_string<Args...> f, Args&&... a) {
    log(LogLevel::debug, f, std::forward<Args>(a)...);
  }

 private:
  std::atomic<int> level_;
  Sink sink_;
  std::mutex mutex_;
};

// Lets through at most one event per interval and counts the rest, so a flood of identical
// failures (EMFILE on every accept) costs one log line a second, not one per attempt.
// Thread-safe.
class RateLimiter {
 public:
  explicit RateLimiter(std::chrono::milliseconds interval = std::chrono::seconds(1)) noexcept
      : interval_ns_(std::chrono::nanoseconds(interval).count()) {}
  // True when this event should be logged; *suppressed gets how many were dropped since the
  // last one that was.
  bool allow(std::uint64_t* suppressed) noexcept;

 private:
  std::int64_t interval_ns_;
  std::atomic<std::int64_t> next_ns_{0};
  std::atomic<std::uint64_t> dropped_{0};
};

using LoggerPtr = std::shared_ptr<Logger>;

}  // namespace iomux
