// Commands about the server: CONFIG GET, COMMAND, INFO. Clients send these when they start
// (redis-benchmark asks CONFIG GET save / appendonly, redis-cli asks COMMAND DOCS) and refuse
// or warn without a Redis-shaped answer; none is on a hot path.
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <string>

#include "protocols/resp/command_handlers.hpp"
#include "protocols/resp/keyspace.hpp"
#include "protocols/resp/server_info.hpp"

namespace iomux::resp {
namespace {

// --- CONFIG GET --------------------------------------------------------------------------

struct ConfigParameter {
  std::string_view name;
  std::string (*value)(const CommandContext& context);
};

const std::array kConfigParameters = {
    ConfigParameter{"appendonly", [](const CommandContext&) { return std::string("no"); }},
    ConfigParameter{"databases", [](const CommandContext&) { return std::string("1"); }},
    ConfigParameter{"maxmemory", [](const CommandContext& c) { return std::to_string(c.keyspace.max_memory()); }},
    ConfigParameter{"maxmemory-policy", [](const CommandContext&) { return std::string("noeviction"); }},
    ConfigParameter{"port", [](const CommandContext& c) { return std::to_string(c.server.tcp_port()); }},
    ConfigParameter{"proto-max-bulk-len", [](const CommandContext& c) { return std::to_string(c.limits.max_bulk); }},
    ConfigParameter{"save", [](const CommandContext&) { return std::string(); }},
};

bool char_equals_nocase(char a, char b) noexcept {
  return equals_nocase(std::string_view(&a, 1), std::string_view(&b, 1));
}

// Glob matching as CONFIG GET does it, case-insensitively: '*', '?' and '\' escapes (Redis
// also has [sets], which no configuration name needs).
bool glob_matches(std::string_view pattern, std::string_view text) {
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star = std::string_view::npos;  // where the last '*' was, to retry from
  std::size_t star_text = 0;                  // how much text that '*' has swallowed so far
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_text = t;
      continue;
    }
    if (p < pattern.size()) {
      const bool escaped = pattern[p] == '\\' && p + 1 < pattern.size();
      const char want = escaped ? pattern[p + 1] : pattern[p];
      if ((!escaped && want == '?') || char_equals_nocase(want, text[t])) {
        p += escaped ? 2 : 1;
        ++t;
        continue;
      }
    }
    if (star == std::string_view::npos) return false;
    p = star + 1;  // let the '*' swallow one more character and try again
    t = ++star_text;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

void config_get(CommandContext& context, Args patterns) {
  // Each parameter once, in table order, whichever patterns match it: a flat array of
  // name / value pairs, which is how Redis 7 answers its map in RESP2.
  std::array<bool, kConfigParameters.size()> matched{};
  std::size_t count = 0;
  for (std::size_t i = 0; i < kConfigParameters.size(); ++i) {
    for (std::string_view pattern : patterns) {
      if (glob_matches(pattern, kConfigParameters[i].name)) {
        matched[i] = true;
        ++count;
        break;
      }
    }
  }
  context.reply.array(count * 2);
  for (std::size_t i = 0; i < kConfigParameters.size(); ++i) {
    if (!matched[i]) continue;
    context.reply.bulk(kConfigParameters[i].name);
    context.reply.bulk(kConfigParameters[i].value(context));
  }
}

// --- COMMAND -----------------------------------------------------------------------------

// One command as Redis 7's COMMAND describes it: name, arity, flags, first key, last key, key
// step, ACL categories, tips, key specifications, subcommands (the last four left empty).
void reply_command_info(CommandContext& context, const CommandSpec& spec) {
  ReplyWriter& reply = context.reply;
  reply.array(10);
  reply.bulk(spec.name);
  reply.integer(spec.arity);
  constexpr std::array<std::pair<std::uint8_t, std::string_view>, 4> kFlagNames = {
      {{kWrite, "write"}, {kReadonly, "readonly"}, {kDenyOom, "denyoom"}, {kFast, "fast"}}};
  std::size_t flags = 0;
  for (const auto& [flag, name] : kFlagNames) flags += (spec.flags & flag) ? 1 : 0;
  reply.array(flags);
  for (const auto& [flag, name] : kFlagNames)
    if (spec.flags & flag) reply.simple(name);
  reply.integer(spec.first_key);
  reply.integer(spec.last_key);
  reply.integer(spec.key_step);
  for (int i = 0; i < 4; ++i) reply.array(0);
}

// --- INFO --------------------------------------------------------------------------------

void add_field(std::string& text, std::string_view name, std::string_view value) {
  text += name;
  text += ':';
  text += value;
  text += "\r\n";
}

void add_field(std::string& text, std::string_view name, std::int64_t value) {
  add_field(text, name, std::to_string(value));
}

// Redis's bytesToHuman(): 1023B, 1.50K, 2.25M, ...
std::string human_bytes(std::size_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + "B";
  constexpr std::string_view kUnits = "KMGTP";
  double value = static_cast<double>(bytes) / 1024;
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < kUnits.size()) {
    value /= 1024;
    ++unit;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f%c", value, kUnits[unit]);
  return buffer;
}

void add_server_section(std::string& text, const CommandContext& context) {
  text += "# Server\r\n";
  add_field(text, "redis_version", ServerInfo::kRedisVersion);
  add_field(text, "redis_mode", "standalone");
  add_field(text, "os", "Linux");
  add_field(text, "arch_bits", static_cast<std::int64_t>(sizeof(void*) * 8));
  add_field(text, "multiplexing_api", "iomux");
  add_field(text, "process_id", static_cast<std::int64_t>(::getpid()));
  add_field(text, "tcp_port", context.server.tcp_port());
  const std::int64_t uptime = context.server.uptime_seconds();
  add_field(text, "uptime_in_seconds", uptime);
  add_field(text, "uptime_in_days", uptime / 86400);
}

void add_clients_section(std::string& text, const CommandContext& context) {
  text += "# Clients\r\n";
  add_field(text, "connected_clients", context.server.connected_clients());
}

void add_memory_section(std::string& text, const CommandContext& context) {
  const std::size_t used = context.keyspace.used_memory();
  const std::size_t max = context.keyspace.max_memory();
  text += "# Memory\r\n";
  add_field(text, "used_memory", static_cast<std::int64_t>(used));
  add_field(text, "used_memory_human", human_bytes(used));
  add_field(text, "maxmemory", static_cast<std::int64_t>(max));
  add_field(text, "maxmemory_human", human_bytes(max));
  add_field(text, "maxmemory_policy", "noeviction");
}

void add_stats_section(std::string& text, const CommandContext& context) {
  text += "# Stats\r\n";
  add_field(text, "total_connections_received", static_cast<std::int64_t>(context.server.total_connections()));
  // This connection's own recent commands are not in the shared total yet.
  add_field(text, "total_commands_processed",
            static_cast<std::int64_t>(context.server.total_commands() + context.client.unreported_commands));
}

void add_keyspace_section(std::string& text, const CommandContext& context) {
  text += "# Keyspace\r\n";
  const Keyspace::Counts counts = context.keyspace.counts();
  if (counts.keys == 0) return;  // Redis lists only databases with keys
  text += "db0:keys=" + std::to_string(counts.keys) + ",expires=" + std::to_string(counts.expires) + ",avg_ttl=0\r\n";
}

struct InfoSection {
  std::string_view name;
  void (*add)(std::string& text, const CommandContext& context);
};

constexpr std::array kInfoSections = {
    InfoSection{"server", add_server_section},     InfoSection{"clients", add_clients_section},
    InfoSection{"memory", add_memory_section},     InfoSection{"stats", add_stats_section},
    InfoSection{"keyspace", add_keyspace_section},
};

}  // namespace

void config_command(CommandContext& context, Args args) {
  if (equals_nocase(args[1], "get")) {
    if (args.size() < 3) return reply_arity_error(context, "config|get");
    return config_get(context, args.subspan(2));
  }
  reply_unknown_subcommand(context, args[1], "CONFIG");
}

void command_command(CommandContext& context, Args args) {
  const std::span<const CommandSpec> table = command_table();
  if (args.size() == 1) {
    context.reply.array(table.size());
    for (const CommandSpec& spec : table) reply_command_info(context, spec);
    return;
  }
  const std::string_view sub = args[1];
  if (equals_nocase(sub, "count")) {
    if (args.size() != 2) return reply_arity_error(context, "command|count");
    return context.reply.integer(static_cast<std::int64_t>(table.size()));
  }
  if (equals_nocase(sub, "docs")) {
    // Documentation is for redis-cli's hints; an empty answer makes it use its built-in help.
    return context.reply.array(0);
  }
  if (equals_nocase(sub, "info")) {
    if (args.size() == 2) return command_command(context, args.first(1));  // all of them
    context.reply.array(args.size() - 2);
    for (std::string_view name : args.subspan(2)) {
      if (const CommandSpec* spec = find_command(name)) {
        reply_command_info(context, *spec);
      } else {
        context.reply.null_bulk();
      }
    }
    return;
  }
  if (equals_nocase(sub, "list")) {
    if (args.size() != 2) return context.reply.error(kSyntaxError);  // no FILTERBY here
    context.reply.array(table.size());
    for (const CommandSpec& spec : table) context.reply.bulk(spec.name);
    return;
  }
  reply_unknown_subcommand(context, sub, "COMMAND");
}

void info_command(CommandContext& context, Args args) {
  // No argument, "all", "everything" or "default": every section this server has.
  std::array<bool, kInfoSections.size()> wanted{};
  const bool all = args.size() == 1;
  for (std::size_t s = 0; s < kInfoSections.size(); ++s) {
    wanted[s] = all;
    for (std::string_view arg : args.subspan(1)) {
      if (equals_nocase(arg, kInfoSections[s].name) || equals_nocase(arg, "all") || equals_nocase(arg, "everything") ||
          equals_nocase(arg, "default"))
        wanted[s] = true;
    }
  }
  std::string text;
  for (std::size_t s = 0; s < kInfoSections.size(); ++s) {
    if (!wanted[s]) continue;
    if (!text.empty()) text += "\r\n";  // a blank line between sections, as Redis
    kInfoSections[s].add(text, context);
  }
  context.reply.bulk(text);
}

}  // namespace iomux::resp
