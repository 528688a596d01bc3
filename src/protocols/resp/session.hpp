// One client connection's side of the protocol: bytes in, replies out, no IO. A server model
// owns one Session per connection and calls process() with the connection's unconsumed bytes
// whenever more arrive; it sends what process() put in its ReplyQueue (copies, references to
// long values, a producer for the rest of a long reply), and closes the connection when told
// to (after sending).
//
//   bytes ──> Session::process ──> RequestParser::next ──> execute_command ──> Keyspace
//                     │                                         │
//                     └───────── out (ReplyQueue, in order) <───┘
//
// Thread rule: a Session is used by one thread at a time (its connection's); many Sessions on
// many threads share one Keyspace and one ServerInfo.
#pragma once

#include <atomic>
#include <cstddef>
#include <string>
#include <string_view>

#include "protocols/resp/commands.hpp"
#include "protocols/resp/reply_queue.hpp"
#include "protocols/resp/request_parser.hpp"

namespace iomux::resp {

class Keyspace;
class ServerInfo;

struct SessionOptions {
  Limits limits;
  // process() stops taking commands once `out` holds this many bytes, so that a pipeline of
  // large replies (a read's worth of GETs of big values) cannot grow the output without bound:
  // the caller sends, then calls again. A single reply may exceed it only by references to
  // values the keyspace holds and small copies (MGET's); a long list reply is made a part at a
  // time (ReplyProducer). A caller takes about this much per call (ReplyQueue::take).
  std::size_t max_output = 1024 * 1024;
};

class Session {
 public:
  struct Result {
    std::size_t consumed = 0;  // bytes of input used up; present the rest again next time
    std::size_t commands = 0;  // commands executed (each appended its reply)
    // QUIT or a protocol error (its error reply is already in `out`): send `out`, then close.
    // The whole input counts as consumed.
    bool close = false;
    // Stopped because `out` reached max_output or holds a reply still being made: complete
    // commands may remain in the unconsumed bytes. Call process() again, with them (or with
    // none), once `out` has been sent.
    bool output_full = false;
  };

  Session(Keyspace& keyspace, ServerInfo& server, SessionOptions options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Goes on with a reply still being made in `out`, then parses every complete command in
  // `input` (all unconsumed bytes of the connection, oldest first: what the previous call did
  // not consume, with new bytes appended), executes them in order against the keyspace and
  // appends their replies to `out`, until `out` holds max_output bytes. After a close, every
  // call consumes everything and does nothing.
  Result process(std::string_view input, ReplyQueue& out);

  // The most unconsumed bytes the caller may have to keep: more would have been refused with
  // a protocol error. A caller may bound its input buffer by it.
  [[nodiscard]] std::size_t max_kept_input() const noexcept { return parser_.max_kept_input(); }
  [[nodiscard]] bool closed() const noexcept { return closed_; }
  [[nodiscard]] const ClientState& client() const noexcept { return client_; }
  // After a protocol error: the error line ("-ERR Protocol error: ...\r\n") that ended it.
  [[nodiscard]] std::string_view error_reply() const noexcept { return parser_.error_reply(); }
  // Heap bytes held between calls (the parser's tables, the client's name), as of the end of
  // the last process().
  [[nodiscard]] std::size_t held() const noexcept { return held_; }

 private:
  Keyspace& keyspace_;
  ServerInfo& server_;
  const SessionOptions options_;
  RequestParser parser_;
  ClientState client_;
  std::size_t held_ = 0;
  bool closed_ = false;
  std::atomic<bool> busy_{false};  // in process(): checked in debug builds only
};

}  // namespace iomux::resp
