#include "protocols/resp/session.hpp"

#include <cassert>

#include "protocols/resp/server_info.hpp"

namespace iomux::resp {
namespace {

// Debug builds check a Session's thread rule: one process() at a time, so two threads (or a
// command calling back in) using it at once trip the assert.
class ExclusiveUse {
 public:
  explicit ExclusiveUse(std::atomic<bool>& busy) : busy_(busy) {
    [[maybe_unused]] const bool was_busy = busy_.exchange(true);
    assert(!was_busy && "a Session is used by one thread at a time");
  }
  ~ExclusiveUse() { busy_.store(false); }
  ExclusiveUse(const ExclusiveUse&) = delete;
  ExclusiveUse& operator=(const ExclusiveUse&) = delete;

 private:
  std::atomic<bool>& busy_;
};

}  // namespace

Session::Session(Keyspace& keyspace, ServerInfo& server, SessionOptions options)
    : keyspace_(keyspace), server_(server), options_(options), parser_(options.limits) {
  client_.id = server_.connect();
}

Session::~Session() {
  server_.disconnect();
}

Session::Result Session::process(std::string_view input, ReplyQueue& out) {
#ifndef NDEBUG
  const ExclusiveUse exclusive(busy_);
#endif
  Result result;
  if (closed_) {
    result.consumed = input.size();
    result.close = true;
    return result;
  }
  CommandContext context{keyspace_, server_, client_, options_.limits, ReplyWriter(out, options_.max_output)};
  for (;;) {
    if (!out.text_only()) [[unlikely]] {
      // A reply still being made comes first; no command runs until it is complete.
      if (out.has_producer()) out.produce(options_.max_output);
      if (out.has_producer() || out.size() >= options_.max_output) {
        result.output_full = true;
        break;
      }
    } else if (out.text().size() >= options_.max_output) [[unlikely]] {
      result.output_full = true;
      break;
    }
    const RequestParser::Step step = parser_.next(input.substr(result.consumed));
    result.consumed += step.used;
    if (step.status == RequestParser::Status::incomplete) break;
    if (step.status == RequestParser::Status::error) {
      out.text().append(parser_.error_reply());
      closed_ = true;
      break;
    }
    execute_command(context, parser_.args());
    ++result.commands;
    ++client_.unreported_commands;
    if (client_.close_after_reply) {  // QUIT: what follows it is not executed, as in Redis
      closed_ = true;
      break;
    }
  }
  if (closed_) {
    result.consumed = input.size();
    result.close = true;
  }
  server_.count_commands(client_.unreported_commands);
  client_.unreported_commands = 0;
  // A client name is allocated to its size (set_client_name), and a std::string's small-string
  // capacity (15) is inside the object.
  held_ = parser_.release_memory() + (client_.name.size() > 15 ? client_.name.size() + 1 : 0);
  return result;
}

}  // namespace iomux::resp
