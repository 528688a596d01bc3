// The "real servers" part of `iomux shootout`: iomux's RESP and HTTP servers beside the servers
// every reader knows, each protocol loaded by its own community's benchmark tool:
//
//   resp  redis-server 7            vs `iomux serve --protocol resp`, loaded by redis-benchmark
//   http  nginx, h2o (one worker)   vs `iomux serve --protocol http`, loaded by wrk
//   proxy HAProxy, nginx `stream`   vs `iomux serve --protocol proxy`, each a TCP proxy in front
//         of one redis-server, loaded by redis-benchmark through the proxy
//
// A cell is one (server, load) point. Every run starts the server afresh on CPU 0, runs the tool
// once on CPU 1, and reads the server's CPU time (user + system, /proc/PID/stat) just before and
// just after it: server CPU per request = that difference / the requests the tool reports. In the
// proxy section the measured "server" is the proxy; its upstream redis-server runs on CPU 1 with
// the tool, so the proxy is alone on CPU 0 and none of redis-server's work is counted.
// Passes go round-robin over the servers (load by load, every server in turn), so a drift of the
// machine's speed hits every server alike instead of one server's runs.
//
// This header is the plan and the exact command lines and configuration files; it does no IO, so
// tests can check them (tests/unit/shootout_real_plan_test.cpp). real_runner.hpp runs a plan.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace iomux::shootout {

enum class RealProtocol { resp, http, proxy };

struct RealServer {
  std::string name;     // "redis-server", "nginx", "h2o", "haproxy", "nginx-stream", or a model
  bool iomux = false;   // `iomux serve --model <name> --protocol resp|http|proxy`
  std::string program;  // the executable found in PATH (not for iomux)
  std::string skip;     // non-empty: not measured, and why ("nginx not found: install nginx")

  // "iomux epoll", "redis-server": tables and chart legends.
  [[nodiscard]] std::string label() const { return iomux ? "iomux " + name : name; }
};

struct RealLoad {
  std::string key;    // "set-p16", "c100-pipe16": JSON keys, chart data
  std::string title;  // "SET -P 16", "-c 100 pipelined 16": tables
  int clients = 0;    // redis-benchmark -c / wrk -c
  // resp and proxy (redis-benchmark):
  std::string test;               // its test name: "PING_INLINE", "SET", "GET"
  int pipeline = 1;               // -P
  std::uint64_t requests = 0;     // -n, sized for a run of about 1-2 s
  std::uint64_t value_bytes = 0;  // -d; 0: redis-benchmark's default (3 bytes)
  double expected_rps = 0;        // the rate `requests` was sized for; 0: the RESP section's
  // http (wrk):
  int depth = 0;          // 0: one request per write; else bench/wrk/pipeline.lua's DEPTH
  double duration_s = 0;  // -d
};

// What the project aims at: `server`'s CPU per request at `load` at most `max_ratio` times
// `against`'s, both medians of the same run.
struct RealTarget {
  std::string server, load, against;
  double max_ratio = 1;
};

struct RealSection {
  RealProtocol protocol = RealProtocol::resp;
  std::string key;                        // "resp", "http"
  std::string title;                      // "RESP: iomux vs redis-server (redis-benchmark)"
  std::string tool;                       // "redis-benchmark", "wrk"
  std::string tool_program;               // the executable found; empty when missing
  std::string baseline;                   // ratios are taken against it: "redis-server", "nginx"
  std::vector<std::string> also_against;  // more ratio columns ("h2o")
  std::vector<RealServer> servers;
  std::vector<RealLoad> loads;
  std::vector<RealTarget> targets;
  std::string skip;  // non-empty: the whole section is not measured, and why
  // proxy: the redis-server behind the proxies (one per run, on the tool's CPU).
  std::string upstream_program;
  // The verdict of a target whose server has no numbers, when saying why is worth more than
  // "not measured" ("not measured: no proxy yet").
  std::string targets_note;

  [[nodiscard]] std::optional<std::size_t> find_server(std::string_view name) const;
  [[nodiscard]] std::optional<std::size_t> find_load(std::string_view key) const;
};

struct RealCell {
  std::size_t section = 0, server = 0, load = 0;
  std::string skip;  // non-empty: not run, and why

  [[nodiscard]] bool runnable() const noexcept { return skip.empty(); }
};

struct RealPlanOptions {
  bool quick = false;
  int repeat = 0;                                  // 0: 3 (quick: 1)
  std::optional<std::vector<std::string>> models;  // default: kRealModels
  std::optional<double> budget_s;                  // later passes stop when it would be exceeded
  // Where a program is (PATH lookup by default); "" when missing. Tests pass their own.
  std::function<std::string(std::string_view)> find_program;
  // Why a model cannot run here (probe_model by default); "" when it can.
  std::function<std::string(std::string_view)> model_unavailable;
  std::optional<std::string> wrk_script;  // default: find_wrk_script(); "" for none
  // The sections to plan ("resp", "http", "proxy"); default: all.
  std::optional<std::vector<std::string>> sections;
  // Whether `iomux serve` has a proxy protocol (default: asks `<this exe> serve --help`).
  std::function<bool()> iomux_has_proxy;
  // Debian's ngx_stream_module.so (libnginx-mod-stream); default: kNginxStreamModule if it
  // exists. "": not installed.
  std::optional<std::string> nginx_stream_module;
};

inline constexpr std::string_view kNginxStreamModule = "/usr/lib/nginx/modules/ngx_stream_module.so";
// The sections a plan can have, in run order.
inline const std::vector<std::string> kRealSections = {"resp", "http", "proxy"};
// The models measured as proxies by default.
inline const std::vector<std::string> kProxyModels = {"epoll", "uring"};

// The iomux models measured by default: the scalable ones, and `threaded` as the classic
// alternative. Each serves on one thread (threaded: a thread per connection, all on one CPU).
inline const std::vector<std::string> kRealModels = {"epoll", "epoll-et", "uring", "poll", "threaded"};

struct RealPlan {
  bool quick = false;
  int repeat = 3;
  double budget_s = 0;
  std::vector<RealSection> sections;
  std::vector<RealCell> cells;      // one pass, in run order
  std::string wrk_script;           // bench/wrk/pipeline.lua
  std::string nginx_stream_module;  // load_module's path in the nginx stream config
  std::vector<std::string> notes;   // servers or tools missing, ...

  [[nodiscard]] std::optional<std::size_t> find_section(std::string_view key) const;
  [[nodiscard]] std::optional<std::size_t> find_cell(std::size_t section, std::size_t server, std::size_t load) const;
};

// Looks the servers and tools up and lays out the cells. Unknown models are refused by the
// matrix's plan (make_plan) before this runs; here they are only left out with a note.
RealPlan make_real_plan(const RealPlanOptions& opts);

// bench/wrk/pipeline.lua: next to this executable (build/bench/wrk/), else in the source tree.
// Empty when neither has it.
std::string find_wrk_script();
// PATH lookup: the full path of `name`, or "".
std::string find_in_path(std::string_view name);
// Whether `iomux serve --help`'s text offers `proxy` among the values of --protocol.
bool help_lists_proxy_protocol(std::string_view serve_help);

// A bulk load moves value_bytes per request; its figure is MB (10^6 bytes) of values moved per
// CPU-second of the proxy, which is value_bytes / CPU µs per request.
[[nodiscard]] inline bool is_bulk(const RealLoad& load) noexcept {
  return load.value_bytes >= 1024;
}
std::optional<double> mb_per_cpu_s(const RealLoad& load, std::optional<double> cpu_us_per_req);

// The request count of a RESP run of `load` for a server that did `rps` before: about as long
// as a run of the fastest servers, never more than load.requests nor less than an eighth of it.
std::uint64_t resp_requests_for_rate(const RealLoad& load, double rps);

// Rough wall-clock cost of one run, and of every runnable cell `repeat` times, seconds.
double estimate_real_run_s(const RealPlan& plan, const RealCell& cell);
double estimate_real_plan_s(const RealPlan& plan);

// The plan in a few lines (--dry-run, stderr, summary.md), and one cell ("h2o  c100-pipe16").
std::string describe_real_plan(const RealPlan& plan);
std::string describe_real_cell(const RealPlan& plan, const RealCell& cell);

// --- How a run is started: command lines and configuration files -----------------------------

// The tool's command line for one run against 127.0.0.1:port.
std::vector<std::string> tool_argv(const RealPlan& plan, const RealSection& section, const RealLoad& load, int port);
// redis-benchmark's unmeasured run before a GET: the key it reads must exist, or every GET is a
// miss (a cheaper reply than a hit). The value has the load's size.
std::vector<std::string> resp_seed_argv(const RealSection& section, const RealLoad& load, int port);

// Where a peer server keeps its files for one run (config, logs, pid, temp paths).
struct ServerFiles {
  std::string dir;   // a private temporary directory
  std::string user;  // the user h2o must stay (it drops root to `nobody` otherwise)
};
// The server's command line (argv) listening on 127.0.0.1:port. For nginx, h2o, haproxy and
// nginx-stream it names a config file written from *_config() into files.dir. A proxy forwards
// to 127.0.0.1:upstream_port.
std::vector<std::string> server_argv(const RealServer& server, RealProtocol protocol, int port,
                                     const ServerFiles& files, const std::string& iomux_exe, int upstream_port = 0);
std::string nginx_config(int port, const std::string& dir);
std::string haproxy_config(int port, int upstream_port);
std::string nginx_stream_config(int port, int upstream_port, const std::string& dir, const std::string& module);
std::string h2o_config(int port, const std::string& dir, const std::string& user);
// The body every HTTP server answers on /plaintext, and the file h2o serves it from.
inline constexpr std::string_view kPlaintextBody = "Hello, World!";
inline constexpr std::string_view kH2oPlaintextFile = "www/plaintext.txt";

// A command line as one shell-quoted string (for messages and results.json).
std::string join_argv(const std::vector<std::string>& argv);

}  // namespace iomux::shootout
