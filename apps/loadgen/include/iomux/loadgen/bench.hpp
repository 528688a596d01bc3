// The load generator behind `iomux bench`, as a library the CLI and `iomux shootout` call.
//
//   iomux::loadgen::BenchConfig cfg;
//   cfg.model = "epoll";                  // or cfg.spawn_command, or cfg.target = "host:port"
//   cfg.protocol = iomux::ProtocolMode::line;
//   cfg.connections = 100;
//   if (auto why = iomux::loadgen::validate(cfg)) { ... }    // option errors, before any IO
//   auto result = iomux::loadgen::run_bench(cfg);             // throws BenchError on setup failure
//   std::cout << iomux::loadgen::to_json(cfg, result).dump() << '\n';
//
// The engine: each load thread owns a share of the connections and runs an edge-triggered epoll
// loop over non-blocking sockets. A request is one send of a prebuilt byte pattern; replies are
// read into one large buffer and compared byte for byte against the expected reply stream.
// Closed loop (default): each connection keeps `pipeline` requests in flight, latency measured
// from the send. Open loop (rate > 0): requests are scheduled at fixed intervals, round-robin
// over connections, and latency is measured from the scheduled time, so a stalled server shows
// up as latency instead of silently lowering the offered load (no coordinated omission).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "iomux/endpoint.hpp"
#include "iomux/loadgen/histogram.hpp"
#include "iomux/loadgen/protocol_mode.hpp"

namespace iomux::loadgen {

class BenchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct BenchConfig {
  // --- what to load: exactly one of spawn_command / model, else target ---
  std::string target = "127.0.0.1:7890";
  std::string spawn_command;             // a shell command that prints `listening on H:P`
  std::string model;                     // spawn `<iomux> serve --model M ...`
  std::vector<std::string> server_args;  // appended to the `serve` command line (model only)
  std::string iomux_exe;                 // empty = this executable
  double spawn_timeout_s = 10;
  // CPU pinning, applied only when the server is spawned: server on server_cpu, load thread i
  // on load_cpu + i (skipping server_cpu, wrapping over the usable CPUs).
  bool pin = true;
  int server_cpu = 0;
  int load_cpu = 1;

  // --- the workload ---
  ProtocolMode protocol = ProtocolMode::ack;
  std::string reply{kDefaultReply};  // what the server answers (line mode adds "\r\n")
  std::size_t connections = 10;      // active connections (concurrent slots with churn)
  std::size_t idle = 0;              // extra connections that stay silent
  std::size_t size = 64;             // request bytes on the wire (line: payload + '\n')
  std::size_t pipeline = 1;          // requests in flight per connection
  double rate = 0;                   // requests/s in total; 0 = closed loop
  bool churn = false;                // a new connection per request
  double duration_s = 5;             // measured time; with requests > 0 a cap (0 = none)
  std::uint64_t requests = 0;        // stop after this many measured requests; 0 = use duration
  double warmup_s = 1;
  double timeout_s = 5;  // per request (and per connect)
  int threads = 1;

  [[nodiscard]] bool spawns() const noexcept { return !spawn_command.empty() || !model.empty(); }
};

// Checks the options alone (no IO). Returns the first problem as a message for the user.
std::optional<std::string> validate(const BenchConfig& cfg);
// File descriptors a run needs besides the connections (epoll, pipes, stdio...).
inline constexpr std::size_t kSpareFds = 64;
// Checks that connections + idle fit in the fd limit `soft_limit`; a message if not.
std::optional<std::string> check_fd_budget(const BenchConfig& cfg, long soft_limit);

// The bytes of one request and of the reply expected for it.
std::string make_request(const BenchConfig& cfg);
std::string expected_reply(const BenchConfig& cfg);

struct LatencySummary {
  double p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0, mean_us = 0;
};
LatencySummary summarize(const LatencyHistogram& h);

struct BenchResult {
  std::string target;               // the address connected to, "127.0.0.1:41234"
  std::optional<pid_t> server_pid;  // when spawned
  std::string server_command;

  std::size_t connections_open = 0;  // active connections established at the start
  std::size_t idle_open = 0;
  std::size_t idle_lost = 0;  // idle connections the server closed (or wrote to)

  std::uint64_t requests = 0;      // fully answered, checked, in the measured interval
  std::uint64_t all_requests = 0;  // including warmup
  // Failed requests (every request in flight on a failed connection counts once):
  std::uint64_t errors = 0;  // = timeouts + resets + mismatches + closed
  std::uint64_t timeouts = 0;
  std::uint64_t resets = 0;            // ECONNRESET, EPIPE and other socket errors
  std::uint64_t mismatches = 0;        // wrong or unexpected reply bytes
  std::uint64_t closed = 0;            // the server closed an active connection
  std::uint64_t connect_failures = 0;  // failed connects (setup and reconnects)

  double connect_s = 0;  // opening the connections, before the load started
  double measured_s = 0;
  double rps = 0;
  double mib_s = 0;  // request + reply payload bytes, both directions
  std::uint64_t bytes_out = 0;
  std::uint64_t bytes_in = 0;
  LatencyHistogram latency;   // ns, measured requests only
  double client_cpu_pct = 0;  // load threads' user+sys CPU / wall, 100 = one core

  std::optional<double> server_cpu_us_per_req;
  std::optional<double> server_cpu_pct;
  std::optional<std::uint64_t> server_rss_kib;
  std::optional<long> server_threads;
  std::string server_exit;  // e.g. "exited with status 1" if it died during the run

  bool gave_up = false;            // stopped early: no reply for a long time
  bool cancelled = false;          // stopped early by RunHooks::cancel
  std::vector<std::string> notes;  // for the user (pinning skipped, ...)

  // 0 when requests completed without errors; 1 otherwise.
  [[nodiscard]] int exit_code() const noexcept;
};

struct Progress {
  double elapsed_s = 0;  // since the load started (warmup included)
  bool warming_up = false;
  double interval_rps = 0;     // over the last interval
  std::uint64_t requests = 0;  // measured so far
  std::uint64_t errors = 0;
  double p99_us = 0;  // measured so far (worst over the load threads)
};

struct RunHooks {
  std::function<void(const Progress&)> on_progress;  // called about once a second
  const std::atomic<bool>* cancel = nullptr;         // set it to stop the run early (e.g. SIGINT)
};

// Runs one benchmark: spawns the server if asked (and stops it at the end), raises the fd
// limit, connects, warms up, measures, reports. Throws BenchError for invalid options and setup
// failures (server did not start, nothing could connect, fd limit too low).
BenchResult run_bench(const BenchConfig& cfg, const RunHooks& hooks = {});
// The same against a server already running at `ep`; server_pid (optional) is measured.
BenchResult run_bench_at(const BenchConfig& cfg, const Endpoint& ep, std::optional<pid_t> server_pid,
                         const RunHooks& hooks = {});

// Reports.
nlohmann::json to_json(const BenchConfig& cfg, const BenchResult& r);
std::string csv_header();
std::string csv_row(const BenchConfig& cfg, const BenchResult& r);
std::string format_text(const BenchConfig& cfg, const BenchResult& r);
std::string format_progress(const Progress& p);
// "epoll", "spawn:CMD" or the host:port target.
std::string describe_target(const BenchConfig& cfg);

}  // namespace iomux::loadgen
