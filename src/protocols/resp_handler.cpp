// The RESP protocol (resp.hpp) as a Handler on the public API: a resp::Session per connection
// over the shared Keyspace (src/protocols/resp/). The session's replies go into a ReplyQueue of
// the handler's (copies, references to long values, the producer of a long list reply), and
// each call hands the connection at most max_output bytes of it: short replies as one copy
// into the send batch, long values by reference, without a copy. What is left (the rest of a
// long reply, or of a pipeline of them) goes out a part at a time: the handler waits for its
// output to drain, then takes the next part, and reads no new commands meanwhile. So one small
// request never makes the connection hold more than about max_output, and a client that reads
// gets every byte.
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "iomux/resp.hpp"
#include "protocols/resp/keyspace.hpp"
#include "protocols/resp/reply_queue.hpp"
#include "protocols/resp/server_info.hpp"
#include "protocols/resp/session.hpp"

namespace iomux {
namespace {

// What every connection of one server shares.
struct RespShared {
  explicit RespShared(const RespOptions& o)
      : keyspace(resp::KeyspaceOptions{o.max_memory, o.active_expiry, {}}),
        session_options{resp::Limits{o.max_inline, o.max_args, o.max_bulk, o.max_request}, 1024 * 1024} {}
  resp::Keyspace keyspace;
  resp::ServerInfo info;
  resp::SessionOptions session_options;
};

// ReplyQueue::take's sink: the queue's parts as Connection writes.
struct ConnectionSink {
  Connection& conn;
  void copy(std::string_view bytes) { conn.write(bytes); }
  // Sent without a copy; the budget counts one value once per connection, however many times
  // its replies reference it (MGET k k k ...).
  void share(std::shared_ptr<const void> owner, std::string_view bytes) { conn.write(std::move(owner), bytes); }
  void own(std::string&& bytes) { conn.write(std::move(bytes)); }
};

class RespHandler final : public Handler {
 public:
  explicit RespHandler(RespShared& shared)
      : session_(shared.keyspace, shared.info, shared.session_options),
        max_output_(shared.session_options.max_output) {}

  void on_open(Connection& conn) override {
    conn.set_max_input(session_.max_kept_input());
    log_ = &conn.log();
  }

  std::size_t on_data(std::span<const char> in, Connection& conn) override {
    const std::size_t used = serve(std::string_view(in.data(), in.size()), conn);
    if (draining_) [[unlikely]] {
      kept_ = in.size() - used;
      close_if_done(conn);
    }
    return used;
  }

  // The output drained: the next part of what the queue still holds goes out.
  void on_drain(Connection& conn) override {
    if (!queue_.empty() && !session_.closed()) serve({}, conn);
    if (draining_) [[unlikely]]
      close_if_done(conn);
  }

  // Draining: the commands received are answered, the rest of a long reply and the commands
  // kept behind it included (reading stops at once otherwise, and they would be lost), then
  // the connection closes. One with nothing owed or received goes at once.
  bool on_server_drain(Connection& /*conn*/, bool input_waiting) override {
    if (!input_waiting && queue_.empty()) return false;
    draining_ = true;
    kept_ = input_waiting ? 1 : 0;  // unknown until the next on_data(): not done yet
    return true;
  }

 private:
  void close_if_done(Connection& conn) {
    if (queue_.empty() && kept_ == 0 && !session_.closed() && conn.is_open())
      conn.close_after_flush("server shutting down");
  }

  // Inline: on_data's path, the path of every request.
  [[gnu::always_inline]] inline std::size_t serve(std::string_view in, Connection& conn) {
    const resp::Session::Result r = session_.process(in, queue_);
    if (log_->enabled(LogLevel::debug) && r.consumed > 0)  // iomux serve -v
      log_->debug("requests from {}: \"{}\"", conn.peer().to_string(), escape_bytes({in.data(), r.consumed}));
    conn.count_requests(r.commands);
    ConnectionSink sink{conn};
    if (r.close) [[unlikely]] {
      const std::string why = session_.client().close_after_reply ? "QUIT" : protocol_error(conn);
      queue_.take(sink, SIZE_MAX);  // no reply is being made: a close comes only between commands
      conn.close_after_flush(why);
    } else {
      queue_.take(sink, max_output_);
      if (r.output_full || !queue_.empty()) conn.wait_for_drain();  // called again once it is sent
    }
    const std::size_t held = queue_.held() + session_.held();
    if (held != reported_held_) [[unlikely]] {
      reported_held_ = held;
      conn.set_handler_memory(held);
    }
    return r.consumed;
  }

  // The error reply the session ended with ("-ERR Protocol error: ...\r\n"), logged as the
  // reason, escaped.
  std::string protocol_error(Connection& conn) const {
    std::string_view text = session_.error_reply();
    if (text.starts_with("-ERR ")) text.remove_prefix(5);
    if (text.ends_with("\r\n")) text.remove_suffix(2);
    if (text.empty()) text = "protocol error";
    std::string why = escape_bytes(text, 200);
    conn.log().warn("closing connection from {}: {}", conn.peer().to_string(), why);
    return why;
  }

  resp::Session session_;
  resp::ReplyQueue queue_;
  const std::size_t max_output_;
  std::size_t reported_held_ = 0;
  bool draining_ = false;
  std::size_t kept_ = 0;  // input left unconsumed by the last on_data(), while draining
  Logger* log_ = nullptr;
};

}  // namespace

HandlerFactory resp_protocol(RespOptions options) {
  auto shared = std::make_shared<RespShared>(options);
  return [shared] { return std::make_unique<RespHandler>(*shared); };
}

}  // namespace iomux
