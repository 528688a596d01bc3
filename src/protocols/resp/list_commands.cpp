// List commands: LPUSH RPUSH LPOP RPOP LLEN LRANGE.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "protocols/resp/command_handlers.hpp"
#include "protocols/resp/integer_text.hpp"
#include "protocols/resp/keyspace.hpp"
#include "protocols/resp/reply_queue.hpp"

namespace iomux::resp {
namespace {

using End = Keyspace::End;

// A bulk reply's bytes beyond its element: "$<length>\r\n" and "\r\n".
constexpr std::size_t kBulkFraming = kMaxIntegerText + 5;

// The room left for this call's replies, spent element by element (each counted with the
// most framing it can have).
class Room {
 public:
  explicit Room(const CommandContext& context) noexcept : left_(context.reply.room()) {}
  // Whether the bulk reply of `element` fits; if so, it is counted as written.
  bool take(const std::string& element) noexcept {
    const std::size_t need = element.size() + kBulkFraming;
    if (need > left_) return false;
    left_ -= need;
    return true;
  }

 private:
  std::size_t left_;
};

// The rest of a list reply (LRANGE's elements, popped ones), made a part at a time as the
// connection takes the parts before: elements [next, end) of a list nobody changes while this
// reads it, the one at `next` from byte `offset` on (a long element goes out in slices).
class ListElements final : public ReplyProducer {
 public:
  ListElements(Keyspace::ListReader list, std::size_t next, std::size_t end) noexcept
      : list_(std::move(list)), next_(next), end_(end) {}

  bool produce(ReplyQueue& queue, std::size_t room) override {
    std::string& out = queue.text();
    const std::size_t start = out.size();
    while (next_ < end_ && out.size() - start < room) {
      const std::string& element = list_.items()[next_];
      if (!started_) {
        char header[kMaxIntegerText + 3];
        header[0] = '$';
        const std::string_view digits = format_integer(static_cast<std::int64_t>(element.size()), header + 1);
        out.append(header, digits.size() + 1);
        out.append("\r\n", 2);
        started_ = true;
      }
      const std::size_t left = room - std::min(room, out.size() - start);
      const std::size_t n = std::min(element.size() - offset_, left);
      out.append(element, offset_, n);
      offset_ += n;
      if (offset_ == element.size()) {
        out.append("\r\n", 2);
        ++next_;
        offset_ = 0;
        started_ = false;
      }
    }
    if (next_ < end_) return false;
    list_ = Keyspace::ListReader();  // done reading: writers may change the list in place again
    return true;
  }

  [[nodiscard]] std::size_t held() const noexcept override { return sizeof(*this); }

 private:
  Keyspace::ListReader list_;
  std::size_t next_;
  std::size_t end_;
  std::size_t offset_ = 0;
  bool started_ = false;  // the element at next_ has its header out
};

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
  auto next = [&]() -> const std::string& { return end == End::front ? slot.list()->front() : slot.list()->back(); };
  // What fits the room is copied out as it is popped; the rest is popped into a list of its
  // own, which the keyspace counts until its reply has gone out.
  if (!with_count) {
    if (Room(context).take(next())) return context.reply.bulk(slot.pop(end));
    return context.reply.later(std::make_unique<ListElements>(slot.pop_many(end, 1), 0, 1));
  }
  const auto popped = static_cast<std::size_t>(std::min<std::int64_t>(count, static_cast<std::int64_t>(list->size())));
  context.reply.array(popped);
  // `list` dies with the key when its last element is popped: use the count only.
  std::size_t done = 0;
  Room room(context);
  for (; done < popped && room.take(next()); ++done) context.reply.bulk(slot.pop(end));
  if (done < popped)
    context.reply.later(std::make_unique<ListElements>(slot.pop_many(end, popped - done), 0, popped - done));
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
  Keyspace::Slot slot = guard.slot(args[1]);
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
  // What fits the room is copied now; the rest is read later from the list as it is now
  // (changes meanwhile go to a copy), a part per call, so a long range never sits whole in
  // memory.
  auto it = list->begin() + start;
  auto index = static_cast<std::size_t>(start);
  const auto stop = static_cast<std::size_t>(end) + 1;
  Room room(context);
  for (; index < stop && room.take(*it); ++index, ++it) context.reply.bulk(*it);
  if (index < stop) context.reply.later(std::make_unique<ListElements>(slot.read_list(), index, stop));
}

}  // namespace iomux::resp
