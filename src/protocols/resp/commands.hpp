// The command table: one row per command, as Redis defines it (name, arity, flags, key
// positions), dispatched case-insensitively without allocating. Handlers live by family in
// string_commands.cpp, key_commands.cpp, list_commands.cpp, connection_commands.cpp and
// server_commands.cpp; they read their arguments, work on the Keyspace and append one RESP2
// reply each, worded as Redis 7.0 words it.
//
// Thread rule: execute_command() runs on the connection's thread; the only state it shares
// is the Keyspace and the ServerInfo, both thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "protocols/resp/reply_writer.hpp"
#include "protocols/resp/request_parser.hpp"

namespace iomux::resp {

class Keyspace;
class ServerInfo;

// What a connection's commands may read or change about the connection itself.
struct ClientState {
  std::uint64_t id = 0;
  std::string name;                // CLIENT SETNAME
  bool close_after_reply = false;  // QUIT
  // Commands run but not yet added to ServerInfo's total (the session adds them per batch, to
  // keep a shared counter off the per-command path); INFO adds them to what it reports.
  std::uint64_t unreported_commands = 0;
};

// Everything a handler works with.
struct CommandContext {
  Keyspace& keyspace;
  ServerInfo& server;
  ClientState& client;
  const Limits& limits;  // the longest string APPEND may make is limits.max_bulk
  ReplyWriter reply;
};

using Args = std::span<const std::string_view>;
using CommandHandler = void (*)(CommandContext& context, Args args);

// Redis's command flags, as COMMAND reports them; denyoom also gates execution.
enum CommandFlag : std::uint8_t {
  kWrite = 1 << 0,
  kReadonly = 1 << 1,
  kDenyOom = 1 << 2,  // refused while the keyspace is over max_memory
  kFast = 1 << 3,
};

struct CommandSpec {
  std::string_view name;  // lower case, as Redis names it in errors
  // Redis's arity: N > 0 means exactly N arguments, name included; -N means at least N.
  int arity;
  std::uint8_t flags;
  // Where the keys are: first and last argument index (-1: the last argument) and the step
  // between them. 0 0 0: no keys.
  int first_key;
  int last_key;
  int key_step;
  CommandHandler handler;
};

// The row for `name`, in any letter case; nullptr for an unknown command. Allocation-free.
[[nodiscard]] const CommandSpec* find_command(std::string_view name) noexcept;
[[nodiscard]] std::span<const CommandSpec> command_table() noexcept;

// Runs one request (args[0] is the command name) and appends its reply: the command's, or the
// error Redis gives for an unknown command, a wrong argument count or a full keyspace.
void execute_command(CommandContext& context, Args args);

}  // namespace iomux::resp
