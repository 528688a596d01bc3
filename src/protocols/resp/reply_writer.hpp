// Appends RESP2 replies to a connection's output string. Every reply is a few appends of bytes
// already at hand: integers are formatted on the stack (std::to_chars), never through fmt or a
// stream, because a reply is written per command and the formatter would cost more than the
// command.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocols/resp/integer_text.hpp"

namespace iomux::resp {

class ReplyWriter {
 public:
  explicit ReplyWriter(std::string& out) noexcept : out_(out) {}

  // +OK, +PONG: `text` must hold no '\r' or '\n'.
  void simple(std::string_view text) { line('+', text); }
  // An error line, given whole as Redis words it, e.g. "ERR syntax error" or "WRONGTYPE ...".
  void error(std::string_view text) { line('-', text); }
  void integer(std::int64_t value) { number_line(':', value); }
  void bulk(std::string_view bytes) {
    number_line('$', static_cast<std::int64_t>(bytes.size()));
    out_.append(bytes);
    out_.append("\r\n", 2);
  }
  void null_bulk() { out_.append("$-1\r\n", 5); }
  void null_array() { out_.append("*-1\r\n", 5); }
  // Announces `count` elements; the caller writes them next.
  void array(std::size_t count) { number_line('*', static_cast<std::int64_t>(count)); }
  void ok() { out_.append("+OK\r\n", 5); }

  std::string& out() noexcept { return out_; }

 private:
  void line(char type, std::string_view text) {
    out_.push_back(type);
    out_.append(text);
    out_.append("\r\n", 2);
  }
  void number_line(char type, std::int64_t value) {
    char buffer[kMaxIntegerText + 3];
    buffer[0] = type;
    std::string_view digits = format_integer(value, buffer + 1);
    char* end = buffer + 1 + digits.size();
    end[0] = '\r';
    end[1] = '\n';
    out_.append(buffer, digits.size() + 3);
  }

  std::string& out_;
};

}  // namespace iomux::resp
