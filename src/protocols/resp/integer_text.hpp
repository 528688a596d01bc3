// Integers as RESP clients write them: the rules of Redis's string2ll(), which every command
// taking a number (INCRBY, EXPIRE, LRANGE...) and the protocol's length headers use. A number is
// strict: an optional '-', no '+', no spaces, no leading zeros (except "0" itself), at most 20
// characters, and it must fit in int64. So "01", " 1", "+1" and "-0" are not integers, as in Redis.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

namespace iomux::resp {

// Longest text of an int64 ("-9223372036854775808"); Redis refuses anything longer unread.
inline constexpr std::size_t kMaxIntegerText = 20;

std::optional<std::int64_t> parse_integer(std::string_view text) noexcept;

// The decimal text of `value` in `buffer`, which must hold kMaxIntegerText characters.
inline std::string_view format_integer(std::int64_t value, char* buffer) noexcept {
  auto [end, ec] = std::to_chars(buffer, buffer + kMaxIntegerText, value);
  (void)ec;  // cannot fail: the buffer holds any int64
  return {buffer, static_cast<std::size_t>(end - buffer)};
}

}  // namespace iomux::resp
