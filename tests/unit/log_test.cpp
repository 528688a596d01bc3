#include "iomux/log.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace iomux {
namespace {

TEST(EscapeBytes, PrintableAsciiStays) {
  EXPECT_EQ(escape_bytes("hello world!"), "hello world!");
}

TEST(EscapeBytes, ControlAndNonAsciiAreEscaped) {
  EXPECT_EQ(escape_bytes("a\r\n\t\\b"), "a\\r\\n\\t\\\\b");
  EXPECT_EQ(escape_bytes(std::string("\x1b[2J\0\x7f\xff", 7)), "\\x1b[2J\\x00\\x7f\\xff");
  EXPECT_EQ(escape_bytes("\xe4\xbd\xa0"), "\\xe4\\xbd\\xa0");  // UTF-8 too: never raw to a terminal
}

TEST(EscapeBytes, CutsLongInput) {
  std::string s(1000, 'a');
  EXPECT_EQ(escape_bytes(s, 10), std::string(10, 'a') + "...");
}

TEST(Logger, LevelsFilterAndSinkGetsWholeLines) {
  std::vector<std::string> lines;
  Logger log(LogLevel::info, [&](LogLevel, std::string_view l) { lines.emplace_back(l); });
  log.debug("hidden {}", 1);
  log.info("shown {}", 2);
  log.error("shown {}", 3);
  EXPECT_EQ(lines, (std::vector<std::string>{"shown 2", "shown 3"}));
  log.set_level(LogLevel::error);
  log.info("hidden");
  EXPECT_EQ(lines.size(), 2u);
}

TEST(RateLimiter, LetsOneThroughPerIntervalAndCountsTheRest) {
  RateLimiter limiter(std::chrono::hours(1));
  std::uint64_t suppressed = 99;
  EXPECT_TRUE(limiter.allow(&suppressed));
  EXPECT_EQ(suppressed, 0u);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(limiter.allow(&suppressed));
}

TEST(RateLimiter, ReportsSuppressedCountWhenTheIntervalPasses) {
  RateLimiter limiter(std::chrono::milliseconds(20));
  std::uint64_t suppressed = 0;
  ASSERT_TRUE(limiter.allow(&suppressed));
  for (int i = 0; i < 3; ++i) limiter.allow(&suppressed);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  ASSERT_TRUE(limiter.allow(&suppressed));
  EXPECT_EQ(suppressed, 3u);
}

}  // namespace
}  // namespace iomux
