// libFuzzer target for the built-in protocols (src/protocols/builtin.cpp), driven through a
// real ConnectionCore (tests/support/core_harness.hpp), the way every engine drives them:
// bytes arrive in chunks, the core keeps what the handler did not consume and presents it
// again with the next chunk, and the "socket" sometimes takes nothing (the replies then wait
// in the connection's queue). The input is a small header, then the stream:
//
//   byte 0      protocol (ack / line / echo) and flags (reply text; which chunks stall)
//   bytes 1-2   max_line, 1..300 (small, so the fuzzer reaches the limit easily)
//   bytes 3-6   four chunk sizes, used in turn (0 is skipped: engines deliver no empty reads)
//   bytes 7..   the stream
//
// Every property is checked with __builtin_trap(), so a violation is a crash libFuzzer keeps.
// The line protocol is checked against reference_line_mode() below, which sees the whole
// stream at once and so cannot depend on where the chunks were cut or when the socket stalled.
//
//   build: make fuzz (clang, build-fuzz/)      run one input: build-fuzz/fuzz/builtin_protocols_fuzzer FILE
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "iomux/protocols.hpp"
#include "support/core_harness.hpp"

namespace {

void require(bool ok) {
  if (!ok) __builtin_trap();
}

enum class Mode { ack, line, echo };

struct Expected {
  std::string output;
  std::vector<std::string> requests;
  bool close = false;
};

std::string too_long_line(std::size_t max_line) {
  return "ERROR line too long (max " + std::to_string(max_line) + " bytes)\r\n";
}

// The line protocol as protocols.hpp states it, over the whole stream: every '\n'-terminated
// line, one trailing '\r' removed, is a request answered with reply + "\r\n"; a line longer
// than max_line is answered with the error line and ends the connection. A final unfinished
// line is refused once it holds more than max_line + 1 bytes (the +1 for a '\r' still to be
// stripped): by then no '\n' can make it acceptable.
Expected reference_line_mode(std::string_view stream, const std::string& reply, std::size_t max_line) {
  Expected want;
  std::size_t start = 0;
  for (;;) {
    std::size_t newline = stream.find('\n', start);
    if (newline == std::string_view::npos) break;
    std::string_view line = stream.substr(start, newline - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > max_line) {
      want.output += too_long_line(max_line);
      want.close = true;
      return want;
    }
    want.requests.emplace_back(line);
    want.output += reply + "\r\n";
    start = newline + 1;
  }
  if (stream.size() - start > max_line + 1) {
    want.output += too_long_line(max_line);
    want.close = true;
  }
  return want;
}

struct Header {
  Mode mode = Mode::ack;
  std::string reply{iomux::kDefaultReply};
  std::size_t max_line = 1;
  std::uint8_t stall_mask = 0;  // chunk i (mod 4) arrives while the socket takes nothing
  std::size_t chunk_sizes[4] = {};
};

constexpr std::size_t kHeaderSize = 7;

Header read_header(const std::uint8_t* data) {
  Header h;
  h.mode = static_cast<Mode>(data[0] % 3);
  if (data[0] & 0x04) h.reply = "ok";
  h.stall_mask = static_cast<std::uint8_t>(data[0] >> 4);
  h.max_line = 1 + ((std::size_t{data[1]} << 8 | data[2]) % 300);
  bool all_empty = true;
  for (int i = 0; i < 4; ++i) {
    h.chunk_sizes[i] = data[3 + i];
    all_empty = all_empty && h.chunk_sizes[i] == 0;
  }
  if (all_empty) h.chunk_sizes[0] = 1;  // always make progress
  return h;
}

// The requests the handlers log at debug level, unescaped back (they are printable here only
// when the stream is; so only their count is compared in general).
struct RequestCount {
  std::size_t n = 0;
  iomux::ServerOptions options() {
    iomux::ServerOptions o;
    o.logger = std::make_shared<iomux::Logger>(iomux::LogLevel::debug, [this](iomux::LogLevel level, std::string_view) {
      if (level == iomux::LogLevel::debug) ++n;
    });
    return o;
  }
};

iomux::HandlerFactory factory(const Header& h) {
  switch (h.mode) {
    case Mode::line:
      return iomux::line_protocol(h.reply, h.max_line);
    case Mode::echo:
      return iomux::echo_protocol();
    case Mode::ack:
      break;
  }
  return iomux::ack_protocol(h.reply);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < kHeaderSize) return 0;
  const Header header = read_header(data);
  const std::string_view stream(reinterpret_cast<const char*>(data) + kHeaderSize, size - kHeaderSize);
  RequestCount logged;
  iomux::test::CoreHarness h(factory(header), logged.options());

  std::string output;
  std::size_t offset = 0;  // bytes of the stream fed so far
  std::size_t chunks = 0;  // non-empty chunks fed
  for (std::size_t turn = 0; offset < stream.size() && h.open(); ++turn) {
    const std::size_t chunk_size = std::min(header.chunk_sizes[turn % 4], stream.size() - offset);
    if (chunk_size == 0) continue;
    h.stall((header.stall_mask >> (turn % 4)) & 1);
    h.feed(stream.substr(offset, chunk_size));
    offset += chunk_size;
    ++chunks;
    output += h.take_output();
    // What the core keeps is bounded: an unfinished line, never more.
    require(h.core().kept_input().readable() <= (header.mode == Mode::line ? header.max_line + 1 : 0));
  }
  h.stall(false);
  output += h.take_output();
  const bool closed = !h.open() || h.fin_sent();
  const std::string_view fed = stream.substr(0, offset);

  switch (header.mode) {
    case Mode::ack: {
      // One reply per chunk read: the reply text, nothing kept, never a close.
      std::string want;
      for (std::size_t i = 0; i < chunks; ++i) want += header.reply;
      require(output == want && !closed);
      require(logged.n == chunks);
      break;
    }
    case Mode::echo:
      require(output == fed && !closed);
      require(logged.n == chunks);
      break;
    case Mode::line: {
      // The reference sees everything at once; the handler saw it in chunks. A close must come
      // at the same request and, since nothing more is fed after it, the reference's answer
      // over the whole stream must match the handler's over the prefix it was given.
      const Expected want = reference_line_mode(stream, header.reply, header.max_line);
      require(closed == want.close);
      require(output == want.output);
      require(logged.n == want.requests.size());
      if (!closed) require(offset == stream.size());
      break;
    }
  }
  return 0;
}
