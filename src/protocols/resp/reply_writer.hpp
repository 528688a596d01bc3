// Appends RESP2 replies to a connection's ReplyQueue. Every reply is a few appends of bytes
// already at hand: integers are formatted on the stack (std::to_chars), never through fmt or a
// stream, because a reply is written per command and the formatter would cost more than the
// command. Long values are referenced, not copied (shared()), and a reply that could outgrow
// the room left for this call is finished later by a producer (later()).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "protocols/resp/integer_text.hpp"
#include "protocols/resp/reply_queue.hpp"

namespace iomux::resp {

class ReplyWriter {
 public:
  // Values at least this long are referenced rather than copied: a copy costs more than the
  // reference from about here (and the send batch stages copies 16 KiB at a time).
  static constexpr std::size_t kReferenceFrom = 16 * 1024;

  // `limit`: what the queue may hold after this call's replies before the session stops
  // taking commands; room() is measured against it.
  ReplyWriter(ReplyQueue& queue, std::size_t limit) noexcept : queue_(queue), out_(queue.text()), limit_(limit) {}

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
  // A bulk reply whose bytes `owner` keeps alive and unchanged: sent without a copy.
  void shared_bulk(std::shared_ptr<const void> owner, std::string_view bytes) {
    number_line('$', static_cast<std::int64_t>(bytes.size()));
    queue_.reference(std::move(owner), bytes);
    out_.append("\r\n", 2);
  }
  void null_bulk() { out_.append("$-1\r\n", 5); }
  void null_array() { out_.append("*-1\r\n", 5); }
  // Announces `count` elements; the caller writes them next.
  void array(std::size_t count) { number_line('*', static_cast<std::int64_t>(count)); }
  void ok() { out_.append("+OK\r\n", 5); }
  // Bytes the replies of this call may still add before the limit (0 past it).
  [[nodiscard]] std::size_t room() const noexcept {
    const std::size_t queued = queue_.size();
    return queued < limit_ ? limit_ - queued : 0;
  }
  // The rest of this reply is `producer`'s: the last thing a command writes.
  void later(std::unique_ptr<ReplyProducer> producer) noexcept { queue_.produce_later(std::move(producer)); }

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

  ReplyQueue& queue_;
  std::string& out_;
  std::size_t limit_;
};

}  // namespace iomux::resp
