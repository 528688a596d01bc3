// The coordinator's side of a run (run_bench, run_bench_at), by job:
//   run.cpp       the orchestration: probe, plan, start the workers, check that they connected,
//                 go, watch, merge; and spawning the server for run_bench
//   run_plan.cpp  dividing the load: CPUs, the workers' shares, source ports, the Plan
//   watch.cpp     while the load runs: the progress line, samples of the server's CPU and memory
//   results.cpp   the workers' counts merged into one BenchResult, with its notes
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "iomux/loadgen/bench.hpp"
#include "iomux/loadgen/procfs.hpp"
#include "worker.hpp"

namespace iomux::loadgen::engine {

// ---- run_plan.cpp

struct CpuPlan {
  int server_cpu = -1;
  std::vector<int> load_cpus;  // one per load thread; empty = no pinning
};

// Where the server and each load thread run, when the server is spawned (`spawned`) and
// pinning is on; why not otherwise, in `notes`.
CpuPlan plan_cpus(const BenchConfig& cfg, bool spawned, std::vector<std::string>& notes);
// net.ipv4.ip_local_port_range, e.g. {32768, 60999}.
std::pair<int, int> local_port_range();
// What every worker does. `port_range` decides whether workers bind their source ports.
Plan make_plan(const BenchConfig& cfg, const Endpoint& ep, std::pair<int, int> port_range,
               std::vector<std::string>& notes);
// Each worker's part: connections, rate, budget, CPU, and its slice of `port_range` (none when
// the range is empty).
std::vector<WorkerShare> split(const BenchConfig& cfg, const CpuPlan& cpus, std::pair<int, int> port_range);

// ---- run.cpp

// The load threads of one run and what the coordinator shares with them. The destructor ends
// and joins the threads, whatever state the run is in (an error between start and go aborts).
class Crew {
 public:
  Crew(const Plan& plan, const std::vector<WorkerShare>& shares, const std::atomic<bool>* cancel);
  Crew(const Crew&) = delete;
  Crew& operator=(const Crew&) = delete;
  ~Crew();

  // Publishes the timeline and starts the load: warmup from now, then the measured interval.
  void go(const BenchConfig& cfg);
  // Tells the workers not to start (they have connected and wait for go).
  void abort();
  void join();

  Shared shared;
  std::vector<std::unique_ptr<LiveStats>> live;  // one per worker
  std::vector<std::unique_ptr<Worker>> workers;

 private:
  std::vector<std::thread> threads_;
};

// ---- watch.cpp

// The server's process tree as sampled at the start and the end of the measured interval.
struct ServerSamples {
  std::optional<TreeStat> start;
  std::int64_t start_ns = 0;
  std::optional<TreeStat> end;
  std::int64_t end_ns = 0;
  std::optional<std::uint64_t> rss_kib;
};

struct Watched {
  ServerSamples server;
  bool cancelled = false;
};

// Waits until every worker is done, calling hooks.on_progress about once a second and sampling
// the server (server_pid) when the measured interval begins and ends.
Watched watch(const Crew& crew, std::optional<pid_t> server_pid, const RunHooks& hooks);

// ---- results.cpp

// The result of a finished run: the workers' counts summed, rates over the measured interval,
// the server's CPU per request, and `notes` followed by what the run adds for the user.
BenchResult merge_results(const BenchConfig& cfg, const Plan& plan, const Crew& crew, const Watched& watched,
                          std::optional<pid_t> server_pid, std::vector<std::string> notes);

}  // namespace iomux::loadgen::engine
