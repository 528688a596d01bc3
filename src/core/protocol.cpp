#include "iomux/protocol.hpp"

#include <cstring>

namespace iomux {

std::optional<ProtocolMode> parse_protocol_mode(std::string_view name) {
  if (name == "ack") return ProtocolMode::ack;
  if (name == "line") return ProtocolMode::line;
  if (name == "echo") return ProtocolMode::echo;
  return std::nullopt;
}

std::string_view to_string(ProtocolMode mode) {
  switch (mode) {
    case ProtocolMode::ack: return "ack";
    case ProtocolMode::line: return "line";
    case ProtocolMode::echo: return "echo";
  }
  return "?";
}

Protocol::Protocol(ProtocolConfig config)
    : config_(std::move(config)),
      line_reply_(config_.reply + "\r\n"),
      line_too_long_("ERROR line too long (max " + std::to_string(config_.max_line) +
                     " bytes)\r\n") {}

std::size_t Protocol::max_carry() const noexcept {
  // An unfinished line may be kept whole, plus its '\r'; ack and echo keep nothing.
  return config_.mode == ProtocolMode::line ? config_.max_line + 1 : 0;
}

ConsumeResult Protocol::consume(std::string_view input, std::size_t scanned,
                                ReplySink& sink) const {
  ConsumeResult result;
  if (input.empty()) return result;
  switch (config_.mode) {
    case ProtocolMode::ack:
      sink.on_request(input);
      sink.reply(config_.reply);
      return {input.size(), 1, false};
    case ProtocolMode::echo:
      sink.on_request(input);
      sink.reply(input);
      return {input.size(), 1, false};
    case ProtocolMode::line:
      break;
  }

  std::size_t line_start = 0;
  std::size_t search_from = scanned < input.size() ? scanned : input.size();
  while (search_from < input.size()) {
    const void* hit = std::memchr(input.data() + search_from, '\n', input.size() - search_from);
    if (!hit) break;
    auto newline = static_cast<std::size_t>(static_cast<const char*>(hit) - input.data());
    std::string_view line = input.substr(line_start, newline - line_start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > config_.max_line) {
      sink.reply(line_too_long_);
      return {input.size(), result.requests, true};
    }
    sink.on_request(line);
    sink.reply(line_reply_);
    ++result.requests;
    line_start = search_from = newline + 1;
  }
  // What is left is an unfinished line. Refuse it as soon as it cannot fit, rather than
  // buffering an unbounded amount waiting for a '\n' that may never come. (+1: its '\r'.)
  if (input.size() - line_start > config_.max_line + 1) {
    sink.reply(line_too_long_);
    return {input.size(), result.requests, true};
  }
  result.consumed = line_start;
  return result;
}

}  // namespace iomux
