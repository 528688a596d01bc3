// Option checks, request/reply bytes, summaries: everything about a run that needs no IO.
#include <cmath>

#include <fmt/format.h>

#include "iomux/loadgen/bench.hpp"

namespace iomux {

std::optional<ProtocolMode> parse_protocol_mode(std::string_view name) {
  if (name == "ack") return ProtocolMode::ack;
  if (name == "line") return ProtocolMode::line;
  if (name == "echo") return ProtocolMode::echo;
  return std::nullopt;
}

std::string_view to_string(ProtocolMode mode) {
  switch (mode) {
    case ProtocolMode::ack:
      return "ack";
    case ProtocolMode::line:
      return "line";
    case ProtocolMode::echo:
      return "echo";
  }
  return "?";
}

}  // namespace iomux

namespace iomux::loadgen {
namespace {

constexpr std::size_t kMaxSize = 16u << 20;
constexpr std::size_t kMaxPipeline = 4096;
constexpr std::size_t kMaxStream = 256u << 20;
constexpr std::size_t kMaxConnections = 1'000'000;
constexpr int kMaxThreads = 256;

bool finite_at_least(double v, double lo) {
  return std::isfinite(v) && v >= lo;
}

}  // namespace

std::optional<std::string> validate(const BenchConfig& c) {
  if (!c.spawn_command.empty() && !c.model.empty()) return "--spawn and --model exclude each other";
  if (!c.spawns()) {
    std::string why;
    if (!parse_host_port(c.target, &why))
      return fmt::format("bad target '{}': {} (expected HOST:PORT, e.g. 127.0.0.1:7890)", c.target, why);
  }
  if (!c.server_args.empty() && c.model.empty()) return "--server-arg needs --model";
  if (c.connections < 1 || c.connections > kMaxConnections)
    return fmt::format("--connections must be 1..{}", kMaxConnections);
  if (c.idle > kMaxConnections) return fmt::format("--idle must be 0..{}", kMaxConnections);
  if (c.threads < 1 || c.threads > kMaxThreads) return fmt::format("--threads must be 1..{}", kMaxThreads);
  if (static_cast<std::size_t>(c.threads) > c.connections)
    return fmt::format("--threads {} is more than --connections {}: every load thread needs a connection", c.threads,
                       c.connections);
  if (c.size < 1 || c.size > kMaxSize) return fmt::format("--size must be 1..{} bytes", kMaxSize);
  if (c.protocol == ProtocolMode::line) {
    if (c.size < 2) return "--size must be at least 2 in line mode (one payload byte + '\\n')";
    if (c.size - 1 > kDefaultMaxLine)
      return fmt::format("--size {} is too long for line mode: the server accepts lines of at most {} bytes + '\\n'",
                         c.size, kDefaultMaxLine);
  }
  if (c.pipeline < 1 || c.pipeline > kMaxPipeline) return fmt::format("--pipeline must be 1..{}", kMaxPipeline);
  if (c.pipeline > 1 && c.protocol == ProtocolMode::ack)
    return "--pipeline > 1 needs --protocol line or echo: an ack server answers each chunk it reads, "
           "so pipelined requests coalesce into fewer replies";
  if (c.pipeline > 1 && c.churn) return "--churn sends one request per connection: --pipeline must be 1";
  if ((c.pipeline + 1) * c.size > kMaxStream)
    return fmt::format("--pipeline x --size is too large (at most {} MiB in flight per connection)", kMaxStream >> 20);
  if (c.reply.empty() || c.reply.size() > kDefaultMaxLine) return "--reply must be 1..65536 bytes";
  if (c.protocol == ProtocolMode::line && c.reply.find('\n') != std::string::npos)
    return "--reply must not contain '\\n' in line mode";
  if (!finite_at_least(c.duration_s, 0)) return "--duration must be >= 0";
  if (c.requests == 0 && c.duration_s <= 0) return "--duration must be > 0 (or give --requests)";
  if (!finite_at_least(c.warmup_s, 0) || c.warmup_s > 3600) return "--warmup must be 0..3600 s";
  if (!finite_at_least(c.timeout_s, 0.001) || c.timeout_s > 3600) return "--timeout must be 0.001..3600 s";
  if (!finite_at_least(c.rate, 0) || c.rate > 1e9) return "--rate must be 0 (closed loop) .. 1e9 requests/s";
  if (!finite_at_least(c.spawn_timeout_s, 0.001)) return "spawn timeout must be > 0";
  if (c.server_cpu < 0 || c.load_cpu < 0) return "--server-cpu and --load-cpu must be >= 0";
  return std::nullopt;
}

std::optional<std::string> check_fd_budget(const BenchConfig& c, long soft_limit) {
  const std::size_t need = c.connections + c.idle + kSpareFds + static_cast<std::size_t>(c.threads);
  if (soft_limit < 0 || need <= static_cast<std::size_t>(soft_limit)) return std::nullopt;
  const long most = soft_limit - static_cast<long>(kSpareFds) - c.threads;
  return fmt::format(
      "--connections {} + --idle {} need about {} file descriptors, but RLIMIT_NOFILE allows {} "
      "(already raised to the hard limit); use at most {} connections in total, or raise the hard "
      "limit (ulimit -Hn, /etc/security/limits.conf)",
      c.connections, c.idle, need, soft_limit, most > 0 ? most : 0);
}

std::string make_request(const BenchConfig& c) {
  std::string req(c.size, 'x');
  // Position-dependent bytes, so an echo that drops, repeats or reorders bytes is caught.
  for (std::size_t i = 0; i < c.size; ++i) req[i] = static_cast<char>('a' + i % 26);
  if (c.protocol == ProtocolMode::line) req.back() = '\n';
  return req;
}

std::string expected_reply(const BenchConfig& c) {
  switch (c.protocol) {
    case ProtocolMode::ack:
      return c.reply;
    case ProtocolMode::line:
      return c.reply + "\r\n";
    case ProtocolMode::echo:
      return make_request(c);
  }
  return c.reply;
}

LatencySummary summarize(const LatencyHistogram& h) {
  LatencySummary s;
  auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  s.p50_us = us(h.percentile(50));
  s.p90_us = us(h.percentile(90));
  s.p99_us = us(h.percentile(99));
  s.p999_us = us(h.percentile(99.9));
  s.max_us = us(h.max());
  s.mean_us = h.mean() / 1000.0;
  return s;
}

int BenchResult::exit_code() const noexcept {
  return (errors > 0 || requests == 0) ? 1 : 0;
}

std::string describe_target(const BenchConfig& c) {
  if (!c.model.empty()) return c.model;
  if (!c.spawn_command.empty()) return "spawn:" + c.spawn_command;
  return c.target;
}

}  // namespace iomux::loadgen
