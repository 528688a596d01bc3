// A finished run's figures: the workers' counts and latency histograms summed, requests/s and
// MiB/s over the measured interval (which ends early if the workers did), the load threads' and
// the server's CPU, and the notes that explain anything unusual about the run.
#include <algorithm>

#include <fmt/format.h>

#include "coordinator.hpp"

namespace iomux::loadgen::engine {

BenchResult merge_results(const BenchConfig& cfg, const Plan& plan, const Crew& crew, const Watched& watched,
                          std::optional<pid_t> server_pid, std::vector<std::string> notes) {
  const Timeline& tl = crew.shared.tl;
  BenchResult r;
  r.server_pid = server_pid;
  r.notes = std::move(notes);
  std::int64_t finish = 0;
  std::int64_t cpu_ns = 0;
  std::string first_mismatch;
  for (const auto& w : crew.workers) {
    const WorkerOut& o = w->out;
    r.latency.merge(o.latency);
    r.requests += o.measured;
    r.all_requests += o.all_completed;
    r.timeouts += o.timeouts;
    r.resets += o.resets;
    r.mismatches += o.mismatches;
    r.closed += o.closed;
    r.connect_failures += o.connect_failures;
    r.connections_open += o.connections_open;
    r.idle_open += o.idle_open;
    r.idle_lost += o.idle_lost;
    r.gave_up = r.gave_up || o.gave_up;
    cpu_ns += o.cpu_ns;
    if (!o.first_mismatch.empty() && first_mismatch.empty()) first_mismatch = o.first_mismatch;
    finish = std::max(finish, o.finish);
  }
  if (cfg.churn) r.connections_open = cfg.connections;
  r.errors = r.timeouts + r.resets + r.mismatches + r.closed;
  const std::int64_t measure_end = std::min(finish, tl.end);
  const std::int64_t measured_ns = std::max<std::int64_t>(0, measure_end - tl.measure_start);
  r.measured_s = static_cast<double>(measured_ns) / 1e9;
  if (measured_ns > 0) {
    r.rps = static_cast<double>(r.requests) / r.measured_s;
    r.bytes_out = r.requests * plan.req_size;
    r.bytes_in = r.requests * plan.reply.size();
    r.mib_s = static_cast<double>(r.bytes_out + r.bytes_in) / (1024.0 * 1024.0) / r.measured_s;
    r.client_cpu_pct = static_cast<double>(cpu_ns) * 100.0 / static_cast<double>(measured_ns);
  }
  if (server_pid) {
    const ServerSamples& s = watched.server;
    if (s.start && s.start->processes > 0 && s.end && s.end_ns > s.start_ns) {
      const std::uint64_t a = s.start->total.cpu_ticks();
      const std::uint64_t b = s.end->total.cpu_ticks();
      const double us = ticks_to_us(b >= a ? b - a : 0);
      if (r.requests > 0) r.server_cpu_us_per_req = us / static_cast<double>(r.requests);
      r.server_cpu_pct = us * 100.0 / (static_cast<double>(s.end_ns - s.start_ns) / 1000.0);
      r.server_threads = s.end->total.num_threads;
      if (s.end->processes > 1)
        r.notes.push_back(fmt::format("the server was measured as {} processes (pid {} and its descendants)",
                                      s.end->processes, *server_pid));
      if (s.end->total.state == 'Z' || s.end->total.state == 'X') r.notes.push_back("the server exited during the run");
    }
    r.server_rss_kib = s.rss_kib;
  }
  if (!first_mismatch.empty()) r.notes.push_back("first mismatch: " + first_mismatch);
  if (cfg.protocol == ProtocolMode::ack && cfg.size > 16 * 1024)
    r.notes.push_back(
        "ack mode with large requests: a server that reads a request in several chunks answers "
        "each chunk, and the extra replies count as wrong bytes (use echo or line)");
  if (r.gave_up)
    r.notes.push_back(fmt::format("stopped early: no reply for {:g} s although requests were outstanding",
                                  static_cast<double>(plan.give_up_ns) / 1e9));
  if (r.idle_lost > 0) r.notes.push_back(fmt::format("{} idle connections were closed by the server", r.idle_lost));
  return r;
}

}  // namespace iomux::loadgen::engine
