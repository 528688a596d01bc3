// The RESP protocol (resp.hpp) as a Handler on the public API: a resp::Session per connection
// over the shared Keyspace (src/protocols/resp/). The session's replies for one call are
// gathered in a string of the handler's and written once: one copy into the send batch, one
// send. A pipeline whose replies outgrow the session's output bound (GETs of large values)
// is answered a part at a time: the handler waits for its output to drain, then is called
// again with the rest.
#include <memory>
#include <string>

#include "iomux/resp.hpp"
#include "protocols/gathered_replies.hpp"
#include "protocols/resp/keyspace.hpp"
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

class RespHandler final : public Handler {
 public:
  explicit RespHandler(RespShared& shared) : session_(shared.keyspace, shared.info, shared.session_options) {}

  void on_open(Connection& conn) override {
    conn.set_max_input(session_.max_kept_input());
    log_ = &conn.log();
  }

  std::size_t on_data(std::span<const char> in, Connection& conn) override {
    const resp::Session::Result r = session_.process(std::string_view(in.data(), in.size()), out_);
    if (log_->enabled(LogLevel::debug) && r.consumed > 0)  // iomux serve -v
      log_->debug("requests from {}: \"{}\"", conn.peer().to_string(), escape_bytes({in.data(), r.consumed}));
    conn.count_requests(r.commands);
    std::string why;
    if (r.close) why = session_.client().close_after_reply ? "QUIT" : protocol_error(conn);
    write_gathered(conn, out_);
    if (r.close)
      conn.close_after_flush(why);
    else if (r.output_full)
      conn.wait_for_drain();  // called again with the rest once it is sent
    return r.consumed;
  }

 private:
  // The error reply the session ended with ("-ERR Protocol error: ...\r\n", the last one
  // in out_), logged as the reason, escaped.
  std::string protocol_error(Connection& conn) const {
    const std::size_t at = out_.rfind("-ERR ");
    std::string_view text =
        at == std::string::npos ? std::string_view("protocol error") : std::string_view(out_).substr(at + 5);
    if (text.ends_with("\r\n")) text.remove_suffix(2);
    std::string why = escape_bytes(text, 200);
    conn.log().warn("closing connection from {}: {}", conn.peer().to_string(), why);
    return why;
  }

  resp::Session session_;
  std::string out_;
  Logger* log_ = nullptr;
};

}  // namespace

HandlerFactory resp_protocol(RespOptions options) {
  auto shared = std::make_shared<RespShared>(options);
  return [shared] { return std::make_unique<RespHandler>(*shared); };
}

}  // namespace iomux
