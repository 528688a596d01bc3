// Commands about the connection itself: PING ECHO SELECT QUIT HELLO CLIENT RESET.
#include <climits>
#include <cstdint>
#include <optional>

#include "protocols/resp/command_handlers.hpp"
#include "protocols/resp/server_info.hpp"

namespace iomux::resp {
namespace {

// Redis refuses names CLIENT LIST could not print as one word.
bool valid_client_name(std::string_view name) {
  for (char c : name)
    if (c < '!' || c > '~') return false;
  return true;
}

bool set_client_name(CommandContext& context, std::string_view name) {
  if (!valid_client_name(name)) {
    context.reply.error("ERR Client names cannot contain spaces, newlines or special characters.");
    return false;
  }
  context.client.name = std::string(name);  // allocated to its size: see Session::held()
  return true;
}

// HELLO's answer in RESP2: Redis's map, flattened into name / value pairs.
void reply_hello(CommandContext& context) {
  ReplyWriter& reply = context.reply;
  reply.array(14);
  reply.bulk("server");
  reply.bulk("redis");
  reply.bulk("version");
  reply.bulk(ServerInfo::kRedisVersion);
  reply.bulk("proto");
  reply.integer(2);
  reply.bulk("id");
  reply.integer(static_cast<std::int64_t>(context.client.id));
  reply.bulk("mode");
  reply.bulk("standalone");
  reply.bulk("role");
  reply.bulk("master");
  reply.bulk("modules");
  reply.array(0);
}

}  // namespace

void ping_command(CommandContext& context, Args args) {
  if (args.size() > 2) return reply_arity_error(context, "ping");
  if (args.size() == 2) return context.reply.bulk(args[1]);
  context.reply.simple("PONG");
}

void echo_command(CommandContext& context, Args args) {
  context.reply.bulk(args[1]);
}

void select_command(CommandContext& context, Args args) {
  const std::optional<std::int64_t> index = parse_integer(args[1]);
  if (!index) return context.reply.error(kNotIntegerError);
  // Redis's getIntFromObjectOrReply(), its grammar included.
  if (*index < INT_MIN || *index > INT_MAX)
    return context.reply.error("ERR value is out of range, value must between -2147483648 and 2147483647");
  if (*index != 0) return context.reply.error("ERR DB index is out of range");  // one database
  context.reply.ok();
}

void quit_command(CommandContext& context, Args) {
  context.reply.ok();
  context.client.close_after_reply = true;
}

void hello_command(CommandContext& context, Args args) {
  std::size_t next = 1;
  if (args.size() >= 2) {
    const std::optional<std::int64_t> version =
        integer_argument(context, args[next++], "ERR Protocol version is not an integer or out of range");
    if (!version) return;
    // Redis speaks 2 and 3; this core only RESP2, so 3 is refused as Redis refuses 4.
    if (*version != 2) return context.reply.error("NOPROTO unsupported protocol version");
  }
  for (std::size_t i = next; i < args.size(); ++i) {
    const std::size_t more = args.size() - 1 - i;
    if (equals_nocase(args[i], "auth") && more >= 2) {
      i += 2;  // no users or passwords here: like Redis's passwordless default user, any pass
    } else if (equals_nocase(args[i], "setname") && more >= 1) {
      if (!set_client_name(context, args[++i])) return;
    } else {
      std::string text = "ERR Syntax error in HELLO option '";
      append_printable(text, args[i], args[i].size());
      text += '\'';
      return context.reply.error(text);
    }
  }
  reply_hello(context);
}

void client_command(CommandContext& context, Args args) {
  const std::string_view sub = args[1];
  if (equals_nocase(sub, "setname")) {
    if (args.size() != 3) return reply_arity_error(context, "client|setname");
    if (set_client_name(context, args[2])) context.reply.ok();
  } else if (equals_nocase(sub, "getname")) {
    if (args.size() != 2) return reply_arity_error(context, "client|getname");
    if (context.client.name.empty()) return context.reply.null_bulk();
    context.reply.bulk(context.client.name);
  } else if (equals_nocase(sub, "setinfo")) {
    // Sent by Redis 7.2 client libraries; accepted and forgotten.
    if (args.size() != 4) return reply_arity_error(context, "client|setinfo");
    if (!equals_nocase(args[2], "lib-name") && !equals_nocase(args[2], "lib-ver")) {
      std::string text = "ERR Unrecognized option '";
      append_printable(text, args[2], args[2].size());
      text += '\'';
      return context.reply.error(text);
    }
    context.reply.ok();
  } else if (equals_nocase(sub, "id")) {
    if (args.size() != 2) return reply_arity_error(context, "client|id");
    context.reply.integer(static_cast<std::int64_t>(context.client.id));
  } else {
    reply_unknown_subcommand(context, sub, "CLIENT");
  }
}

void reset_command(CommandContext& context, Args) {
  std::string().swap(context.client.name);
  context.reply.simple("RESET");
}

}  // namespace iomux::resp
