// Reports: JSON (one object), CSV (header + row), human-readable text, the progress line.
#include <cmath>

#include <fmt/format.h>

#include "iomux/loadgen/bench.hpp"

namespace iomux::loadgen {
namespace {

double round_to(double v, int digits) {
  const double f = std::pow(10.0, digits);
  return std::round(v * f) / f;
}

template <typename T>
nlohmann::json opt(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

std::string csv_field(std::string_view s) {
  if (s.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

template <typename T>
std::string csv_opt(const std::optional<T>& v, int digits = 3) {
  if (!v) return "";
  if constexpr (std::is_floating_point_v<T>)
    return fmt::format("{:.{}f}", *v, digits);
  else
    return fmt::format("{}", *v);
}

// 1234567 -> "1,234,567"
std::string grouped(std::uint64_t v) {
  const std::string digits = std::to_string(v);
  std::string out;
  out.reserve(digits.size() + digits.size() / 3);
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string duration_us(double us) {
  if (us >= 1e6) return fmt::format("{:.2f} s", us / 1e6);
  if (us >= 1e3) return fmt::format("{:.2f} ms", us / 1e3);
  return fmt::format("{:.1f} us", us);
}

}  // namespace

nlohmann::json to_json(const BenchConfig& cfg, const BenchResult& r) {
  const LatencySummary l = summarize(r.latency);
  nlohmann::json j;
  j["model"] = cfg.model.empty() ? nlohmann::json(nullptr) : nlohmann::json(cfg.model);
  j["spawn"] = cfg.spawn_command.empty() ? nlohmann::json(nullptr) : nlohmann::json(cfg.spawn_command);
  j["target"] = r.target.empty() ? cfg.target : r.target;
  j["protocol"] = std::string(to_string(cfg.protocol));
  j["connections"] = cfg.connections;
  j["idle"] = cfg.idle;
  j["size"] = cfg.size;
  j["pipeline"] = cfg.pipeline;
  j["rate"] = cfg.rate;
  j["churn"] = cfg.churn;
  j["threads"] = cfg.threads;
  j["warmup_s"] = cfg.warmup_s;
  j["duration_s"] = round_to(r.measured_s, 6);
  j["connect_s"] = round_to(r.connect_s, 3);
  j["requests"] = r.requests;
  j["errors"] = r.errors;
  j["timeouts"] = r.timeouts;
  j["resets"] = r.resets;
  j["mismatches"] = r.mismatches;
  j["closed"] = r.closed;
  j["connect_failures"] = r.connect_failures;
  j["connections_open"] = r.connections_open;
  j["idle_open"] = r.idle_open;
  j["idle_lost"] = r.idle_lost;
  j["rps"] = round_to(r.rps, 1);
  j["mib_s"] = round_to(r.mib_s, 3);
  j["latency_us"] = {{"p50", round_to(l.p50_us, 3)}, {"p90", round_to(l.p90_us, 3)},
                     {"p99", round_to(l.p99_us, 3)}, {"p999", round_to(l.p999_us, 3)},
                     {"max", round_to(l.max_us, 3)}, {"mean", round_to(l.mean_us, 3)}};
  j["client_cpu_pct"] = round_to(r.client_cpu_pct, 1);
  j["server_pid"] = opt(r.server_pid);
  j["server_cpu_us_per_req"] =
      r.server_cpu_us_per_req ? nlohmann::json(round_to(*r.server_cpu_us_per_req, 4)) : nlohmann::json(nullptr);
  j["server_cpu_pct"] = r.server_cpu_pct ? nlohmann::json(round_to(*r.server_cpu_pct, 1)) : nlohmann::json(nullptr);
  j["server_rss_kib"] = opt(r.server_rss_kib);
  j["server_threads"] = opt(r.server_threads);
  j["gave_up"] = r.gave_up;
  j["cancelled"] = r.cancelled;
  j["notes"] = r.notes;
  return j;
}

std::string csv_header() {
  return "target,protocol,connections,idle,size,pipeline,rate,churn,threads,duration_s,requests,errors,"
         "timeouts,resets,mismatches,closed,connect_failures,rps,mib_s,p50_us,p90_us,p99_us,p999_us,max_us,"
         "mean_us,client_cpu_pct,server_cpu_us_per_req,server_cpu_pct,server_rss_kib";
}

std::string csv_row(const BenchConfig& cfg, const BenchResult& r) {
  const LatencySummary l = summarize(r.latency);
  return fmt::format(
      "{},{},{},{},{},{},{},{},{},{:.3f},{},{},{},{},{},{},{},{:.1f},{:.3f},{:.3f},{:.3f},{:.3f},{:.3f},{:.3f},{:.3f},"
      "{:.1f},{},{},{}",
      csv_field(describe_target(cfg)), to_string(cfg.protocol), cfg.connections, cfg.idle, cfg.size, cfg.pipeline,
      cfg.rate, cfg.churn ? 1 : 0, cfg.threads, r.measured_s, r.requests, r.errors, r.timeouts, r.resets, r.mismatches,
      r.closed, r.connect_failures, r.rps, r.mib_s, l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us, l.mean_us,
      r.client_cpu_pct, csv_opt(r.server_cpu_us_per_req, 4), csv_opt(r.server_cpu_pct, 1), csv_opt(r.server_rss_kib));
}

std::string format_text(const BenchConfig& cfg, const BenchResult& r) {
  const LatencySummary l = summarize(r.latency);
  std::string out;
  auto line = [&out](std::string s) {
    out += s;
    out += '\n';
  };
  std::string what = fmt::format("{} ({}), {} connection{}", describe_target(cfg), r.target, cfg.connections,
                                 cfg.connections == 1 ? "" : "s");
  if (cfg.idle) what += fmt::format(" + {} idle", cfg.idle);
  what += fmt::format(", {} protocol, {} B requests", to_string(cfg.protocol), cfg.size);
  if (cfg.pipeline > 1) what += fmt::format(", pipeline {}", cfg.pipeline);
  if (cfg.churn) what += ", new connection per request";
  if (cfg.rate > 0) what += fmt::format(", open loop at {:g} req/s", cfg.rate);
  if (cfg.threads > 1) what += fmt::format(", {} load threads", cfg.threads);
  line("bench: " + what);
  line(fmt::format("  requests    {} in {:.2f} s (warmup {:g} s not counted)", grouped(r.requests), r.measured_s,
                   cfg.warmup_s));
  line(fmt::format("  throughput  {} req/s, {:.2f} MiB/s", grouped(static_cast<std::uint64_t>(std::llround(r.rps))),
                   r.mib_s));
  if (r.latency.count() > 0)
    line(fmt::format("  latency     p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {}", duration_us(l.p50_us),
                     duration_us(l.p90_us), duration_us(l.p99_us), duration_us(l.p999_us), duration_us(l.max_us),
                     duration_us(l.mean_us)));
  else
    line("  latency     (no requests completed)");
  line(
      fmt::format("  errors      {} (timeouts {}, resets {}, wrong bytes {}, closed by server {}); connect "
                  "failures {}",
                  r.errors, r.timeouts, r.resets, r.mismatches, r.closed, r.connect_failures));
  line(fmt::format("  client CPU  {:.1f} %; connections opened in {:.2f} s", r.client_cpu_pct, r.connect_s));
  if (r.server_pid) {
    std::string s = fmt::format("  server      pid {}", *r.server_pid);
    if (r.server_cpu_us_per_req) s += fmt::format(", {:.3f} us CPU/request", *r.server_cpu_us_per_req);
    if (r.server_cpu_pct) s += fmt::format(", CPU {:.1f} %", *r.server_cpu_pct);
    if (r.server_rss_kib) s += fmt::format(", RSS {} KiB", grouped(*r.server_rss_kib));
    if (r.server_threads) s += fmt::format(", {} thread{}", *r.server_threads, *r.server_threads == 1 ? "" : "s");
    line(s);
  }
  for (const auto& n : r.notes) line("  note: " + n);
  if (r.cancelled) line("  note: interrupted; the numbers cover the time until then");
  return out;
}

std::string format_progress(const Progress& p) {
  return fmt::format("{:6.1f}s {} {:>10} req/s  p99 {:>10}  errors {}", p.elapsed_s, p.warming_up ? "warmup" : "      ",
                     grouped(static_cast<std::uint64_t>(std::llround(p.interval_rps))),
                     p.warming_up || p.requests == 0 ? std::string("-") : duration_us(p.p99_us), p.errors);
}

}  // namespace iomux::loadgen
