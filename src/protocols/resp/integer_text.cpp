#include "protocols/resp/integer_text.hpp"

namespace iomux::resp {

std::optional<std::int64_t> parse_integer(std::string_view text) noexcept {
  if (text.empty() || text.size() > kMaxIntegerText) return std::nullopt;
  if (text == "0") return 0;
  const bool negative = text.front() == '-';
  if (negative) text.remove_prefix(1);
  // A first digit of 1-9: this refuses "", "-", "-0" and leading zeros in one test.
  if (text.empty() || text.front() < '1' || text.front() > '9') return std::nullopt;
  std::uint64_t magnitude = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (magnitude > (UINT64_MAX - digit) / 10) return std::nullopt;
    magnitude = magnitude * 10 + digit;
  }
  constexpr auto kMaxPositive = static_cast<std::uint64_t>(INT64_MAX);
  if (negative) {
    if (magnitude > kMaxPositive + 1) return std::nullopt;
    // Two's complement of the magnitude, without negating INT64_MIN's magnitude as signed.
    return static_cast<std::int64_t>(0 - magnitude);
  }
  if (magnitude > kMaxPositive) return std::nullopt;
  return static_cast<std::int64_t>(magnitude);
}

}  // namespace iomux::resp
