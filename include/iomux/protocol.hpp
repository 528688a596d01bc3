// The protocol core: bytes in, replies out. Shared by every IO model, which differ only in
// how bytes reach it and how its replies reach the socket. It performs no IO and keeps no
// per-connection state: a connection keeps the bytes the core did not consume (an unfinished
// line) and presents them again with the next bytes appended.
//
// Modes:
//   ack   the tutorial's behaviour: every chunk read from the socket is one request, answered
//         with the reply text (no terminator). Chunk boundaries are whatever recv() returned.
//   line  every '\n'-terminated line (a trailing '\r' stripped) is one request, answered with
//         the reply text + "\r\n"; pipelined lines are answered in order. A line longer than
//         max_line is answered with an error line and the connection is to be closed.
//   echo  every chunk comes back unchanged.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace iomux {

enum class ProtocolMode { ack, line, echo };

std::optional<ProtocolMode> parse_protocol_mode(std::string_view name);
std::string_view to_string(ProtocolMode mode);

inline constexpr std::string_view kDefaultReply = "----ok----Request accepted";
inline constexpr std::size_t kDefaultMaxLine = 64 * 1024;

struct ProtocolConfig {
  ProtocolMode mode = ProtocolMode::ack;
  std::string reply{kDefaultReply};
  std::size_t max_line = kDefaultMaxLine;  // line mode: longest accepted line, without "\r\n"
};

// Where the core puts its output. Views passed to reply() point into the input given to
// Protocol::consume() or into the Protocol itself; they are valid until consume() returns
// and the caller's input buffer changes, so a sink either sends them at once or copies them.
class ReplySink {
 public:
  virtual ~ReplySink() = default;
  virtual void reply(std::string_view bytes) = 0;
  // Called once per request before its reply (for -v logging); ignored by default.
  virtual void on_request(std::string_view /*request*/) {}
};

struct ConsumeResult {
  std::size_t consumed = 0;   // bytes of input used up; the rest must be presented again
  std::size_t requests = 0;   // requests answered
  bool close = false;         // a protocol error was answered: flush the replies, then close
};

class Protocol {
 public:
  explicit Protocol(ProtocolConfig config);

  // Processes `input` (all unconsumed bytes of one connection, oldest first). `scanned` is how
  // many leading bytes of input were already seen by an earlier call and hold no request
  // boundary; passing it keeps a line that trickles in byte by byte O(n) instead of O(n^2).
  ConsumeResult consume(std::string_view input, std::size_t scanned, ReplySink& sink) const;

  [[nodiscard]] const ProtocolConfig& config() const noexcept { return config_; }
  // The most unconsumed bytes a connection may need to keep between calls.
  [[nodiscard]] std::size_t max_carry() const noexcept;

 private:
  ProtocolConfig config_;
  std::string line_reply_;      // reply + "\r\n"
  std::string line_too_long_;   // the error line for an over-long line
};

}  // namespace iomux
