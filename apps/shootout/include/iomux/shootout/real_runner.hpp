// Running the real-servers plan (real_servers.hpp): for every runnable cell, `repeat` passes,
// round-robin over the servers. One run:
//
//   pick a free port -> write the server's config -> start it on CPU 0 -> probe it (PING, or
//   GET /plaintext: the right answer, not just an open port) -> [GET loads: seed the key] ->
//   server CPU ticks -> the tool on CPU 1, to its end -> server CPU ticks -> stop the server
//
// so the server's CPU time covers the tool's run and nothing else of the server's life.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "iomux/shootout/real_servers.hpp"

namespace iomux::shootout {

struct RealRunRecord {
  std::size_t cell = 0;        // index into RealPlan::cells
  int repeat = 1;              // 1-based pass number
  std::string status;          // "ok", "errors" (measured, but the tool saw errors), "failed"
  std::string error;           // why, for "errors" and "failed"
  std::string server_command;  // exact command lines, for reproducing the run
  std::string tool_command;
  std::uint64_t requests = 0;  // answered requests the tool counted
  std::optional<double> rps;   // as the tool reports it
  double tool_wall_s = 0;
  std::optional<double> server_cpu_s;   // user + system over the tool's run
  std::optional<double> server_user_s;  // of which user space
  std::optional<double> server_cpu_us_per_req;
  std::optional<double> server_cpu_pct;  // of one core, over the tool's run
  std::optional<double> tool_cpu_pct;    // the tool's own CPU (from wait4), of one core
  std::optional<long> server_threads;
  nlohmann::json tool = nullptr;  // the parsed report (tool_output.hpp)
  double wall_s = 0;              // the whole run: config to stop
};

// What a tool run left behind, as the runner collects it.
struct ToolRun {
  int exit_code = 0;  // the exit status; -1 if killed by a signal
  bool timed_out = false;
  bool cancelled = false;
  std::string out, err;  // stdout, stderr
  double wall_s = 0;
  double cpu_s = 0;  // the tool's own user + system time
};

// The server's CPU time over the tool's run (its process tree, /proc/PID/stat).
struct ServerCpu {
  double user_s = 0, sys_s = 0;
  [[nodiscard]] double total_s() const noexcept { return user_s + sys_s; }
};

// Reads the tool's report into `rec` (requests, rps, tool, status, error) and, with the server's
// CPU time over the run, the CPU per request. IO-free.
void read_tool_run(const RealSection& section, const RealLoad& load, const ToolRun& tool,
                   std::optional<ServerCpu> server_cpu, RealRunRecord& rec);

struct RealShootoutRun {
  std::vector<RealRunRecord> runs;
  std::string started_at, finished_at;
  double elapsed_s = 0;
  std::string loadavg_start, loadavg_end;
  int passes_started = 0;
  std::size_t skipped_for_budget = 0;
  bool cancelled = false;
  bool pinned = false;
  std::map<std::string, std::string> versions;  // program -> its version line
  std::vector<std::string> notes;
};

struct RealRunOptions {
  bool pin = true;
  const std::atomic<bool>* cancel = nullptr;
  std::string iomux_exe;                                             // empty: this executable
  std::function<void(const std::string&)> on_line;                   // one line per run
  std::function<void(const std::vector<RealRunRecord>&)> on_record;  // after each run
};

RealShootoutRun run_real_servers(const RealPlan& plan, const RealRunOptions& opts);

}  // namespace iomux::shootout
