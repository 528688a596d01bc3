// Building RESP bytes in the resp core's tests.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocols/resp/reply_queue.hpp"

namespace iomux::resp::test_text {

// Concatenation by appending: GCC 12 at -O3 warns wrongly (-Wrestrict, bug 105329) about
// `"literal" + std::string(...)`, which the project's Release build would show.
inline std::string cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view part : parts) out.append(part);
  return out;
}

// A multibulk request of `args`, as redis-cli sends it.
inline std::string multibulk(const std::vector<std::string>& args) {
  std::string out = cat({"*", std::to_string(args.size()), "\r\n"});
  for (const std::string& arg : args) out += cat({"$", std::to_string(arg.size()), "\r\n", arg, "\r\n"});
  return out;
}

// Takes at most `max` bytes of what `queue` holds, appended to `out` as a connection would
// send them; returns how many references (not copies) were among them.
inline std::size_t take(ReplyQueue& queue, std::string& out, std::size_t max = SIZE_MAX) {
  struct Sink {
    std::string& out;
    std::size_t shared = 0;
    void copy(std::string_view bytes) { out.append(bytes); }
    void share(std::shared_ptr<const void> owner, std::string_view bytes) {
      if (owner) ++shared;
      out.append(bytes);
    }
    void own(std::string&& bytes) { out.append(bytes); }
  } sink{out};
  queue.take(sink, max);
  return sink.shared;
}

// Everything `queue` holds (no producer runs).
inline std::string take_all(ReplyQueue& queue) {
  std::string out;
  take(queue, out);
  return out;
}

}  // namespace iomux::resp::test_text
