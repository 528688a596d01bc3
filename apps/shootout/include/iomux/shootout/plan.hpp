// What `iomux shootout` measures: the servers (iomux models and peer servers), the workloads and
// the slices of the connections x idle x workload matrix, expanded into cells.
//
// The full cross product (5 connection counts x 3 idle counts x 3 workloads x ~14 servers x 3
// repeats) takes hours, so the default plan measures slices of it:
//   conns    a connections sweep at 0 idle connections, for each workload;
//   idle     an idle sweep at 100 active connections, 64 B ack;
//   idle15k  100 active + 15,000 idle, for the scalable servers only (epoll, uring, the floor).
// A cell is one (server, workload, connections, idle) point; the same point reached by two
// slices is one cell. Cells a server cannot take are kept in the plan with the reason, so the
// report shows them ("n/a: serves one client at a time") instead of leaving holes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "iomux/loadgen/protocol_mode.hpp"

namespace iomux::shootout {

struct Workload {
  std::string key;    // "ack64": file names, JSON
  std::string title;  // "64 B ack": tables, charts
  ProtocolMode protocol;
  std::size_t size;
};
// 64 B ack, 64 B echo, 16 KiB echo.
const std::vector<Workload>& workloads();

struct ServerSpec {
  std::string name;  // model name ("epoll") or peer name without "peer_" ("floor_epoll")
  bool peer = false;
  std::string peer_path;  // the peer's executable
  bool one_client_at_a_time = false;

  // "epoll", or "libuv (peer)": tables and chart legends.
  [[nodiscard]] std::string label() const { return peer ? name + " (peer)" : name; }
};
// The peer every ratio is taken against.
inline constexpr const char* kFloorPeer = "floor_epoll";
// The whole command's default wall-clock budget in seconds (--budget): CI's 15 minutes with a
// margin, and the quick plan's 3 minutes. The matrix and the real servers share it.
inline constexpr double kDefaultBudgetS = 14.5 * 60, kQuickBudgetS = 3 * 60;

struct Slice {
  std::string key;           // "conns-ack64", "idle-ack64", "idle15k"
  std::string title;         // one line for the plan
  std::size_t workload = 0;  // index into workloads()
  std::vector<std::size_t> connections;
  std::vector<std::size_t> idle;
  std::vector<std::string> only_servers;  // empty: every server
};

struct Cell {
  std::size_t server = 0;    // index into Plan::servers
  std::size_t workload = 0;  // index into workloads()
  std::size_t connections = 0;
  std::size_t idle = 0;
  std::vector<std::string> slices;  // the slices that asked for this point
  double warmup_s = 0;
  double duration_s = 0;
  std::string skip;  // non-empty: not run, and why ("n/a: ...")

  [[nodiscard]] bool runnable() const noexcept { return skip.empty(); }
  [[nodiscard]] std::size_t open() const noexcept { return connections + idle; }
};

struct PlanOptions {
  bool quick = false;
  std::optional<std::vector<std::string>> models;  // --models; default: every available model
  std::optional<std::vector<std::string>> peers;   // --peers; default: every peer found
  std::string peers_dir;                           // empty: <dir of this executable>/bench/peers
  int repeat = 0;                                  // 0: 3 (quick: 1)
  std::optional<double> duration_s;                // measured seconds per run
  std::optional<double> warmup_s;
  std::optional<double> budget_s;  // wall-clock budget; 0 = none
  long fd_limit = -1;              // hard RLIMIT_NOFILE; -1: ask the kernel
};

struct Plan {
  bool quick = false;
  std::vector<ServerSpec> servers;
  std::vector<Slice> slices;
  std::vector<Cell> cells;
  int repeat = 3;
  double budget_s = 0;
  std::string peers_dir;
  std::vector<std::string> notes;  // models left out and why, peers not found, ...

  [[nodiscard]] std::optional<std::size_t> find_server(std::string_view name) const;
  [[nodiscard]] std::optional<std::size_t> find_cell(std::size_t server, std::size_t workload, std::size_t connections,
                                                     std::size_t idle) const;
};

class PlanError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Finds the servers and expands the slices. Throws PlanError for an unknown model or peer.
Plan make_plan(const PlanOptions& opts);

// Rough wall-clock cost of one run of `cell` (spawn, connect, warmup, measure, stop), seconds.
double estimate_run_s(const Cell& cell);
// Rough cost of the whole plan, every runnable cell `repeat` times.
double estimate_plan_s(const Plan& plan);

// The plan in a few lines of text (for --dry-run, stderr and summary.md).
std::string describe_plan(const Plan& plan);

// "1,234,567".
std::string grouped(std::uint64_t v);

}  // namespace iomux::shootout
