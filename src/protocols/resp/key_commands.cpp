// Commands on keys whatever their type: DEL EXISTS EXPIRE PEXPIRE TTL PTTL PERSIST DBSIZE
// FLUSHDB FLUSHALL.
#include <cstdint>
#include <optional>

#include "protocols/resp/command_handlers.hpp"
#include "protocols/resp/keyspace.hpp"

namespace iomux::resp {
namespace {

struct ExpireCondition {
  bool nx = false;  // only if the key has no TTL
  bool xx = false;  // only if it has one
  bool gt = false;  // only if the new expiry is later (no TTL counts as infinite)
  bool lt = false;  // only if it is sooner
};

// EXPIRE's NX / XX / GT / LT, checked as Redis 7.0 does; nullopt after replying the error.
std::optional<ExpireCondition> parse_expire_condition(CommandContext& context, Args args) {
  ExpireCondition condition;
  for (std::size_t i = 3; i < args.size(); ++i) {
    if (equals_nocase(args[i], "nx")) {
      condition.nx = true;
    } else if (equals_nocase(args[i], "xx")) {
      condition.xx = true;
    } else if (equals_nocase(args[i], "gt")) {
      condition.gt = true;
    } else if (equals_nocase(args[i], "lt")) {
      condition.lt = true;
    } else {
      // Redis formats the option with %s (up to a NUL) and trims line ends off the end of
      // its error text before it maps the others to spaces: an option "\r" shows as nothing.
      std::string_view option = args[i].substr(0, args[i].find('\0'));
      while (!option.empty() && (option.back() == '\r' || option.back() == '\n')) option.remove_suffix(1);
      std::string text = "ERR Unsupported option ";
      append_printable(text, option, option.size());
      context.reply.error(text);
      return std::nullopt;
    }
  }
  if (condition.nx && (condition.xx || condition.gt || condition.lt)) {
    context.reply.error("ERR NX and XX, GT or LT options at the same time are not compatible");
    return std::nullopt;
  }
  if (condition.gt && condition.lt) {
    context.reply.error("ERR GT and LT options at the same time are not compatible");
    return std::nullopt;
  }
  return condition;
}

bool condition_holds(const ExpireCondition& condition, std::optional<std::int64_t> current, std::int64_t when) {
  if (condition.nx && current) return false;
  if (condition.xx && !current) return false;
  if (condition.gt && (!current || when <= *current)) return false;
  if (condition.lt && current && when >= *current) return false;
  return true;
}

void expire_generic(CommandContext& context, Args args, bool seconds, std::string_view name) {
  const std::optional<ExpireCondition> condition = parse_expire_condition(context, args);
  if (!condition) return;
  const std::optional<std::int64_t> ttl = integer_argument(context, args[2]);
  if (!ttl) return;
  std::int64_t when = *ttl;
  const std::int64_t now = context.keyspace.now_ms();
  // Negative TTLs are allowed (the key goes at once); only an overflow is an error.
  const bool overflow = (seconds && (when > INT64_MAX / 1000 || when < INT64_MIN / 1000)) ||
                        (seconds ? when * 1000 : when) > INT64_MAX - now;
  if (overflow) {
    std::string text = "ERR invalid expire time in '";
    text += name;
    text += "' command";
    return context.reply.error(text);
  }
  when = (seconds ? when * 1000 : when) + now;

  Keyspace::Guard guard = context.keyspace.lock(args[1]);
  Keyspace::Slot slot = guard.slot(args[1]);
  if (!slot.exists() || !condition_holds(*condition, slot.expires_at(), when)) return context.reply.integer(0);
  if (when <= now) {
    slot.erase();  // an expiry in the past deletes the key, as Redis does
  } else {
    slot.set_expires_at(when);
  }
  context.reply.integer(1);
}

void ttl_generic(CommandContext& context, Args args, bool seconds) {
  Keyspace::Guard guard = context.keyspace.lock(args[1]);
  const Keyspace::Slot slot = guard.slot(args[1]);
  if (!slot.exists()) return context.reply.integer(-2);
  const std::optional<std::int64_t> expires_at = slot.expires_at();
  if (!expires_at) return context.reply.integer(-1);
  const std::int64_t left = std::max<std::int64_t>(*expires_at - context.keyspace.now_ms(), 0);
  context.reply.integer(seconds ? (left + 500) / 1000 : left);  // Redis rounds to the second
}

}  // namespace

void del_command(CommandContext& context, Args args) {
  const Args keys = args.subspan(1);
  Keyspace::Guard guard = context.keyspace.lock(keys);
  std::int64_t deleted = 0;
  for (std::string_view key : keys) {
    Keyspace::Slot slot = guard.slot(key);
    if (!slot.exists()) continue;
    slot.erase();
    ++deleted;
  }
  context.reply.integer(deleted);
}

void exists_command(CommandContext& context, Args args) {
  const Args keys = args.subspan(1);
  Keyspace::Guard guard = context.keyspace.lock(keys);
  std::int64_t found = 0;
  for (std::string_view key : keys) found += guard.slot(key).exists() ? 1 : 0;  // repeats count
  context.reply.integer(found);
}

void expire_command(CommandContext& context, Args args) {
  expire_generic(context, args, /*seconds=*/true, "expire");
}

void pexpire_command(CommandContext& context, Args args) {
  expire_generic(context, args, /*seconds=*/false, "pexpire");
}

void ttl_command(CommandContext& context, Args args) {
  ttl_generic(context, args, true);
}

void pttl_command(CommandContext& context, Args args) {
  ttl_generic(context, args, false);
}

void persist_command(CommandContext& context, Args args) {
  Keyspace::Guard guard = context.keyspace.lock(args[1]);
  Keyspace::Slot slot = guard.slot(args[1]);
  context.reply.integer(slot.exists() && slot.persist() ? 1 : 0);
}

void dbsize_command(CommandContext& context, Args) {
  context.reply.integer(static_cast<std::int64_t>(context.keyspace.counts().keys));
}

void flushdb_command(CommandContext& context, Args args) {
  // [ASYNC | SYNC]: both flush at once here.
  if (args.size() > 2 || (args.size() == 2 && !equals_nocase(args[1], "async") && !equals_nocase(args[1], "sync")))
    return context.reply.error(kSyntaxError);
  context.keyspace.flush();
  context.reply.ok();
}

}  // namespace iomux::resp
