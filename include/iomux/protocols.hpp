// The built-in protocols, each a Handler written on the public API only (src/protocols/):
//
//   ack   the tutorial's behaviour: every chunk read from the socket is one request, answered
//         with the reply text (no terminator). Chunk boundaries are whatever recv() returned.
//   line  every '\n'-terminated line (a trailing '\r' stripped) is one request, answered with
//         the reply text + "\r\n"; pipelined lines are answered in order. A line longer than
//         max_line is answered with an error line, and the connection is closed after it.
//   echo  every chunk comes back unchanged.
//
// Every request is logged at debug level (`iomux serve -v`), escaped.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "iomux/handler.hpp"

namespace iomux {

inline constexpr std::string_view kDefaultReply = "----ok----Request accepted";
inline constexpr std::size_t kDefaultMaxLine = 64 * 1024;

HandlerFactory ack_protocol(std::string reply = std::string(kDefaultReply));
HandlerFactory line_protocol(std::string reply = std::string(kDefaultReply), std::size_t max_line = kDefaultMaxLine);
HandlerFactory echo_protocol();

}  // namespace iomux
