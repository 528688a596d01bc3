// Running a shootout plan: every runnable cell once per pass, `repeat` passes, each run a fresh
// server spawned through the load generator (iomux/loadgen/bench.hpp), pinned to CPU 0 with the
// load on CPU 1. Repeats run as passes over the whole matrix rather than back to back, so a burst
// of load from elsewhere on the machine hits one repeat of many cells instead of every repeat of
// one cell, and the median sees through it.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "iomux/shootout/plan.hpp"

namespace iomux::shootout {

struct RunRecord {
  std::size_t cell = 0;   // index into Plan::cells
  int repeat = 1;         // 1-based pass number
  std::string status;     // "ok", "errors" (some requests failed), "failed" (nothing answered / no server)
  std::string error;      // why, for "errors" and "failed"
  nlohmann::json result;  // loadgen::to_json of the run; null when run_bench threw
  double wall_s = 0;      // the whole run: spawn to stop
};

struct RunOptions {
  bool pin = true;
  const std::atomic<bool>* cancel = nullptr;                     // set to stop after (or during) the current run
  std::function<void(const std::string&)> on_line;               // one line per run (stderr)
  std::function<void(const std::vector<RunRecord>&)> on_record;  // after each run (rewrite results.json)
};

struct ShootoutRun {
  std::vector<RunRecord> runs;
  std::string started_at, finished_at;  // ISO 8601, local time
  double elapsed_s = 0;
  std::string loadavg_start, loadavg_end;  // /proc/loadavg's first three fields
  int passes_started = 0;
  std::size_t skipped_for_budget = 0;  // runs of later passes left out by the time budget
  bool cancelled = false;
};

ShootoutRun run_shootout(const Plan& plan, const RunOptions& opts);

// Local time in ISO 8601, and /proc/loadavg's first three fields: the frame of a report.
std::string now_iso();
std::string loadavg_text();

// "epoll  ack64  c=100 idle=1,000": the cell in progress lines.
std::string describe_cell(const Plan& plan, const Cell& cell);

}  // namespace iomux::shootout
