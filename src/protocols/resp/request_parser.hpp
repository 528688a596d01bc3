// Splits a connection's bytes into RESP2 requests, as redis-server reads them:
//
//   multibulk  *<count>\r\n then <count> times $<length>\r\n<bytes>\r\n   (what clients send)
//   inline     a line of space-separated words ending in \n, with Redis's quoting rules
//              ("..." with \n \r \t \b \a \xHH escapes, '...' with \' only); what telnet
//              users and `redis-benchmark -t ping_inline` send
//
// A request whose first byte is '*' is multibulk, anything else is inline. Empty requests
// ("*0\r\n", "*-1\r\n", a blank line) are skipped, as Redis skips them.
//
// Incremental contract: each call to next() is given ALL the bytes of the connection not yet
// consumed (what the previous call left, with any new bytes appended), and reports how many it
// used. A request that has not fully arrived uses nothing; the parser remembers how far it got
// into it (relative to the start of the unconsumed bytes), so a request trickling in one byte
// per call costs O(its size) in total, not O(size^2). That memory is why the input must be
// re-presented from the same first byte; a caller that discards the unconsumed bytes must
// call reset().
//
// Bounds: a request past a Limit, or malformed, is answered with Redis's error wording and
// the connection is to be closed; the bytes a caller keeps between calls never exceed
// max_kept_input(). Where Redis's parser differs, the reason is to make every error depend
// only on the bytes up to where it is found, so that where the network cut the stream never
// changes the outcome (see request_parser.cpp).
//
// Thread rule: one parser per connection, used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace iomux::resp {

struct Limits {
  // Longest inline request line, without its '\n'. Redis's PROTO_INLINE_MAX_SIZE: inline
  // requests are typed or scripted one-liners, and a line must be kept whole until its '\n'.
  std::size_t max_inline = 64 * 1024;
  // Most arguments in one multibulk request. Redis only stops at INT_MAX; a million covers any
  // real MSET/DEL/RPUSH batch, and bounds the argument table (16 bytes each) to 16 MiB.
  std::size_t max_args = 1024 * 1024;
  // Longest single argument (Redis's proto-max-bulk-len, 512 MiB there). Values of tens of MiB
  // are already far outside what a cache should hold, and with the default 1 GiB maxmemory a
  // 512 MiB value would be half the keyspace; 32 MiB keeps one request's worst case modest.
  std::size_t max_bulk = 32 * 1024 * 1024;
  // Largest multibulk request, all headers and arguments (Redis bounds this only by the 1 GiB
  // client-query-buffer-limit). An unfinished request must be kept whole by the connection,
  // so this is what one connection may hold: two maximal arguments' worth.
  std::size_t max_request = 64 * 1024 * 1024;
};

class RequestParser {
 public:
  enum class Status : std::uint8_t {
    request,     // args() holds one request
    incomplete,  // more bytes are needed; nothing more can be done with these
    error,       // error_reply() holds the reply; stop reading and close after sending it
  };
  struct Step {
    Status status = Status::incomplete;
    // Bytes of input used up: the request's (when status is request) and those of the empty
    // requests before it. Unused bytes must be presented again at the next call.
    std::size_t used = 0;
  };

  explicit RequestParser(Limits limits = {});

  // Parses the next request from `input`: the connection's unconsumed bytes, as above. After
  // an error every further call reports the same error.
  Step next(std::string_view input);

  // The last request's arguments (name first, never empty). They point into the input given
  // to next() or into the parser, and are valid until the next call or until that input
  // changes.
  [[nodiscard]] std::span<const std::string_view> args() const noexcept { return args_; }
  // The whole error line ("-ERR Protocol error: ...\r\n") after Status::error.
  [[nodiscard]] std::string_view error_reply() const noexcept { return error_; }

  // The most bytes a connection ever has to keep unconsumed between calls.
  [[nodiscard]] std::size_t max_kept_input() const noexcept;
  [[nodiscard]] const Limits& limits() const noexcept { return limits_; }
  // Bytes the parser has searched or split so far: the measure of its work, which must stay
  // within a small multiple of the bytes received however they are cut (tests check it).
  [[nodiscard]] std::uint64_t bytes_examined() const noexcept { return bytes_examined_; }

  // Forgets a partly read request (its bytes must no longer be presented) and any error.
  void reset() noexcept;
  // Gives back memory a large request left behind (argument tables, unquoted inline text), so
  // that an idle connection holds little, and returns the heap bytes the parser still holds.
  // Invalidates args(). Inline: after the usual request (whole multibulk, within the tables
  // it had) there is nothing to look at.
  std::size_t release_memory() {
    args_.clear();
    if (grew_) [[unlikely]]
      release_grown();
    return held_;
  }

 private:
  enum class Kind : std::uint8_t { none, inline_line, multibulk };
  // What a parse step found; `progress` (a line read, go on) never leaves the parser.
  enum class Outcome : std::uint8_t { request, empty, incomplete, error, progress };
  struct Span {
    std::size_t offset;
    std::size_t length;
  };

  bool read_whole_multibulk(std::string_view input);
  bool read_whole_multibulk(const char* base, const char* end, const char*& p);
  Outcome parse_inline(std::string_view input);
  Outcome parse_multibulk(std::string_view input);
  Outcome read_count(std::string_view input);
  Outcome read_bulk_header(std::string_view input);
  Outcome read_number_line(std::string_view input, std::size_t start, std::int64_t& value);
  bool split_inline(std::string_view line);
  void publish_multibulk(std::string_view input);
  Outcome fail(std::string_view reply);
  void start_request() noexcept;
  void release_grown();

  Limits limits_;

  // The request being read, relative to the first byte of the input.
  Kind kind_ = Kind::none;
  std::size_t length_ = 0;         // bytes of the request once complete
  std::size_t scanned_ = 0;        // inline: leading bytes known to hold no '\n'
  bool have_count_ = false;        // multibulk: the "*<count>" line has been read
  std::size_t args_left_ = 0;      // multibulk: arguments still to read
  std::size_t pos_ = 0;            // multibulk: where the next "$<length>" line or bulk starts
  std::int64_t bulk_length_ = -1;  // multibulk: length of the bulk at pos_, -1 while unread
  std::vector<Span> spans_;        // multibulk: the arguments read so far

  std::vector<std::string_view> args_;
  std::string unquoted_;  // inline arguments, unescaped; reserved so views into it stay valid
  std::string error_;
  std::uint64_t bytes_examined_ = 0;
  // What the tables and strings above hold on the heap, as of the last release_memory(); and
  // whether they may have grown since (anything but a whole multibulk request that fit the
  // argument table), which makes release_memory() look at them.
  std::size_t held_ = 0;
  bool grew_ = false;
};

}  // namespace iomux::resp
