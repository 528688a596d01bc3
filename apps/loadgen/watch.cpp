// The coordinator while the load runs: it waits for the workers, prints the progress line
// about once a second (from the numbers each worker publishes on its tick), and samples the
// spawned server's process tree when the measured interval begins and when it ends, for the
// server's CPU per request and its resident memory.
#include <algorithm>
#include <chrono>
#include <thread>

#include "coordinator.hpp"

namespace iomux::loadgen::engine {

Watched watch(const Crew& crew, std::optional<pid_t> server_pid, const RunHooks& hooks) {
  const Timeline& tl = crew.shared.tl;
  Watched w;
  ServerSamples& server = w.server;
  // The server is sampled as a process tree (a shell wrapper, pre-forked workers).
  bool end_sampled = false;
  auto sample_end = [&] {
    if (!server_pid || end_sampled) return;
    end_sampled = true;
    server.end = read_tree_stat(*server_pid);
    server.end_ns = now_ns();
    if (server.end) server.rss_kib = read_tree_rss_kib(server.end->pids);
  };
  std::int64_t next_progress = tl.t0 + kNsPerSec;
  std::uint64_t last_all = 0;
  std::int64_t last_progress_ns = tl.t0;
  for (;;) {
    const std::int64_t now = now_ns();
    if (server_pid && !server.start && now >= tl.measure_start) {
      server.start = read_tree_stat(*server_pid);
      server.start_ns = now_ns();
      if (!server.start) server.start.emplace();  // gone: sampled (as nothing) all the same
    }
    bool all_done = true;
    for (const auto& l : crew.live) all_done = all_done && l->done.load(std::memory_order_acquire);
    if (now >= tl.end) sample_end();
    if (all_done) break;
    if (hooks.cancel && hooks.cancel->load()) w.cancelled = true;
    if (hooks.on_progress && now >= next_progress) {
      Progress p;
      p.elapsed_s = static_cast<double>(now - tl.t0) / 1e9;
      p.warming_up = now < tl.measure_start;
      std::uint64_t all = 0;
      std::uint64_t p99 = 0;
      for (const auto& l : crew.live) {
        all += l->all_completed.load(std::memory_order_relaxed);
        p.requests += l->measured.load(std::memory_order_relaxed);
        p.errors += l->errors.load(std::memory_order_relaxed);
        p99 = std::max(p99, l->p99_ns.load(std::memory_order_relaxed));
      }
      p.interval_rps = static_cast<double>(all - last_all) * 1e9 / static_cast<double>(now - last_progress_ns);
      p.p99_us = static_cast<double>(p99) / 1000.0;
      last_all = all;
      last_progress_ns = now;
      hooks.on_progress(p);
      next_progress += kNsPerSec;
      if (next_progress <= now) next_progress = now + kNsPerSec;
    }
    // Nothing to wait on but the clock: the next sample or progress line, or a look at the
    // workers' done flags every 50 ms.
    std::int64_t wake = now + 50'000'000;
    if (server_pid && !server.start) wake = std::min(wake, tl.measure_start);
    if (server_pid && !end_sampled) wake = std::min(wake, tl.end);
    if (hooks.on_progress) wake = std::min(wake, next_progress);
    if (wake > now) std::this_thread::sleep_for(std::chrono::nanoseconds(wake - now));
  }
  sample_end();
  return w;
}

}  // namespace iomux::loadgen::engine
