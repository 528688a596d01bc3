// List commands: LPUSH RPUSH LPOP RPOP LLEN LRANGE.
#include <algorithm>
#include <cstdint>
#include <optional>

#include "protocols/resp/command_handlers.hpp"
#include "protocols/resp/keyspace.hpp"

namespace iomux::resp {
namespace {

using End = Keyspace::End;

void push_generic(CommandContext& context, Args args, End end) {
  Keyspace::Guard guard = context.keyspace.lock(args[1]);
  Keyspace::Slot slot = guard.slot(args[1]);
  if (slot.exists() && slot.list() == nullptr) return context.reply.error(kWrongTypeError);
  for (std::string_view value : args.subspan(2)) slot.push(value, end);
  context.reply.integer(static_cast<std::int64_t>(slot.list()->size()));
}

void pop_generic(CommandContext& context, Args args, End end, std::string_view name) {
  if (args.size() > 3) return reply_arity_error(context, name);
  const bool with_count = args.size() == 3;
  std::int64_t count = 1;
  if (with_count) {
    const std::optional<std::int64_t> parsed =
        integer_argument(context, args[2], "ERR value is out of range, must be positive");
    if (!parsed) return;
    if (*parsed < 0) return context.reply.error("ERR value is out of range, must be positive");
    count = *parsed;
  }

  Keyspace::Guard guard = context.keyspace.lock(args[1]);
  Keyspace::Slot slot = guard.slot(args[1]);
  // A missing key is nil: a nil bulk for one element, a nil array when a count was given.
  if (!slot.exists()) return with_count ? context.reply.null_array() : context.reply.null_bulk();
  const Keyspace::List* list = slot.list();
  if (list == nullptr) return context.reply.error(kWrongTypeError);
  if (!with_count) return context.reply.bulk(slot.pop(end));
  const auto popped = static_cast<std::size_t>(std::min<std::int64_t>(count, static_cast<std::int64_t>(list->size())));
  context.reply.array(popped);
  // `list` dies with the key when its last element is popped: use the count only.
  for (std::size_t i = 0; i < popped; ++i) context.reply.bulk(slot.pop(end));
}

}  // namespace

void lpush_command(CommandContext& context, Args args) {
  push_generic(context, args, End::front);
}

void rpush_command(CommandContext& context, Args args) {
  push_generic(context, args, End::back);
}

void lpop_command(CommandContext& context, Args args) {
  pop_generic(context, args, End::front, "lpop");
}

void rpop_command(CommandContext& context, Args args) {
  pop_generic(context, args, End::back, "rpop");
}

void llen_command(CommandContext& context, Args args) {
  Keyspace::Guard guard = context.keyspace.lock(args[1]);
  const Keyspace::Slot slot = guard.slot(args[1]);
  if (const Keyspace::List* list = slot.list()) return context.reply.integer(static_cast<std::int64_t>(list->size()));
  if (slot.exists()) return context.reply.error(kWrongTypeError);
  context.reply.integer(0);
}

void lrange_command(CommandContext& context, Args args) {
  const std::optional<std::int64_t> first = integer_argument(context, args[2]);
  if (!first) return;
  const std::optional<std::int64_t> last = integer_argument(context, args[3]);
  if (!last) return;

  Keyspace::Guard guard = context.keyspace.lock(args[1]);
  const Keyspace::Slot slot = guard.slot(args[1]);
  const Keyspace::List* list = slot.list();
  if (list == nullptr && slot.exists()) return context.reply.error(kWrongTypeError);
  const auto size = static_cast<std::int64_t>(list ? list->size() : 0);
  // Redis's range rules: negative indexes count from the end, the start is clamped at 0 and
  // the end at the last element; a start past the end (or past the list) is an empty range.
  std::int64_t start = *first < 0 ? size + *first : *first;
  std::int64_t end = *last < 0 ? size + *last : *last;
  start = std::max<std::int64_t>(start, 0);
  if (start > end || start >= size) {
    context.reply.array(0);
    return;
  }
  end = std::min(end, size - 1);
  context.reply.array(static_cast<std::size_t>(end - start + 1));
  for (auto it = list->begin() + start, stop = list->begin() + end + 1; it != stop; ++it) context.reply.bulk(*it);
}

}  // namespace iomux::resp
