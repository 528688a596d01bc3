#include "iomux/shootout/runner.hpp"
#include "iomux/shootout/text.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>

#include <fmt/format.h>

#include "iomux/loadgen/bench.hpp"

namespace iomux::shootout {
namespace {

using Clock = std::chrono::steady_clock;

// Single-quoted for /bin/sh.
std::string shell_quote(const std::string& s) {
  if (!s.empty() &&
      s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./+:=") == std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

loadgen::BenchConfig make_config(const Plan& plan, const Cell& cell, bool pin) {
  const ServerSpec& server = plan.servers[cell.server];
  const Workload& w = workloads()[cell.workload];
  loadgen::BenchConfig cfg;
  if (server.peer)
    cfg.spawn_command =
        fmt::format("{} --port 0 --host 127.0.0.1 --protocol {}", shell_quote(server.peer_path), to_string(w.protocol));
  else
    cfg.model = server.name;
  cfg.pin = pin;
  cfg.server_cpu = 0;
  cfg.load_cpu = 1;
  cfg.protocol = w.protocol;
  cfg.size = w.size;
  cfg.connections = cell.connections;
  cfg.idle = cell.idle;
  cfg.warmup_s = cell.warmup_s;
  cfg.duration_s = cell.duration_s;
  cfg.threads = 1;
  return cfg;
}

// Classifies a finished run: what went wrong, if anything, in one line.
void classify(const loadgen::BenchConfig& cfg, const loadgen::BenchResult& r, RunRecord& rec) {
  std::vector<std::string> what;
  if (r.errors > 0) {
    std::vector<std::string> kinds;
    if (r.closed) kinds.push_back(grouped(r.closed) + " closed by server");
    if (r.resets) kinds.push_back(grouped(r.resets) + " resets");
    if (r.timeouts) kinds.push_back(grouped(r.timeouts) + " timeouts");
    if (r.mismatches) kinds.push_back(grouped(r.mismatches) + " wrong replies");
    what.push_back(fmt::format("{} failed requests ({})", grouped(r.errors), fmt::join(kinds, ", ")));
  }
  if (r.connections_open < cfg.connections)
    what.push_back(
        fmt::format("{} of {} connections established", grouped(r.connections_open), grouped(cfg.connections)));
  if (r.idle_open < cfg.idle)
    what.push_back(fmt::format("{} of {} idle connections established", grouped(r.idle_open), grouped(cfg.idle)));
  if (r.idle_lost > 0) what.push_back(fmt::format("{} idle connections closed by server", grouped(r.idle_lost)));
  if (r.gave_up) what.push_back("gave up: no reply for a long time");
  if (!r.server_exit.empty()) what.push_back("server " + r.server_exit);
  if (r.requests == 0) {
    rec.status = "failed";
    rec.error = what.empty() ? fmt::format("no request completed within the run ({:g} s warmup + {:g} s)", cfg.warmup_s,
                                           cfg.duration_s)
                             : "no request completed: " + fmt::format("{}", fmt::join(what, "; "));
  } else if (!what.empty()) {
    rec.status = "errors";
    rec.error = fmt::format("{}", fmt::join(what, "; "));
  } else {
    rec.status = "ok";
  }
}

std::string short_number(double v) {
  if (v >= 1e6) return fmt::format("{:.2f}M", v / 1e6);
  if (v >= 1e4) return fmt::format("{:.1f}k", v / 1e3);
  return fmt::format("{:.0f}", v);
}

std::string outcome_line(const RunRecord& rec) {
  if (rec.result.is_null()) return "FAILED: " + first_line(rec.error);
  const auto& j = rec.result;
  std::string s = fmt::format("{:>8} req/s", short_number(j.value("rps", 0.0)));
  if (j.contains("server_cpu_us_per_req") && !j["server_cpu_us_per_req"].is_null())
    s += fmt::format("  {:6.2f} us/req", j["server_cpu_us_per_req"].get<double>());
  s += fmt::format("  p99 {:.0f} us", j["latency_us"].value("p99", 0.0));
  if (rec.status == "failed")
    s += "  FAILED: " + rec.error;
  else if (rec.status == "errors")
    s += "  ! " + rec.error;
  return s;
}

}  // namespace

std::string now_iso() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", &tm);
  return buf;
}

std::string loadavg_text() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  if (!(f >> a >> b >> c)) return "?";
  return a + " " + b + " " + c;
}

std::string describe_cell(const Plan& plan, const Cell& cell) {
  return fmt::format("{:<20} {:<8} c={:<6} idle={}", plan.servers[cell.server].label(), workloads()[cell.workload].key,
                     cell.connections, cell.idle);
}

ShootoutRun run_shootout(const Plan& plan, const RunOptions& opts) {
  ShootoutRun out;
  out.started_at = now_iso();
  out.loadavg_start = loadavg_text();
  const auto t0 = Clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  auto cancelled = [&] { return opts.cancel && opts.cancel->load(); };

  std::size_t runnable = 0;
  for (const Cell& c : plan.cells) runnable += c.runnable() ? 1 : 0;
  const std::size_t planned = runnable * static_cast<std::size_t>(plan.repeat);
  std::vector<bool> dead(plan.cells.size(), false);  // failed outright: not repeated
  double estimated_done = 0, actual_done = 0;        // to calibrate the budget check
  std::size_t started = 0;

  for (int pass = 1; pass <= plan.repeat && !cancelled(); ++pass) {
    out.passes_started = pass;
    for (std::size_t i = 0; i < plan.cells.size() && !cancelled(); ++i) {
      const Cell& cell = plan.cells[i];
      if (!cell.runnable() || dead[i]) continue;
      // Pass 1 always runs, so every cell is measured once; later passes respect the budget,
      // with the estimate scaled by how far off the estimates have been so far.
      const double scale = estimated_done > 0 ? std::max(1.0, actual_done / estimated_done) : 1.0;
      if (pass > 1 && plan.budget_s > 0 && elapsed() + estimate_run_s(cell) * scale > plan.budget_s) {
        ++out.skipped_for_budget;
        continue;
      }
      ++started;
      const loadgen::BenchConfig cfg = make_config(plan, cell, opts.pin);
      RunRecord rec;
      rec.cell = i;
      rec.repeat = pass;
      loadgen::RunHooks hooks;
      hooks.cancel = opts.cancel;
      const auto r0 = Clock::now();
      try {
        const loadgen::BenchResult r = loadgen::run_bench(cfg, hooks);
        rec.result = loadgen::to_json(cfg, r);
        classify(cfg, r, rec);
      } catch (const loadgen::BenchError& e) {
        rec.status = "failed";
        rec.error = e.what();
        rec.result = nullptr;
      }
      rec.wall_s = std::chrono::duration<double>(Clock::now() - r0).count();
      estimated_done += estimate_run_s(cell);
      actual_done += rec.wall_s;
      if (cancelled()) {
        out.cancelled = true;
        break;  // a cancelled run is not a measurement
      }
      if (rec.status == "failed") dead[i] = true;
      if (opts.on_line) {
        const int secs = static_cast<int>(elapsed());
        opts.on_line(fmt::format("[{:>3}/{} {:>2}:{:02}] pass {}/{}  {}  {}{}", started, planned, secs / 60, secs % 60,
                                 pass, plan.repeat, describe_cell(plan, cell), outcome_line(rec),
                                 rec.status == "failed" && pass < plan.repeat ? " (not repeated)" : ""));
      }
      out.runs.push_back(std::move(rec));
      if (opts.on_record) opts.on_record(out.runs);
    }
  }
  out.cancelled = out.cancelled || cancelled();
  out.elapsed_s = elapsed();
  out.finished_at = now_iso();
  out.loadavg_end = loadavg_text();
  return out;
}

}  // namespace iomux::shootout
