#include "protocols/http/head_scanner.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>

namespace iomux::http {
namespace {

// Longer than any method http_parser knows ("UNSUBSCRIBE", "MKACTIVITY", "MKCALENDAR"), so a
// token that reaches it without a space cannot be a method it parses.
constexpr std::size_t kMaxMethod = 16;

bool is_token_char(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

// Check 1. A verdict only when the bytes seen decide it; nullopt while a method may still follow
// (and for a well-formed method token, which http_parser judges).
std::optional<Status> judge_method(std::string_view request) noexcept {
  const std::size_t seen = std::min(request.size(), kMaxMethod + 1);
  for (std::size_t i = 0; i < seen; ++i) {
    if (request[i] == ' ') {
      if (i == 0) return Status::bad_request;
      return std::nullopt;
    }
    if (!is_token_char(request[i])) return Status::bad_request;
  }
  if (seen == kMaxMethod + 1) return Status::not_implemented;
  return std::nullopt;
}

// Where the first '\n' in data[from, size) is, or size. A head is a few short lines, for which
// memchr's set-up costs more than the search (it was the scanner's largest cost), so this looks
// at eight bytes at a time: a byte of `word ^ newlines` is zero where a '\n' is, and the
// lowest byte flagged by the has-zero-byte trick is exactly the first one.
std::size_t find_newline(const char* data, std::size_t from, std::size_t size) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    constexpr std::uint64_t kOnes = 0x0101010101010101u;
    constexpr std::uint64_t kHighBits = 0x8080808080808080u;
    constexpr std::uint64_t kNewlines = kOnes * '\n';
    for (; from + 8 <= size; from += 8) {
      std::uint64_t word;
      std::memcpy(&word, data + from, sizeof word);
      const std::uint64_t x = word ^ kNewlines;
      const std::uint64_t zero_bytes = (x - kOnes) & ~x & kHighBits;
      if (zero_bytes) return from + static_cast<std::size_t>(std::countr_zero(zero_bytes) / 8);
    }
    while (from < size && data[from] != '\n') ++from;
    return from;
  } else {
    const void* hit = std::memchr(data + from, '\n', size - from);
    return hit ? static_cast<std::size_t>(static_cast<const char*>(hit) - data) : size;
  }
}

}  // namespace

HeadScan HeadScanner::scan(std::string_view request, const HeadLimits& limits) noexcept {
  HeadScan result;
  if (auto refused = judge_method(request)) {
    result.kind = HeadScan::Kind::refused;
    result.status = *refused;
    return result;
  }

  // Only the first max_head bytes can hold an acceptable head. Restart two bytes back: a '\n'
  // there may have been waiting for the bytes that tell whether a blank line follows it.
  const std::string_view window = request.substr(0, limits.max_head);
  const char* const begin = window.data();
  const std::size_t resume = scanned_ >= 2 ? scanned_ - 2 : 0;
  std::size_t from = resume;
  std::size_t head_end = 0;
  while (from < window.size()) {
    const std::size_t newline = find_newline(begin, from, window.size());
    if (newline == window.size()) break;
    if (line_end_ == kNotFound) line_end_ = newline;
    const std::string_view after = window.substr(newline + 1);
    if (!after.empty() && after[0] == '\n') {
      head_end = newline + 2;
      break;
    }
    if (after.size() >= 2 && after[0] == '\r' && after[1] == '\n') {
      head_end = newline + 3;
      break;
    }
    from = newline + 1;
  }
  const std::size_t searched_to = head_end ? head_end : window.size();
  result.examined = searched_to - std::min(resume, searched_to);
  scanned_ = window.size();

  const bool line_too_long =
      line_end_ == kNotFound ? request.size() > limits.max_request_line : line_end_ > limits.max_request_line;
  if (line_too_long) {
    result.kind = HeadScan::Kind::refused;
    result.status = Status::uri_too_long;
  } else if (head_end) {
    result.kind = HeadScan::Kind::complete;
    result.size = head_end;
  } else if (request.size() >= limits.max_head) {
    result.kind = HeadScan::Kind::too_large;
    result.status = Status::header_fields_too_large;
  }
  return result;
}

}  // namespace iomux::http
