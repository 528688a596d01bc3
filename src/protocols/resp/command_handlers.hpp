// Internal to the command table: the handlers of commands.cpp's rows, grouped by the file
// that defines them, and what they share (error texts, Redis-style argument checks).
// Each handler is called with an argument count its row's arity allows.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "protocols/resp/commands.hpp"
#include "protocols/resp/keyspace.hpp"

namespace iomux::resp {

// Error texts, without the leading '-': ReplyWriter::error() adds it.
inline constexpr std::string_view kWrongTypeError = "WRONGTYPE Operation against a key holding the wrong kind of value";
inline constexpr std::string_view kNotIntegerError = "ERR value is not an integer or out of range";
inline constexpr std::string_view kSyntaxError = "ERR syntax error";
inline constexpr std::string_view kOverflowError = "ERR increment or decrement would overflow";
inline constexpr std::string_view kOomError = "OOM command not allowed when used memory > 'maxmemory'.";

// ASCII case-insensitive equality, as Redis's strcasecmp() on command names and options.
[[nodiscard]] bool equals_nocase(std::string_view a, std::string_view b) noexcept;

// Appends `arg` as Redis prints one into an error with "%.<max>s": up to its first NUL byte,
// at most `max` bytes, with '\r' and '\n' shown as spaces so the error stays one line.
void append_printable(std::string& text, std::string_view arg, std::size_t max);

// "ERR wrong number of arguments for '<name>' command", name as Redis's full name
// ("get", "config|get").
void reply_arity_error(CommandContext& context, std::string_view full_name);
// "ERR unknown subcommand '<sub>'. Try <COMMAND> HELP."
void reply_unknown_subcommand(CommandContext& context, std::string_view subcommand, std::string_view command_upper);
// The argument as an integer, or nullopt after replying `error` (kNotIntegerError by default).
[[nodiscard]] std::optional<std::int64_t> integer_argument(CommandContext& context, std::string_view arg,
                                                           std::string_view error = kNotIntegerError);

// The bulk reply of `value`, the string `slot` holds: referenced, not copied, when it is long
// or a copy would not fit the room left for this call's replies.
void reply_string(CommandContext& context, Keyspace::Slot& slot, std::string_view value);

// string_commands.cpp
void get_command(CommandContext& context, Args args);
void set_command(CommandContext& context, Args args);
void mget_command(CommandContext& context, Args args);
void mset_command(CommandContext& context, Args args);
void incr_command(CommandContext& context, Args args);
void decr_command(CommandContext& context, Args args);
void incrby_command(CommandContext& context, Args args);
void decrby_command(CommandContext& context, Args args);
void append_command(CommandContext& context, Args args);
void strlen_command(CommandContext& context, Args args);

// key_commands.cpp
void del_command(CommandContext& context, Args args);
void exists_command(CommandContext& context, Args args);
void expire_command(CommandContext& context, Args args);
void pexpire_command(CommandContext& context, Args args);
void ttl_command(CommandContext& context, Args args);
void pttl_command(CommandContext& context, Args args);
void persist_command(CommandContext& context, Args args);
void dbsize_command(CommandContext& context, Args args);
void flushdb_command(CommandContext& context, Args args);

// list_commands.cpp
void lpush_command(CommandContext& context, Args args);
void rpush_command(CommandContext& context, Args args);
void lpop_command(CommandContext& context, Args args);
void rpop_command(CommandContext& context, Args args);
void llen_command(CommandContext& context, Args args);
void lrange_command(CommandContext& context, Args args);

// connection_commands.cpp
void ping_command(CommandContext& context, Args args);
void echo_command(CommandContext& context, Args args);
void select_command(CommandContext& context, Args args);
void quit_command(CommandContext& context, Args args);
void hello_command(CommandContext& context, Args args);
void client_command(CommandContext& context, Args args);
void reset_command(CommandContext& context, Args args);

// server_commands.cpp
void config_command(CommandContext& context, Args args);
void command_command(CommandContext& context, Args args);
void info_command(CommandContext& context, Args args);

}  // namespace iomux::resp
