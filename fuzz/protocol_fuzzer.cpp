// libFuzzer target for the protocol core (src/core/protocol.cpp).
//
// It drives Protocol::consume() the way every server model does: bytes arrive in chunks, each
// call sees the bytes left over from the previous call (the carry) with the new chunk
// appended, and `scanned` tells the core how much of that carry it has already looked at.
// The input is a small header that picks the configuration and the chunking, then the
// stream:
//
//   byte 0      mode (ack / line / echo) and flags (reply text, scanned cross-check)
//   bytes 1-2   max_line, 1..300 (small, so the fuzzer reaches the limit easily)
//   bytes 3-6   four chunk sizes, used in turn; 0 feeds an empty chunk (a spurious wake-up)
//   bytes 7..   the stream
//
// Every property is checked with __builtin_trap(), so a violation is a crash libFuzzer keeps.
// Line mode is checked against reference_line_mode() below, which sees the whole stream at
// once and so cannot depend on where the chunks were cut.
//
//   build: make fuzz (clang, build-fuzz/)      run one input: build-fuzz/fuzz/protocol_fuzzer FILE
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "iomux/protocol.hpp"

namespace {

void require(bool ok) {
  if (!ok) __builtin_trap();
}

// Copies everything the core says, as a server's sink must (the views die with the input).
class RecordingSink final : public iomux::ReplySink {
 public:
  void reply(std::string_view bytes) override {
    output += bytes;
    ++replies;
  }
  void on_request(std::string_view request) override { requests.emplace_back(request); }

  std::string output;
  std::size_t replies = 0;
  std::vector<std::string> requests;
};

struct Expected {
  std::string output;
  std::vector<std::string> requests;
  bool close = false;
};

std::string too_long_line(std::size_t max_line) {
  return "ERROR line too long (max " + std::to_string(max_line) + " bytes)\r\n";
}

// Line mode as the README states it, over the whole stream: every '\n'-terminated line, one
// trailing '\r' removed, is a request answered with reply + "\r\n"; a line longer than
// max_line is answered with the error line and ends the connection. A final unfinished line
// is refused once it holds more than max_line + 1 bytes (the +1 for a '\r' still to be
// stripped): by then no '\n' can make it acceptable.
Expected reference_line_mode(std::string_view stream, const iomux::ProtocolConfig& config) {
  Expected want;
  std::size_t start = 0;
  for (;;) {
    std::size_t newline = stream.find('\n', start);
    if (newline == std::string_view::npos) break;
    std::string_view line = stream.substr(start, newline - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > config.max_line) {
      want.output += too_long_line(config.max_line);
      want.close = true;
      return want;
    }
    want.requests.emplace_back(line);
    want.output += config.reply + "\r\n";
    start = newline + 1;
  }
  if (stream.size() - start > config.max_line + 1) {
    want.output += too_long_line(config.max_line);
    want.close = true;
  }
  return want;
}

struct Header {
  iomux::ProtocolConfig config;
  bool cross_check_scanned = false;
  std::size_t chunk_sizes[4] = {};
};

constexpr std::size_t kHeaderSize = 7;

Header read_header(const std::uint8_t* data) {
  Header h;
  h.config.mode = static_cast<iomux::ProtocolMode>(data[0] % 3);
  if (data[0] & 0x10) h.config.reply = "ok";
  if (data[0] & 0x20) h.config.reply.clear();
  h.cross_check_scanned = (data[0] & 0x40) != 0;
  h.config.max_line = 1 + ((std::size_t{data[1]} << 8 | data[2]) % 300);
  bool all_empty = true;
  for (int i = 0; i < 4; ++i) {
    h.chunk_sizes[i] = data[3 + i];
    all_empty = all_empty && h.chunk_sizes[i] == 0;
  }
  if (all_empty) h.chunk_sizes[0] = 1;  // always make progress
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < kHeaderSize) return 0;
  const Header header = read_header(data);
  const std::string_view stream(reinterpret_cast<const char*>(data) + kHeaderSize,
                                size - kHeaderSize);
  const iomux::Protocol protocol(header.config);
  const iomux::ProtocolMode mode = header.config.mode;
  const bool line_mode = mode == iomux::ProtocolMode::line;
  require(protocol.max_carry() == (line_mode ? header.config.max_line + 1 : 0));

  RecordingSink sink;
  std::string pending;  // the carry, then the new chunk appended, as a connection keeps it
  std::size_t requests = 0;
  bool closed = false;
  std::size_t offset = 0;  // bytes of the stream fed so far
  for (std::size_t turn = 0; offset < stream.size() && !closed; ++turn) {
    const std::size_t chunk_size = std::min(header.chunk_sizes[turn % 4], stream.size() - offset);
    const std::string_view chunk = stream.substr(offset, chunk_size);
    offset += chunk_size;

    const std::size_t scanned = pending.size();  // the carry: seen before, holds no '\n'
    pending.append(chunk);
    const std::string_view input = pending;
    // The carry is bounded after every call, so the core never sees more than this at once.
    require(input.size() <= protocol.max_carry() + chunk.size());
    const std::size_t replies_before = sink.replies;
    const std::size_t requests_before = sink.requests.size();
    const std::size_t output_before = sink.output.size();
    const iomux::ConsumeResult r = protocol.consume(input, scanned, sink);

    require(r.consumed <= input.size());
    require(r.requests == sink.requests.size() - requests_before);
    require(sink.replies - replies_before == r.requests + (r.close ? 1 : 0));
    if (input.empty()) require(r.consumed == 0 && r.requests == 0 && !r.close);

    if (header.cross_check_scanned) {
      // `scanned` only saves work: from scratch, the core must say exactly the same.
      RecordingSink again;
      const iomux::ConsumeResult r0 = protocol.consume(input, 0, again);
      require(r0.consumed == r.consumed && r0.requests == r.requests && r0.close == r.close);
      require(again.output == std::string_view(sink.output).substr(output_before));
    }

    switch (mode) {
      case iomux::ProtocolMode::ack:
        // One reply per non-empty chunk: the reply text, nothing kept.
        require(r.consumed == input.size() && !r.close);
        require(r.requests == (input.empty() ? 0u : 1u));
        require(sink.output.size() - output_before ==
                (input.empty() ? 0 : header.config.reply.size()));
        break;
      case iomux::ProtocolMode::echo:
        require(r.consumed == input.size() && !r.close);
        require(r.requests == (input.empty() ? 0u : 1u));
        break;
      case iomux::ProtocolMode::line:
        // What is kept is an unfinished line: it starts after a '\n' and holds none.
        if (!r.close) {
          require(r.consumed == 0 || input[r.consumed - 1] == '\n');
          require(input.find('\n', r.consumed) == std::string_view::npos);
        }
        break;
    }

    requests += r.requests;
    closed = r.close;
    if (closed) {
      require(r.consumed == input.size());
      pending.clear();
    } else {
      pending.erase(0, r.consumed);
      require(pending.size() <= protocol.max_carry());
    }
  }
  // After close nothing more is fed; otherwise all of it was, and only a carry is left.
  require(closed || offset == stream.size());
  const std::string_view fed = stream.substr(0, offset);

  switch (mode) {
    case iomux::ProtocolMode::ack: {
      std::string want;
      for (std::size_t i = 0; i < requests; ++i) want += header.config.reply;
      require(sink.output == want);
      require(pending.empty());
      break;
    }
    case iomux::ProtocolMode::echo:
      require(sink.output == fed);
      require(pending.empty());
      break;
    case iomux::ProtocolMode::line: {
      // The reference sees everything at once; the core saw it in chunks. A close must come
      // at the same request and, since the core stops being fed there, the reference's answer
      // over the whole stream must match the core's over the prefix it was given.
      const Expected want = reference_line_mode(stream, header.config);
      require(closed == want.close);
      require(requests == want.requests.size());
      require(sink.requests == want.requests);
      require(sink.output == want.output);
      break;
    }
  }
  return 0;
}
