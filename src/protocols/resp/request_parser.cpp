#include "protocols/resp/request_parser.hpp"

#include <algorithm>
#include <climits>
#include <cstring>

#include "protocols/resp/integer_text.hpp"

// Where this parser parts from redis-server's (networking.c, processInlineBuffer and
// processMultibulkBuffer), and why:
//
// * Redis looks for the '\r' ending a "*<count>" or "$<length>" line anywhere in its buffer
//   and calls the line "too big" only past 64 KiB without one. A number has at most 20
//   characters and only digits (and a leading '-'), so here a 21st character, or any other
//   byte, already makes an invalid length: the same error Redis gives once that '\r' comes,
//   found without waiting for (or scanning) 64 KiB.
// * Redis checks that a bulk header starts with '$' once the header's '\r' is there; here as
//   soon as its first byte is, for the same reason.
// * Redis accepts a complete inline line of any length (its limit applies only while the '\n'
//   is missing), so whether a long line passes depends on how it was cut into reads. Here the
//   limit applies to the line, complete or not.
// * Redis bounds a request's arguments only by INT_MAX and its total by the query buffer limit,
//   closing the connection without a reply past it; here Limits bound both, with an error reply.
// * A NUL byte ends an inline line's parsing in Redis (it splits the line as a C string); here
//   it is an ordinary byte.
//
// Like Redis, the byte after a header's '\r' and the two after a bulk are skipped unread (they
// should be "\n" and "\r\n"): checking them would refuse nothing a client sends.

namespace iomux::resp {
namespace {

constexpr std::string_view kInvalidMultibulkLength = "-ERR Protocol error: invalid multibulk length\r\n";
constexpr std::string_view kInvalidBulkLength = "-ERR Protocol error: invalid bulk length\r\n";
constexpr std::string_view kTooBigInline = "-ERR Protocol error: too big inline request\r\n";
constexpr std::string_view kTooBigMultibulk = "-ERR Protocol error: too big multibulk request\r\n";
constexpr std::string_view kUnbalancedQuotes = "-ERR Protocol error: unbalanced quotes in request\r\n";

// Redis reserves this many argument slots up front, whatever the count line claims: a claim
// costs nothing until its arguments arrive.
constexpr std::size_t kInitialArgSlots = 1024;

// isspace() in the C locale, which is what Redis's inline splitter uses between words.
bool is_space(int c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool is_hex_digit(int c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int hex_value(int c) noexcept {
  if (c <= '9') return c - '0';
  return (c | 0x20) - 'a' + 10;
}

char unescape(int c) noexcept {
  switch (c) {
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    case 'b':
      return '\b';
    case 'a':
      return '\a';
    default:
      return static_cast<char>(c);
  }
}

// For the fast path: a "<digits>\r" line at p followed by one more byte, digits as string2ll()
// reads them but without a sign, at most 18 of them (they fit in 64 bits, and exceed every
// limit). Moves p past the line. False for anything else, left to the careful path.
bool read_plain_number(const char*& p, const char* end, std::uint64_t& value) noexcept {
  const char* q = p;
  const char* const stop = end - q > 18 ? q + 18 : end;
  std::uint64_t number = 0;
  for (; q < stop && static_cast<unsigned char>(*q - '0') <= 9; ++q)
    number = number * 10 + static_cast<unsigned char>(*q - '0');
  if (q == p || (*p == '0' && q - p > 1)) return false;  // no digits, or a leading zero
  if (end - q < 2 || *q != '\r') return false;           // the '\r' and the byte after it
  value = number;
  p = q + 2;
  return true;
}

}  // namespace

RequestParser::RequestParser(Limits limits) : limits_(limits) {}

std::size_t RequestParser::max_kept_input() const noexcept {
  // An unfinished multibulk request is at most max_request bytes up to the end of its last
  // complete argument, plus a header line still missing its end: the type byte, up to
  // kMaxIntegerText digits and its '\r'.
  return std::max(limits_.max_inline, limits_.max_request + kMaxIntegerText + 2);
}

void RequestParser::reset() noexcept {
  kind_ = Kind::none;
  error_.clear();
}

void RequestParser::release_grown() {
  constexpr std::size_t kKeep = 64;  // what a usual request needs stays allocated
  if (kind_ == Kind::none && spans_.capacity() > kKeep) std::vector<Span>().swap(spans_);
  if (args_.capacity() > kKeep) std::vector<std::string_view>().swap(args_);
  if (unquoted_.capacity() > 1024) std::string().swap(unquoted_);
  // A std::string's small-string capacity (15) is inside the object, not on the heap.
  const std::size_t unquoted = unquoted_.capacity() > 15 ? unquoted_.capacity() + 1 : 0;
  const std::size_t error = error_.capacity() > 15 ? error_.capacity() + 1 : 0;
  held_ = spans_.capacity() * sizeof(Span) + args_.capacity() * sizeof(std::string_view) + unquoted + error;
  grew_ = kind_ != Kind::none;  // a request half read keeps its table: look again next time
}

RequestParser::Step RequestParser::next(std::string_view input) {
  Step step;
  if (!error_.empty()) {
    step.status = Status::error;
    return step;
  }
  for (;;) {
    const std::string_view rest = input.substr(step.used);
    if (rest.empty()) return step;
    if (kind_ == Kind::none) {
      if (rest.front() == '*' && read_whole_multibulk(rest)) {
        step.used += length_;
        step.status = Status::request;
        return step;
      }
      start_request();
      kind_ = rest.front() == '*' ? Kind::multibulk : Kind::inline_line;
    }
    const Outcome outcome = kind_ == Kind::multibulk ? parse_multibulk(rest) : parse_inline(rest);
    switch (outcome) {
      case Outcome::request:
        kind_ = Kind::none;
        step.used += length_;
        step.status = Status::request;
        return step;
      case Outcome::empty:
        kind_ = Kind::none;
        step.used += length_;
        continue;
      case Outcome::incomplete:
        return step;
      case Outcome::error:
        step.status = Status::error;
        return step;
      case Outcome::progress:
        break;  // not returned by the parse functions
    }
  }
}

void RequestParser::start_request() noexcept {
  grew_ = true;  // the resumable and inline paths may grow any table
  length_ = 0;
  scanned_ = 0;
  have_count_ = false;
  args_left_ = 0;
  pos_ = 0;
  bulk_length_ = -1;
  spans_.clear();
}

RequestParser::Outcome RequestParser::fail(std::string_view reply) {
  grew_ = true;
  error_.assign(reply);
  kind_ = Kind::none;
  return Outcome::error;
}

RequestParser::Outcome RequestParser::parse_inline(std::string_view input) {
  // Bytes scanned by earlier calls hold no '\n': start after them, so a line arriving a byte
  // at a time is scanned once in all.
  const std::size_t from = std::min(scanned_, input.size());
  const void* hit = std::memchr(input.data() + from, '\n', input.size() - from);
  bytes_examined_ += (hit ? static_cast<const char*>(hit) + 1 : input.data() + input.size()) - (input.data() + from);
  if (hit == nullptr) {
    scanned_ = input.size();
    // Whatever ends this line, it will be longer than the limit: refuse it now rather than
    // keep buffering.
    if (input.size() > limits_.max_inline) return fail(kTooBigInline);
    return Outcome::incomplete;
  }
  const auto newline = static_cast<std::size_t>(static_cast<const char*>(hit) - input.data());
  if (newline > limits_.max_inline) return fail(kTooBigInline);
  std::string_view line = input.substr(0, newline);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  length_ = newline + 1;
  if (!split_inline(line)) return fail(kUnbalancedQuotes);
  return args_.empty() ? Outcome::empty : Outcome::request;
}

// Redis's sdssplitargs(): words separated by spaces; a word may hold "double quoted" parts
// with escapes and 'single quoted' parts where only \' is special; a closing quote must be
// followed by a space or the end of the line. False on an unbalanced quote.
bool RequestParser::split_inline(std::string_view line) {
  args_.clear();
  unquoted_.clear();
  // Unquoting only shrinks text, so this one reservation keeps every view into it valid.
  unquoted_.reserve(line.size());
  const std::size_t size = line.size();
  bytes_examined_ += size;
  auto at = [&](std::size_t i) -> int {
    return i < size ? static_cast<unsigned char>(line[i]) : -1;  // -1: the end of the line
  };
  std::size_t i = 0;
  for (;;) {
    while (i < size && is_space(at(i))) ++i;
    if (i == size) return true;
    const std::size_t word_start = unquoted_.size();
    char quote = 0;  // the quote the word is in: '"', '\'' or none
    for (bool done = false; !done;) {
      const int c = at(i);
      if (quote != 0) {
        // Escapes as Redis reads them: in double quotes "\xHH" and the C escapes, in single
        // quotes only \'.
        if (quote == '"' && c == '\\' && at(i + 1) == 'x' && is_hex_digit(at(i + 2)) && is_hex_digit(at(i + 3))) {
          unquoted_.push_back(static_cast<char>(hex_value(at(i + 2)) * 16 + hex_value(at(i + 3))));
          i += 4;
        } else if (quote == '"' && c == '\\' && at(i + 1) != -1) {
          unquoted_.push_back(unescape(at(i + 1)));
          i += 2;
        } else if (quote == '\'' && c == '\\' && at(i + 1) == '\'') {
          unquoted_.push_back('\'');
          i += 2;
        } else if (c == quote) {
          if (at(i + 1) != -1 && !is_space(at(i + 1))) return false;  // a closing quote ends the word
          done = true;
          ++i;
        } else if (c == -1) {
          return false;  // unbalanced quotes
        } else {
          unquoted_.push_back(static_cast<char>(c));
          ++i;
        }
      } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == -1) {
        done = true;  // Redis ends a bare word only at these, not at every isspace() byte
        if (c != -1) ++i;
      } else if (c == '"' || c == '\'') {
        quote = static_cast<char>(c);
        ++i;
      } else {
        unquoted_.push_back(static_cast<char>(c));
        ++i;
      }
    }
    args_.emplace_back(unquoted_.data() + word_start, unquoted_.size() - word_start);
  }
}

// The fast path: a multibulk request that is all there and well-formed, read in one go into
// args_. It is what nearly every request is, and it costs a third of the resumable path below,
// which keeps its place in spans_ so that it can stop at any byte. On anything else (bytes
// missing, an empty or malformed request, a limit) it gives up and the resumable path reads
// the request from its start, once: so the fast path never changes an outcome, only its cost.
bool RequestParser::read_whole_multibulk(std::string_view input) {
  const char* const base = input.data();
  const char* const end = base + input.size();
  const char* p = base + 1;
  const bool complete = read_whole_multibulk(base, end, p);
  // Headers read, bulks skipped: counting the bulks too makes this an upper bound.
  bytes_examined_ += static_cast<std::size_t>(p - base);
  if (complete) length_ = static_cast<std::size_t>(p - base);
  return complete;
}

bool RequestParser::read_whole_multibulk(const char* base, const char* end, const char*& p) {
  std::uint64_t count = 0;
  if (!read_plain_number(p, end, count) || count == 0 || count > INT_MAX || count > limits_.max_args) return false;
  // Each argument takes at least 6 bytes ("$0\r\n\r\n"): a count the input cannot hold means
  // bytes are missing, and must not size the argument table.
  if (count > static_cast<std::uint64_t>(end - p) / 6) return false;
  args_.clear();
  if (count > args_.capacity()) [[unlikely]] {
    grew_ = true;
    args_.reserve(count);
  }
  for (std::uint64_t i = 0; i < count; ++i) {
    std::uint64_t length = 0;
    if (p == end || *p != '$') return false;
    ++p;
    if (!read_plain_number(p, end, length) || length > limits_.max_bulk) return false;
    const auto offset = static_cast<std::size_t>(p - base);
    if (static_cast<std::uint64_t>(end - p) < length + 2 || offset + length + 2 > limits_.max_request) return false;
    args_.emplace_back(p, static_cast<std::size_t>(length));
    p += length + 2;
  }
  return true;
}

RequestParser::Outcome RequestParser::parse_multibulk(std::string_view input) {
  if (!have_count_) {
    const Outcome outcome = read_count(input);
    if (outcome != Outcome::progress) return outcome;
  }
  while (args_left_ > 0) {
    if (bulk_length_ < 0) {
      const Outcome outcome = read_bulk_header(input);
      if (outcome != Outcome::progress) return outcome;
    }
    const std::size_t end = pos_ + static_cast<std::size_t>(bulk_length_) + 2;
    if (input.size() < end) return Outcome::incomplete;
    spans_.push_back({pos_, static_cast<std::size_t>(bulk_length_)});
    pos_ = end;
    bulk_length_ = -1;
    --args_left_;
  }
  length_ = pos_;
  publish_multibulk(input);
  return Outcome::request;
}

RequestParser::Outcome RequestParser::read_count(std::string_view input) {
  std::int64_t count = 0;
  const Outcome outcome = read_number_line(input, 0, count);
  if (outcome == Outcome::incomplete) return outcome;
  if (outcome == Outcome::error || count > INT_MAX ||
      (count > 0 && static_cast<std::uint64_t>(count) > limits_.max_args))
    return fail(kInvalidMultibulkLength);
  have_count_ = true;
  if (count <= 0) {
    length_ = pos_;
    return Outcome::empty;
  }
  args_left_ = static_cast<std::size_t>(count);
  spans_.reserve(std::min(args_left_, kInitialArgSlots));
  return Outcome::progress;
}

RequestParser::Outcome RequestParser::read_bulk_header(std::string_view input) {
  if (input.size() <= pos_) return Outcome::incomplete;
  const char type = input[pos_];
  if (type != '$') {
    // Redis's wording, with a line break shown as a space as its error replies do.
    std::string reply = "-ERR Protocol error: expected '$', got ' '\r\n";
    if (type != '\r' && type != '\n') reply[reply.size() - 4] = type;
    return fail(reply);
  }
  std::int64_t length = 0;
  const Outcome outcome = read_number_line(input, pos_, length);
  if (outcome == Outcome::incomplete) return outcome;
  if (outcome == Outcome::error || length < 0 || static_cast<std::uint64_t>(length) > limits_.max_bulk)
    return fail(kInvalidBulkLength);
  if (pos_ + static_cast<std::size_t>(length) + 2 > limits_.max_request) return fail(kTooBigMultibulk);
  bulk_length_ = length;
  return Outcome::progress;
}

// Reads the number of a "*<count>\r\n" or "$<length>\r\n" line whose type byte is at `start`,
// in one pass over its digits: on the hot path of every request, where a separate search for
// the '\r' and a second parse cost a third of the parser. On progress, pos_ is moved past the
// line. Outcome::error means "not a number", left for the caller to word.
RequestParser::Outcome RequestParser::read_number_line(std::string_view input, std::size_t start, std::int64_t& value) {
  const char* const begin = input.data() + start + 1;  // the number's first character
  const char* const end = input.data() + input.size();
  // A number has at most kMaxIntegerText characters: a line still going past them is none.
  const char* const limit = std::min(end, begin + kMaxIntegerText + 1);
  const char* p = begin;
  const bool negative = p < limit && *p == '-';
  if (negative) ++p;
  const char* const digits = p;
  std::uint64_t magnitude = 0;  // may wrap past 19 digits; such lines are refused below
  for (; p < limit && static_cast<unsigned char>(*p - '0') <= 9; ++p)
    magnitude = magnitude * 10 + static_cast<unsigned char>(*p - '0');
  bytes_examined_ += static_cast<std::size_t>(p - begin) + 1;
  if (static_cast<std::size_t>(p - begin) > kMaxIntegerText) return Outcome::error;
  if (p == end) return Outcome::incomplete;
  // Any other byte than a digit or the line's '\r' cannot be part of a number: refuse it now
  // (Redis waits for the '\r' and then refuses the same line with the same words).
  if (*p != '\r') return Outcome::error;
  if (p + 1 == end) return Outcome::incomplete;  // the line's '\n' is still to come
  // The rules of Redis's string2ll(): digits, no leading zero but in "0", no "-0", in range.
  const std::size_t count = static_cast<std::size_t>(p - digits);
  constexpr std::size_t kMaxDigits = 19;  // of INT64_MAX and of INT64_MIN
  constexpr auto kMaxMagnitude = static_cast<std::uint64_t>(INT64_MAX);
  if (count == 0 || count > kMaxDigits || (*digits == '0' && (count > 1 || negative)) ||
      magnitude > kMaxMagnitude + (negative ? 1 : 0))
    return Outcome::error;
  value = negative ? static_cast<std::int64_t>(0 - magnitude) : static_cast<std::int64_t>(magnitude);
  pos_ = static_cast<std::size_t>(p + 2 - input.data());
  return Outcome::progress;
}

void RequestParser::publish_multibulk(std::string_view input) {
  args_.clear();
  args_.reserve(spans_.size());
  for (const Span& span : spans_) args_.emplace_back(input.data() + span.offset, span.length);
}

}  // namespace iomux::resp
