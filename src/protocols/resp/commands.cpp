#include "protocols/resp/commands.hpp"

#include <array>
#include <cstdint>

#include "protocols/resp/command_handlers.hpp"
#include "protocols/resp/integer_text.hpp"
#include "protocols/resp/keyspace.hpp"

namespace iomux::resp {
namespace {

constexpr std::uint8_t kWriteDenyOom = kWrite | kDenyOom;

// Arity, flags and key positions as Redis 7.0's COMMAND reports them.
constexpr std::array kCommands = {
    // strings
    CommandSpec{"get", 2, kReadonly | kFast, 1, 1, 1, get_command},
    CommandSpec{"set", -3, kWriteDenyOom, 1, 1, 1, set_command},
    CommandSpec{"mget", -2, kReadonly | kFast, 1, -1, 1, mget_command},
    CommandSpec{"mset", -3, kWriteDenyOom, 1, -1, 2, mset_command},
    CommandSpec{"incr", 2, kWriteDenyOom | kFast, 1, 1, 1, incr_command},
    CommandSpec{"decr", 2, kWriteDenyOom | kFast, 1, 1, 1, decr_command},
    CommandSpec{"incrby", 3, kWriteDenyOom | kFast, 1, 1, 1, incrby_command},
    CommandSpec{"decrby", 3, kWriteDenyOom | kFast, 1, 1, 1, decrby_command},
    CommandSpec{"append", 3, kWriteDenyOom | kFast, 1, 1, 1, append_command},
    CommandSpec{"strlen", 2, kReadonly | kFast, 1, 1, 1, strlen_command},
    // keys
    CommandSpec{"del", -2, kWrite, 1, -1, 1, del_command},
    CommandSpec{"exists", -2, kReadonly | kFast, 1, -1, 1, exists_command},
    CommandSpec{"expire", -3, kWrite | kFast, 1, 1, 1, expire_command},
    CommandSpec{"pexpire", -3, kWrite | kFast, 1, 1, 1, pexpire_command},
    CommandSpec{"ttl", 2, kReadonly | kFast, 1, 1, 1, ttl_command},
    CommandSpec{"pttl", 2, kReadonly | kFast, 1, 1, 1, pttl_command},
    CommandSpec{"persist", 2, kWrite | kFast, 1, 1, 1, persist_command},
    CommandSpec{"dbsize", 1, kReadonly | kFast, 0, 0, 0, dbsize_command},
    CommandSpec{"flushdb", -1, kWrite, 0, 0, 0, flushdb_command},
    CommandSpec{"flushall", -1, kWrite, 0, 0, 0, flushdb_command},  // one database: the same
    // lists
    CommandSpec{"lpush", -3, kWriteDenyOom | kFast, 1, 1, 1, lpush_command},
    CommandSpec{"rpush", -3, kWriteDenyOom | kFast, 1, 1, 1, rpush_command},
    CommandSpec{"lpop", -2, kWrite | kFast, 1, 1, 1, lpop_command},
    CommandSpec{"rpop", -2, kWrite | kFast, 1, 1, 1, rpop_command},
    CommandSpec{"llen", 2, kReadonly | kFast, 1, 1, 1, llen_command},
    CommandSpec{"lrange", 4, kReadonly, 1, 1, 1, lrange_command},
    // connection
    CommandSpec{"ping", -1, kFast, 0, 0, 0, ping_command},
    CommandSpec{"echo", 2, kFast, 0, 0, 0, echo_command},
    CommandSpec{"select", 2, kFast, 0, 0, 0, select_command},
    CommandSpec{"quit", -1, kFast, 0, 0, 0, quit_command},
    CommandSpec{"hello", -1, kFast, 0, 0, 0, hello_command},
    CommandSpec{"client", -2, 0, 0, 0, 0, client_command},
    CommandSpec{"reset", 1, kFast, 0, 0, 0, reset_command},
    // server
    CommandSpec{"config", -2, 0, 0, 0, 0, config_command},
    CommandSpec{"command", -1, 0, 0, 0, 0, command_command},
    CommandSpec{"info", -1, 0, 0, 0, 0, info_command},
};

constexpr char to_lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
}

constexpr bool names_are_lower_case_letters() {
  for (const CommandSpec& spec : kCommands)
    for (char c : spec.name)
      if (c < 'a' || c > 'z') return false;
  return true;
}
static_assert(names_are_lower_case_letters(), "CommandIndex::names_match() relies on it");

// Open addressing over the rows by a case-folded hash of the name: one hash and, usually,
// one comparison per lookup, and no lower-cased copy of the name.
class CommandIndex {
 public:
  CommandIndex() noexcept {
    for (const CommandSpec& spec : kCommands) {
      std::size_t slot = hash(spec.name) & kMask;
      while (slots_[slot] != nullptr) slot = (slot + 1) & kMask;
      slots_[slot] = &spec;
    }
  }

  const CommandSpec* find(std::string_view name) const noexcept {
    for (std::size_t slot = hash(name) & kMask;; slot = (slot + 1) & kMask) {
      const CommandSpec* spec = slots_[slot];
      if (spec == nullptr || names_match(spec->name, name)) return spec;
    }
  }

 private:
  static constexpr std::size_t kSlots = 128;  // a power of two, over three times the rows
  static constexpr std::size_t kMask = kSlots - 1;
  static_assert(kCommands.size() * 2 < kSlots);

  // FNV-1a over the bytes with bit 5 set, which folds every upper-case letter onto its lower
  // case (and merges some punctuation, harmless in a hash): names equal but for case hash
  // alike. Long names stop at 16 bytes: no command is longer, and it bounds the work.
  static std::size_t hash(std::string_view name) noexcept {
    std::uint32_t h = 2166136261u;
    for (std::size_t i = 0; i < name.size() && i < 16; ++i)
      h = (h ^ static_cast<unsigned char>(name[i] | 0x20)) * 16777619u;
    return h ^ static_cast<std::uint32_t>(name.size());
  }

  // `name` (a row's: lower-case letters only) equals `input` in any case. Setting bit 5 turns
  // an upper-case letter into its lower case and cannot turn any other byte into a lower-case
  // letter, so one OR per byte is an exact case-insensitive test here.
  static bool names_match(std::string_view name, std::string_view input) noexcept {
    if (name.size() != input.size()) return false;
    for (std::size_t i = 0; i < name.size(); ++i)
      if ((input[i] | 0x20) != name[i]) return false;
    return true;
  }

  std::array<const CommandSpec*, kSlots> slots_{};
};

const CommandIndex kIndex;

bool arity_allows(int arity, std::size_t argc) noexcept {
  const auto count = static_cast<long long>(argc);
  return arity >= 0 ? count == arity : count >= -static_cast<long long>(arity);
}

void reply_unknown_command(CommandContext& context, Args args) {
  // Redis 7.0's words, including its cut-offs: the name to 128 bytes, the arguments quoted
  // one after the other until 128 bytes of them are shown.
  std::string text = "ERR unknown command '";
  append_printable(text, args[0], 128);
  text += "', with args beginning with: ";
  std::string shown;
  for (std::size_t i = 1; i < args.size() && shown.size() < 128; ++i) {
    const std::size_t room = 128 - shown.size();
    shown += '\'';
    append_printable(shown, args[i], room);
    shown += "' ";
  }
  text += shown;
  context.reply.error(text);
}

}  // namespace

bool equals_nocase(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  return true;
}

void append_printable(std::string& text, std::string_view arg, std::size_t max) {
  for (std::size_t i = 0; i < arg.size() && i < max; ++i) {
    const char c = arg[i];
    if (c == '\0') break;
    text += (c == '\r' || c == '\n') ? ' ' : c;
  }
}

void reply_arity_error(CommandContext& context, std::string_view full_name) {
  std::string text = "ERR wrong number of arguments for '";
  text += full_name;
  text += "' command";
  context.reply.error(text);
}

void reply_unknown_subcommand(CommandContext& context, std::string_view subcommand, std::string_view command_upper) {
  std::string text = "ERR unknown subcommand '";
  append_printable(text, subcommand, 128);
  text += "'. Try ";
  text += command_upper;
  text += " HELP.";
  context.reply.error(text);
}

std::optional<std::int64_t> integer_argument(CommandContext& context, std::string_view arg, std::string_view error) {
  std::optional<std::int64_t> value = parse_integer(arg);
  if (!value) context.reply.error(error);
  return value;
}

const CommandSpec* find_command(std::string_view name) noexcept {
  return kIndex.find(name);
}

std::span<const CommandSpec> command_table() noexcept {
  return kCommands;
}

void execute_command(CommandContext& context, Args args) {
  const CommandSpec* spec = find_command(args[0]);
  if (spec == nullptr) return reply_unknown_command(context, args);
  if (!arity_allows(spec->arity, args.size())) return reply_arity_error(context, spec->name);
  // Redis refuses a command that may add data while over maxmemory, whatever this one adds;
  // commands that free memory (DEL, LPOP, FLUSHALL) still run.
  if ((spec->flags & kDenyOom) && context.keyspace.over_memory_limit()) return context.reply.error(kOomError);
  spec->handler(context, args);
}

}  // namespace iomux::resp
