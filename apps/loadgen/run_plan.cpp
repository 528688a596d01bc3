// Dividing a run's load before it starts: which CPUs the server and the load threads get, what
// every worker sends and expects (the Plan), each worker's share of the connections, rate and
// request budget, and whether workers pick their source ports themselves.
#include <sched.h>

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

#include "coordinator.hpp"

namespace iomux::loadgen::engine {

std::pair<int, int> local_port_range() {
  std::pair<int, int> r{32768, 60999};
  if (FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
    int lo = 0, hi = 0;
    if (std::fscanf(f, "%d %d", &lo, &hi) == 2 && lo > 0 && hi <= 65535 && lo <= hi) r = {lo, hi};
    std::fclose(f);
  }
  return r;
}

CpuPlan plan_cpus(const BenchConfig& cfg, bool spawned, std::vector<std::string>& notes) {
  CpuPlan p;
  if (!cfg.pin || !spawned) return p;
  const int ncpu = usable_cpu_count();
  if (ncpu < 2) {
    notes.push_back("only one CPU is usable: server and load generator are not pinned and share it");
    return p;
  }
  if (cfg.server_cpu == cfg.load_cpu) {
    notes.push_back(fmt::format("--server-cpu and --load-cpu are both {}: not pinning", cfg.server_cpu));
    return p;
  }
  if (!cpu_usable(cfg.server_cpu) || !cpu_usable(cfg.load_cpu)) {
    notes.push_back(fmt::format("CPU {} or {} is not usable here: not pinning", cfg.server_cpu, cfg.load_cpu));
    return p;
  }
  p.server_cpu = cfg.server_cpu;
  std::vector<int> usable;
  for (int c = 0; c < CPU_SETSIZE && static_cast<int>(usable.size()) < ncpu; ++c)
    if (cpu_usable(c)) usable.push_back(c);
  std::vector<int> order;  // load_cpu first, then the following usable CPUs, wrapping; never the server's
  const auto start = std::find(usable.begin(), usable.end(), cfg.load_cpu) - usable.begin();
  for (std::size_t k = 0; k < usable.size(); ++k) {
    const int c = usable[(static_cast<std::size_t>(start) + k) % usable.size()];
    if (c != p.server_cpu) order.push_back(c);
  }
  for (int t = 0; t < cfg.threads; ++t) p.load_cpus.push_back(order[static_cast<std::size_t>(t) % order.size()]);
  if (static_cast<std::size_t>(cfg.threads) > order.size())
    notes.push_back(fmt::format("{} load threads share {} CPU(s)", cfg.threads, order.size()));
  return p;
}

Plan make_plan(const BenchConfig& cfg, const Endpoint& ep, std::pair<int, int> port_range,
               std::vector<std::string>& notes) {
  Plan plan;
  plan.ep = ep;
  const std::string req = make_request(cfg);
  plan.req_size = req.size();
  for (std::size_t k = 0; k <= cfg.pipeline; ++k) plan.stream += req;
  plan.reply = expected_reply(cfg);
  plan.pipeline = static_cast<std::uint32_t>(cfg.pipeline);
  plan.churn = cfg.churn;
  plan.open_loop = cfg.rate > 0;
  plan.timeout_ns = seconds_to_ns(cfg.timeout_s);
  plan.give_up_ns = 2 * plan.timeout_ns + kNsPerSec;
  plan.connect_batch = std::max<std::size_t>(64, kConnectBatch / static_cast<std::size_t>(cfg.threads));

  // Past a quarter of the ephemeral range the kernel's port search starts to hurt (see
  // connect_bound); --churn keeps few sockets open and relies on the kernel (TIME_WAIT reuse).
  const std::size_t long_lived = (cfg.churn ? 0 : cfg.connections) + cfg.idle;
  const int range_size = port_range.second - port_range.first + 1;
  plan.bind_ports =
      range_size > 0 && long_lived > static_cast<std::size_t>(range_size) / 4 && range_size / cfg.threads >= 1024;
  if (long_lived + 16 > static_cast<std::size_t>(std::max(range_size, 0)))
    notes.push_back(
        fmt::format("{} connections to one address need more source ports than the {} of "
                    "net.ipv4.ip_local_port_range: expect connect failures",
                    long_lived, range_size));
  return plan;
}

std::vector<WorkerShare> split(const BenchConfig& cfg, const CpuPlan& cpus, std::pair<int, int> port_range) {
  const auto t = static_cast<std::size_t>(cfg.threads);
  std::vector<WorkerShare> shares(t);
  for (std::size_t w = 0; w < t; ++w) {
    WorkerShare& s = shares[w];
    s.active = cfg.connections / t + (w < cfg.connections % t ? 1 : 0);
    s.idle = cfg.idle / t + (w < cfg.idle % t ? 1 : 0);
    s.rate = cfg.rate * static_cast<double>(s.active) / static_cast<double>(cfg.connections);
    if (cfg.requests > 0) s.budget = cfg.requests / t + (w < cfg.requests % t ? 1 : 0);
    if (!cpus.load_cpus.empty()) s.cpu = cpus.load_cpus[w];
  }
  if (port_range.second > port_range.first) {
    const std::uint32_t lo = port_range.first;
    const std::uint32_t span = (port_range.second - port_range.first + 1) / static_cast<std::uint32_t>(t);
    for (std::size_t w = 0; w < t; ++w) {
      shares[w].port_lo = lo + static_cast<std::uint32_t>(w) * span;
      shares[w].port_hi = shares[w].port_lo + span - 1;
    }
  }
  // A worker with a zero budget would run unlimited: requests < threads is refused by validate()
  // only indirectly, so give such workers one request at least.
  for (auto& s : shares)
    if (cfg.requests > 0 && s.budget == 0) s.budget = 1;
  return shares;
}

}  // namespace iomux::loadgen::engine
