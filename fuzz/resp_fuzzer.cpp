// libFuzzer target for the RESP core (src/protocols/resp/): parser, commands, keyspace, reply
// queue and Session together, driven the way the handler drives a Session.
//
// Bytes arrive in chunks; each call to Session::process() sees the bytes the previous calls did
// not consume with the new chunk appended. After each call the "connection" takes at most
// max_output bytes of the reply queue (ReplyQueue::take), and calls again, with no new bytes,
// while the session reports its output full or the queue still holds something (the rest of a
// long reply). The input is a small header that picks the limits and the chunking, then the
// stream of requests:
//
//   byte 0      bits 0-1  limits: Redis-like defaults (0, 1), small (2), tiny (3), so that the
//                         fuzzer reaches every limit
//               bit 2     a small maxmemory (4 KiB), so that -OOM answers are reached
//               bits 3-4  max_output: 1 MiB, 1, 64 or 1024 bytes (pauses after each command,
//                         long replies made and taken in parts...)
//   bytes 1-4   four chunk sizes, used in turn; 0 feeds an empty chunk (a spurious wake-up)
//   bytes 5..   the stream
//
// Properties, each checked with __builtin_trap() so that a violation is a crash libFuzzer keeps:
//   * process() never consumes more than it was given, consumes everything when it closes,
//     and leaves at most max_kept_input() bytes unconsumed when it asks for more;
//   * the replies are well-formed RESP2, one per command, plus one for a protocol error;
//   * where the stream was cut changes nothing, and neither does the output bound: the replies
//     (but INFO's used_memory, which counts what replies still hold), the commands run and whether
//     the connection closes are those of the whole stream processed at once, and those of the
//     whole stream processed one command per call (max_output 1), each run on a keyspace of its
//     own with a clock that ticks per reading, so TTLs do expire along the way. One exception,
//     under the small maxmemory: a value a reply still holds stays counted until the reply is sent
//     (as a Redis client's output buffer counts toward maxmemory), and how much output is still
//     owed when a later write runs depends on the cut and the bound, so whether it gets -OOM does
//     too. Once any run answered -OOM, the runs must still run the same commands and close alike,
//     each with well-formed replies, one per command, but their bytes may differ;
//   * the keyspace's memory count is exact: after every command (the one-per-call run) it
//     equals a recount from scratch (Keyspace::recount()), and once every reply is out and the
//     keyspace flushed it is 0 (no orphan is left counted);
//   * the queue holds little once taken: nothing after a close, and at most one reply's
//     references and max_output bytes of text between calls;
//   * requests survive a round trip: every request the parser reads, written again as a
//     multibulk request and parsed by a fresh parser, gives the same arguments;
//   * and, through ASan/UBSan, nothing reads out of bounds or overflows.
// The keyspace's expiry thread is off: it would make the runs differ.
//
//   build: clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I src -I tests \
//            fuzz/resp_fuzzer.cpp src/protocols/resp/*.cpp -o /tmp/resp_fuzzer
//   run:   /tmp/resp_fuzzer -max_len=4096 CORPUS_DIR fuzz/corpus/resp
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/resp/integer_text.hpp"
#include "protocols/resp/keyspace.hpp"
#include "protocols/resp/reply_queue.hpp"
#include "protocols/resp/request_parser.hpp"
#include "protocols/resp/server_info.hpp"
#include "protocols/resp/session.hpp"

namespace {

using namespace iomux::resp;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

struct Header {
  SessionOptions session;
  std::size_t max_memory = 0;
  std::size_t chunk_sizes[4] = {};
};

constexpr std::size_t kHeaderSize = 5;
// What a write refused past maxmemory answers (command_handlers.hpp's kOomError, as sent).
constexpr std::string_view kOomReply = "-OOM command not allowed";

Header read_header(const std::uint8_t* data) {
  Header h;
  switch (data[0] & 3) {
    case 2:
      h.session.limits = {.max_inline = 64, .max_args = 8, .max_bulk = 32, .max_request = 128};
      break;
    case 3:
      h.session.limits = {.max_inline = 4, .max_args = 2, .max_bulk = 3, .max_request = 16};
      break;
    default:
      break;
  }
  if (data[0] & 4) h.max_memory = 4096;
  constexpr std::size_t kMaxOutputs[4] = {1024 * 1024, 1, 64, 1024};
  h.session.max_output = kMaxOutputs[(data[0] >> 3) & 3];
  bool all_empty = true;
  for (int i = 0; i < 4; ++i) {
    h.chunk_sizes[i] = data[1 + i];
    all_empty = all_empty && h.chunk_sizes[i] == 0;
  }
  if (all_empty) h.chunk_sizes[0] = 1;  // always make progress
  return h;
}

// A clock that moves one millisecond each time it is read. Both runs execute the same
// commands in the same order, so they read it alike, and TTLs set by the stream do expire.
std::function<std::chrono::milliseconds()> ticking_clock() {
  return [ms = std::make_shared<std::int64_t>(1'000'000)] { return std::chrono::milliseconds(++*ms); };
}

// The connection's side of ReplyQueue::take: what it would send.
struct Sent {
  std::string bytes;
  void copy(std::string_view part) { bytes.append(part); }
  void share(std::shared_ptr<const void> owner, std::string_view part) {
    require(owner != nullptr);
    bytes.append(part);
  }
  void own(std::string&& part) { bytes.append(part); }
};

// One server side of a connection: its keyspace, its session, what it has sent.
struct Server {
  Server(const Header& header, SessionOptions options, bool recount_each_call = false)
      : keyspace(KeyspaceOptions{header.max_memory, /*active_expiry=*/false, ticking_clock()}),
        info(ticking_clock()),
        session(keyspace, info, options),
        max_output(options.max_output),
        recount_each_call(recount_each_call) {}

  // Presents `chunk` after the unconsumed bytes, as a connection does. False once closed.
  bool feed(std::string_view chunk) {
    pending.append(chunk);
    for (;;) {
      const Session::Result result = session.process(pending, queue);
      require(result.consumed <= pending.size());
      require(!(result.close && result.output_full));
      commands += result.commands;
      if (recount_each_call) require(keyspace.used_memory() == keyspace.recount());
      if (result.close) {
        require(result.consumed == pending.size());
        require(!queue.has_producer());  // a close comes between commands
        queue.take(sent, SIZE_MAX);
        require(queue.empty() && queue.held() < 64 * 1024);
        pending.clear();
        closed = true;
        return false;
      }
      pending.erase(0, result.consumed);
      const std::size_t before = sent.bytes.size();
      queue.take(sent, max_output);
      require(sent.bytes.size() - before <= max_output);
      if (!result.output_full && queue.empty()) {
        // Asking for more: what is kept is one unfinished request, within the bound.
        require(pending.size() <= session.max_kept_input());
        return true;
      }
      // Called again with no new bytes: the rest of the output, and the commands it held up.
    }
  }

  // Everything sent: the keyspace flushed must count nothing, no orphan left behind.
  void finish() {
    require(queue.empty());
    keyspace.flush();
    keyspace.sweep_orphans();
    require(keyspace.used_memory() == 0 && keyspace.recount() == 0);
  }

  Keyspace keyspace;
  ServerInfo info;
  Session session;
  ReplyQueue queue;
  Sent sent;
  std::string pending;
  std::size_t commands = 0;
  std::size_t max_output;
  bool recount_each_call;
  bool closed = false;
};

// Every request the parser reads in `stream`, written again as multibulk and read by a fresh
// parser, must give the same arguments.
void check_round_trip(const Limits& limits, std::string_view stream) {
  RequestParser parser(limits);
  std::size_t offset = 0;
  for (int requests = 0; requests < 64; ++requests) {
    const RequestParser::Step step = parser.next(stream.substr(offset));
    if (step.status != RequestParser::Status::request) return;
    offset += step.used;
    const std::vector<std::string> args(parser.args().begin(), parser.args().end());
    std::string again = "*" + std::to_string(args.size()) + "\r\n";
    for (const std::string& arg : args) again += "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n";
    // Within the limits the first parse allowed, as far as the request's form allows: an inline
    // request is bounded by max_inline only (its words by the line, not by max_args or
    // max_bulk), and multibulk framing is longer than inline's.
    Limits roomy = limits;
    roomy.max_request = std::max(limits.max_request, again.size());
    roomy.max_args = std::max(limits.max_args, args.size());
    for (const std::string& arg : args) roomy.max_bulk = std::max(roomy.max_bulk, arg.size());
    RequestParser reparser(roomy);
    const RequestParser::Step replay = reparser.next(again);
    require(replay.status == RequestParser::Status::request && replay.used == again.size());
    require(reparser.args().size() == args.size());
    for (std::size_t i = 0; i < args.size(); ++i) require(reparser.args()[i] == args[i]);
  }
}

// Reads one RESP2 reply at `pos`; false if it is malformed or cut short.
bool read_reply(std::string_view bytes, std::size_t& pos, int depth = 0) {
  if (depth > 8 || pos >= bytes.size()) return false;
  const char type = bytes[pos];
  const std::size_t line_end = bytes.find("\r\n", pos);
  if (line_end == std::string_view::npos) return false;
  const std::string_view line = bytes.substr(pos + 1, line_end - pos - 1);
  if (line.find_first_of("\r\n") != std::string_view::npos) return false;
  pos = line_end + 2;
  switch (type) {
    case '+':
    case '-':
      return true;
    case ':':
      return parse_integer(line).has_value();
    case '$': {
      const std::optional<std::int64_t> length = parse_integer(line);
      if (!length || *length < -1) return false;
      if (*length == -1) return true;
      const auto size = static_cast<std::size_t>(*length);
      if (bytes.size() - pos < size + 2 || bytes.substr(pos + size, 2) != "\r\n") return false;
      pos += size + 2;
      return true;
    }
    case '*': {
      const std::optional<std::int64_t> count = parse_integer(line);
      if (!count || *count < -1) return false;
      for (std::int64_t i = 0; i < *count; ++i)
        if (!read_reply(bytes, pos, depth + 1)) return false;
      return true;
    }
    default:
      return false;
  }
}

// The replies with INFO's memory figures masked. used_memory counts values that replies still
// hold until they are sent (see the -OOM exception above), so it depends on where the stream was
// cut and on the output bound, as Redis's counts its clients' output buffers; everything else
// INFO says must be alike.
std::string without_memory_figures(std::string_view bytes) {
  std::string out;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    const std::size_t start = pos;
    require(read_reply(bytes, pos));
    std::string_view reply = bytes.substr(start, pos - start);
    if (reply.empty() || reply[0] != '$' || reply.find("\r\nused_memory:") == std::string_view::npos) {
      out.append(reply);
      continue;
    }
    const std::size_t body = reply.find("\r\n") + 2;
    std::string text(reply.substr(body, reply.size() - body - 2));
    for (std::string_view field : {"used_memory:", "used_memory_human:"}) {
      const std::size_t at = text.find("\r\n" + std::string(field));
      if (at == std::string::npos) continue;
      const std::size_t value = at + 2 + field.size();
      text.replace(value, text.find("\r\n", value) - value, "N");
    }
    out += "$" + std::to_string(text.size()) + "\r\n" + text + "\r\n";
  }
  return out;
}

std::size_t count_replies(std::string_view bytes) {
  std::size_t pos = 0;
  std::size_t replies = 0;
  while (pos < bytes.size()) {
    require(read_reply(bytes, pos));
    ++replies;
  }
  return replies;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < kHeaderSize) return 0;
  const Header header = read_header(data);
  const std::string_view stream(reinterpret_cast<const char*>(data) + kHeaderSize, size - kHeaderSize);

  Server chunked(header, header.session);
  std::size_t offset = 0;
  for (std::size_t turn = 0; offset < stream.size(); ++turn) {
    const std::size_t chunk_size = std::min(header.chunk_sizes[turn % 4], stream.size() - offset);
    const std::string_view chunk = stream.substr(offset, chunk_size);
    offset += chunk_size;
    if (!chunked.feed(chunk)) break;
  }

  Server whole(header, header.session);
  whole.feed(stream);

  SessionOptions one_per_call = header.session;
  one_per_call.max_output = 1;
  Server stepped(header, one_per_call, /*recount_each_call=*/true);
  stepped.feed(stream);

  const auto refused_for_memory = [](const Server& s) { return s.sent.bytes.find(kOomReply) != std::string::npos; };
  const bool any_oom = header.max_memory != 0 &&
                       (refused_for_memory(chunked) || refused_for_memory(whole) || refused_for_memory(stepped));
  for (const Server* other : {&whole, &stepped}) {
    if (!any_oom) require(without_memory_figures(chunked.sent.bytes) == without_memory_figures(other->sent.bytes));
    require(chunked.commands == other->commands);
    require(chunked.closed == other->closed);
  }
  for (const Server* server : {&chunked, &whole, &stepped}) {
    // A protocol error closes with one reply that no command made; QUIT's +OK is a command's.
    const bool protocol_error = server->closed && !server->session.client().close_after_reply;
    require(count_replies(server->sent.bytes) == server->commands + (protocol_error ? 1 : 0));
  }
  for (Server* server : {&chunked, &whole, &stepped}) server->finish();

  check_round_trip(header.session.limits, stream);
  return 0;
}
