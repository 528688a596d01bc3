// String commands: GET SET MGET MSET INCR DECR INCRBY DECRBY APPEND STRLEN.
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

#include "protocols/resp/command_handlers.hpp"
#include "protocols/resp/integer_text.hpp"
#include "protocols/resp/keyspace.hpp"

namespace iomux::resp {
namespace {

struct SetOptions {
  bool nx = false;
  bool xx = false;
  bool get = false;
  bool keep_ttl = false;
  std::optional<std::string_view> expire;  // the EX / PX argument, if given
  bool expire_in_seconds = false;
};

// SET's options as Redis 7.0 parses them: any order, case-insensitive; a conflicting or unknown
// option is a syntax error. EXAT / PXAT are not supported (they take Unix times and TTLs
// here run on a monotonic clock).
std::optional<SetOptions> parse_set_options(Args args) {
  SetOptions options;
  for (std::size_t i = 3; i < args.size(); ++i) {
    const std::string_view option = args[i];
    const bool has_next = i + 1 < args.size();
    const bool has_expire = options.expire.has_value();
    if (equals_nocase(option, "nx") && !options.xx) {
      options.nx = true;
    } else if (equals_nocase(option, "xx") && !options.nx) {
      options.xx = true;
    } else if (equals_nocase(option, "get")) {
      options.get = true;
    } else if (equals_nocase(option, "keepttl") && !has_expire) {
      options.keep_ttl = true;
    } else if (equals_nocase(option, "ex") && !options.keep_ttl && has_next &&
               (!has_expire || options.expire_in_seconds)) {
      options.expire = args[++i];
      options.expire_in_seconds = true;
    } else if (equals_nocase(option, "px") && !options.keep_ttl && has_next &&
               (!has_expire || !options.expire_in_seconds)) {
      options.expire = args[++i];
      options.expire_in_seconds = false;
    } else {
      return std::nullopt;
    }
  }
  return options;
}

// The absolute expiry time SET's EX / PX argument gives, or nullopt after replying the error.
std::optional<std::int64_t> set_expire_time(CommandContext& context, const SetOptions& options) {
  const std::optional<std::int64_t> ttl = integer_argument(context, *options.expire);
  if (!ttl) return std::nullopt;
  constexpr std::string_view kInvalid = "ERR invalid expire time in 'set' command";
  std::int64_t ms = *ttl;
  if (ms <= 0 || (options.expire_in_seconds && ms > INT64_MAX / 1000)) {
    context.reply.error(kInvalid);
    return std::nullopt;
  }
  if (options.expire_in_seconds) ms *= 1000;
  const std::int64_t now = context.keyspace.now_ms();
  if (ms > INT64_MAX - now) {
    context.reply.error(kInvalid);
    return std::nullopt;
  }
  return now + ms;
}

bool add_would_overflow(std::int64_t value, std::int64_t delta) noexcept {
  return (delta > 0 && value > INT64_MAX - delta) || (delta < 0 && value < INT64_MIN - delta);
}

void increment(CommandContext& context, std::string_view key, std::int64_t delta) {
  Keyspace::Guard guard = context.keyspace.lock(key);
  Keyspace::Slot slot = guard.slot(key);
  std::int64_t value = 0;
  if (const std::optional<std::string_view> text = slot.string()) {
    const std::optional<std::int64_t> current = parse_integer(*text);
    if (!current) return context.reply.error(kNotIntegerError);
    value = *current;
  } else if (slot.exists()) {
    return context.reply.error(kWrongTypeError);
  }
  if (add_would_overflow(value, delta)) return context.reply.error(kOverflowError);
  value += delta;
  char digits[kMaxIntegerText];
  slot.set_string(format_integer(value, digits), /*keep_ttl=*/true);  // Redis keeps the TTL
  context.reply.integer(value);
}

}  // namespace

void reply_string(CommandContext& context, Keyspace::Slot& slot, std::string_view value) {
  // A reference costs one table entry whatever the length; a copy costs its length, and a
  // copy past the room would make this call's output as long as the value. Values longer
  // than kInlineString are the shareable ones.
  if (value.size() > Keyspace::kInlineString &&
      (value.size() >= ReplyWriter::kReferenceFrom || value.size() + kMaxIntegerText + 5 > context.reply.room())) {
    SharedBytes shared = slot.share_string();
    return context.reply.shared_bulk(std::move(shared.owner), shared.bytes);
  }
  context.reply.bulk(value);
}

void get_command(CommandContext& context, Args args) {
  Keyspace::Guard guard = context.keyspace.lock(args[1]);
  Keyspace::Slot slot = guard.slot(args[1]);
  if (const std::optional<std::string_view> value = slot.string()) return reply_string(context, slot, *value);
  if (slot.exists()) return context.reply.error(kWrongTypeError);
  context.reply.null_bulk();
}

void set_command(CommandContext& context, Args args) {
  std::optional<SetOptions> options;
  if (args.size() > 3) {  // the usual SET has no options: skip the parse
    options = parse_set_options(args);
    if (!options) return context.reply.error(kSyntaxError);
  } else {
    options.emplace();
  }
  std::optional<std::int64_t> expires_at;
  if (options->expire) {
    expires_at = set_expire_time(context, *options);
    if (!expires_at) return;
  }

  Keyspace::Guard guard = context.keyspace.lock(args[1]);
  Keyspace::Slot slot = guard.slot(args[1]);
  if (options->get) {
    // SET ... GET answers with the old value, and sets nothing if there is a non-string.
    if (const std::optional<std::string_view> old = slot.string()) {
      reply_string(context, slot, *old);  // a reference keeps the old value alive once replaced
    } else if (slot.exists()) {
      return context.reply.error(kWrongTypeError);
    } else {
      context.reply.null_bulk();
    }
  }
  if ((options->nx && slot.exists()) || (options->xx && !slot.exists())) {
    if (!options->get) context.reply.null_bulk();
    return;
  }
  slot.set_string(args[2], options->keep_ttl);
  if (expires_at) slot.set_expires_at(*expires_at);
  if (!options->get) context.reply.ok();
}

void mget_command(CommandContext& context, Args args) {
  const Args keys = args.subspan(1);
  Keyspace::Guard guard = context.keyspace.lock(keys);
  context.reply.array(keys.size());
  for (std::string_view key : keys) {
    Keyspace::Slot slot = guard.slot(key);
    if (const std::optional<std::string_view> value = slot.string()) {
      reply_string(context, slot, *value);  // past the room, long values are referenced, not copied
    } else {
      context.reply.null_bulk();  // missing or not a string: Redis answers nil for both
    }
  }
}

void mset_command(CommandContext& context, Args args) {
  if (args.size() % 2 == 0) return reply_arity_error(context, "mset");
  const Args pairs = args.subspan(1);
  // All the keys' shards at once: no reader sees some of the keys set and not the others.
  Keyspace::Guard guard = context.keyspace.lock(pairs, 2);
  for (std::size_t i = 0; i < pairs.size(); i += 2) guard.slot(pairs[i]).set_string(pairs[i + 1], /*keep_ttl=*/false);
  context.reply.ok();
}

void incr_command(CommandContext& context, Args args) {
  increment(context, args[1], 1);
}

void decr_command(CommandContext& context, Args args) {
  increment(context, args[1], -1);
}

void incrby_command(CommandContext& context, Args args) {
  if (const std::optional<std::int64_t> delta = integer_argument(context, args[2])) increment(context, args[1], *delta);
}

void decrby_command(CommandContext& context, Args args) {
  const std::optional<std::int64_t> delta = integer_argument(context, args[2]);
  if (!delta) return;
  if (*delta == INT64_MIN) return context.reply.error("ERR decrement would overflow");
  increment(context, args[1], -*delta);
}

void append_command(CommandContext& context, Args args) {
  Keyspace::Guard guard = context.keyspace.lock(args[1]);
  Keyspace::Slot slot = guard.slot(args[1]);
  const std::optional<std::string_view> value = slot.string();
  if (slot.exists() && !value) return context.reply.error(kWrongTypeError);
  const std::size_t length = (value ? value->size() : 0) + args[2].size();
  if (length > context.limits.max_bulk)
    return context.reply.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
  slot.append(args[2]);
  context.reply.integer(static_cast<std::int64_t>(length));
}

void strlen_command(CommandContext& context, Args args) {
  Keyspace::Guard guard = context.keyspace.lock(args[1]);
  const Keyspace::Slot slot = guard.slot(args[1]);
  if (const std::optional<std::string_view> value = slot.string())
    return context.reply.integer(static_cast<std::int64_t>(value->size()));
  if (slot.exists()) return context.reply.error(kWrongTypeError);
  context.reply.integer(0);
}

}  // namespace iomux::resp
