#include "iomux/shootout/real_servers.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include <fmt/format.h>

#include "iomux/loadgen/procfs.hpp"
#include "iomux/models.hpp"
#include "iomux/shootout/paths.hpp"
#include "iomux/shootout/plan.hpp"

#ifndef IOMUX_SHOOTOUT_WRK_DIR
#define IOMUX_SHOOTOUT_WRK_DIR ""
#endif

namespace iomux::shootout {
namespace {

namespace fs = std::filesystem;

// Run sizes. redis-benchmark has no duration option, so a RESP run is a request count, sized
// for 1-2 s on the 2-core development VM by the rates of its first full run of this section
// (`iomux shootout --real-servers-only`): redis-server did 20-40k requests/s at -P 1 (the
// single-threaded redis-benchmark is as busy as the server) and 350-600k at -P 16; the iomux
// models were in the same range, `threaded` slower (its later runs are cut, see below). The
// rates of a later run are in docs/benchmarks.md ("Against Redis").
constexpr int kRespClients = 50;
constexpr std::uint64_t kRespRequestsP1 = 50'000, kRespRequestsP16 = 600'000;
constexpr std::uint64_t kQuickRespRequestsP1 = 15'000, kQuickRespRequestsP16 = 150'000;
constexpr double kHttpDurationS = 2, kQuickHttpDurationS = 1;
constexpr int kPipelineDepth = 16;
// For the time estimate: what a run costs besides the load itself (spawn, readiness probe, stop;
// and the seed before a GET), and the rates the RESP sizes were chosen for.
constexpr double kRunOverheadS = 0.3, kGetSeedS = 0.15, kRespRateP1 = 35'000, kRespRateP16 = 450'000;

// The proxy section, sized the same way by HAProxy's and nginx stream's rates in front of
// redis-server on the development VM (proxy on CPU 0; redis-server and redis-benchmark sharing
// CPU 1): 50-60k SET/s at -P 1, 650-730k at -P 16, 1,400-1,700 1 MiB values a second with 4
// clients. Its quick plan is SETs only.
constexpr std::uint64_t kProxyBulkBytes = 1024 * 1024;
constexpr int kProxyBulkClients = 4;
constexpr std::uint64_t kProxyRequestsP1 = 75'000, kProxyRequestsP16 = 900'000, kProxyRequestsBulk = 2'500;
constexpr std::uint64_t kQuickProxyRequestsP1 = 15'000, kQuickProxyRequestsP16 = 200'000, kQuickProxyRequestsBulk = 500;
constexpr double kProxyRateP1 = 50'000, kProxyRateP16 = 650'000, kProxyRateBulk = 1'500;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<RealLoad> resp_loads(bool quick) {
  std::vector<RealLoad> loads;
  for (int p : {1, kPipelineDepth}) {
    for (const char* test : {"PING_INLINE", "SET", "GET"}) {
      RealLoad l;
      l.key = fmt::format("{}-p{}", lower(test) == "ping_inline" ? "ping" : lower(test), p);
      l.title = fmt::format("{} -P {}", test, p);
      l.clients = kRespClients;
      l.test = test;
      l.pipeline = p;
      l.requests = p == 1 ? (quick ? kQuickRespRequestsP1 : kRespRequestsP1)
                          : (quick ? kQuickRespRequestsP16 : kRespRequestsP16);
      loads.push_back(std::move(l));
    }
  }
  return loads;
}

std::vector<RealLoad> http_loads(bool quick) {
  std::vector<RealLoad> loads;
  for (int c : {100, 1000}) {
    for (int depth : {0, kPipelineDepth}) {
      RealLoad l;
      l.key = depth == 0 ? fmt::format("c{}", c) : fmt::format("c{}-pipe{}", c, depth);
      l.title = depth == 0 ? fmt::format("-c {}", c) : fmt::format("-c {} pipelined {}", c, depth);
      l.clients = c;
      l.depth = depth;
      l.duration_s = quick ? kQuickHttpDurationS : kHttpDurationS;
      loads.push_back(std::move(l));
    }
  }
  return loads;
}

std::vector<RealLoad> proxy_loads(bool quick) {
  std::vector<RealLoad> loads;
  const std::vector<const char*> tests =
      quick ? std::vector<const char*>{"SET"} : std::vector<const char*>{"SET", "GET"};
  for (int p : {1, kPipelineDepth}) {
    for (const char* test : tests) {
      RealLoad l;
      l.key = fmt::format("{}-p{}", lower(test), p);
      l.title = fmt::format("{} -P {}", test, p);
      l.clients = kRespClients;
      l.test = test;
      l.pipeline = p;
      l.requests = p == 1 ? (quick ? kQuickProxyRequestsP1 : kProxyRequestsP1)
                          : (quick ? kQuickProxyRequestsP16 : kProxyRequestsP16);
      l.expected_rps = p == 1 ? kProxyRateP1 : kProxyRateP16;
      loads.push_back(std::move(l));
    }
  }
  for (const char* test : tests) {
    RealLoad l;
    l.key = fmt::format("{}-1mib", lower(test));
    l.title = fmt::format("{} 1 MiB", test);
    l.clients = kProxyBulkClients;
    l.test = test;
    l.value_bytes = kProxyBulkBytes;
    l.requests = quick ? kQuickProxyRequestsBulk : kProxyRequestsBulk;
    l.expected_rps = kProxyRateBulk;
    loads.push_back(std::move(l));
  }
  return loads;
}

// Issue 18's targets against HAProxy. "Bulk >= HAProxy's MB per CPU-second" is CPU per request
// <= 1x HAProxy's: both move the same bytes per request.
std::vector<RealTarget> proxy_targets() {
  std::vector<RealTarget> t;
  for (const char* server : {"epoll", "uring"})
    for (const char* load : {"set-p1", "get-p1", "set-p16", "get-p16", "set-1mib", "get-1mib"})
      t.push_back({server, load, "haproxy", std::string(load).ends_with("p1") ? 0.8 : 1.0});
  return t;
}

// The targets of the real-server comparison (see docs/benchmarks.md). "Pipelined" is read as
// both connection counts; "no more than h2o's" as every HTTP load.
std::vector<RealTarget> resp_targets() {
  std::vector<RealTarget> t;
  for (const char* server : {"epoll", "uring"})
    for (const char* load : {"set-p16", "get-p16", "set-p1", "get-p1"})
      t.push_back({server, load, "redis-server", std::string(load).ends_with("p16") ? 0.6 : 0.8});
  return t;
}

std::vector<RealTarget> http_targets() {
  std::vector<RealTarget> t;
  for (const char* server : {"epoll", "uring"}) {
    t.push_back({server, "c100", "nginx", 0.7});
    t.push_back({server, "c100-pipe16", "nginx", 0.5});
    t.push_back({server, "c1000-pipe16", "nginx", 0.5});
    for (const char* load : {"c100", "c100-pipe16", "c1000", "c1000-pipe16"}) t.push_back({server, load, "h2o", 1.0});
  }
  return t;
}

// Package names for the "not found" lines.
std::string package_of(std::string_view program) {
  if (program == "redis-benchmark") return "redis-tools";
  if (program == "redis-server") return "redis-server";
  return std::string(program);
}

std::string not_found(std::string_view program) {
  return fmt::format("{} not found: install {}", program, package_of(program));
}

RealServer peer_server(const RealPlanOptions& opts, std::string name) {
  RealServer s;
  s.name = std::move(name);
  s.program = opts.find_program(s.name);
  if (s.program.empty()) s.skip = not_found(s.name);
  return s;
}

std::string quote_arg(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./+:=,") ==
                        std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Asks this executable's `serve --help` whether it offers the proxy protocol (a build of the
// shootout against an older iomux binary skips the iomux rows with a reason instead of failing).
// Only an executable named iomux is asked (a test binary would run its tests instead).
bool iomux_serve_has_proxy() {
  const std::string exe = loadgen::self_exe_path();
  if (fs::path(exe).filename() != "iomux") return false;
  const std::string cmd = quote_arg(exe) + " serve --help 2>/dev/null";
  FILE* f = ::popen(cmd.c_str(), "r");
  if (!f) return false;
  std::string help;
  char buf[4096];
  // A help text is a few KiB; reading stops at 1 MiB whatever the executable prints.
  while (help.size() < (1u << 20))
    if (const std::size_t n = std::fread(buf, 1, sizeof buf, f); n > 0)
      help.append(buf, n);
    else
      break;
  ::pclose(f);
  return help_lists_proxy_protocol(help);
}

}  // namespace

std::optional<std::size_t> RealSection::find_server(std::string_view name) const {
  for (std::size_t i = 0; i < servers.size(); ++i)
    if (servers[i].name == name) return i;
  return std::nullopt;
}

std::optional<std::size_t> RealSection::find_load(std::string_view k) const {
  for (std::size_t i = 0; i < loads.size(); ++i)
    if (loads[i].key == k) return i;
  return std::nullopt;
}

std::optional<std::size_t> RealPlan::find_section(std::string_view key) const {
  for (std::size_t i = 0; i < sections.size(); ++i)
    if (sections[i].key == key) return i;
  return std::nullopt;
}

std::optional<std::size_t> RealPlan::find_cell(std::size_t section, std::size_t server, std::size_t load) const {
  for (std::size_t i = 0; i < cells.size(); ++i)
    if (cells[i].section == section && cells[i].server == server && cells[i].load == load) return i;
  return std::nullopt;
}

std::string find_in_path(std::string_view name) {
  if (name.find('/') != std::string_view::npos)
    return ::access(std::string(name).c_str(), X_OK) == 0 ? std::string(name) : std::string();
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    const fs::path p = fs::path(dir.empty() ? "." : dir) / name;
    std::error_code ec;
    if (fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0) return p.string();
  }
  // nginx lives in /usr/sbin, which a non-root PATH may lack.
  for (const char* dir2 : {"/usr/sbin", "/usr/local/sbin", "/sbin"}) {
    const fs::path p = fs::path(dir2) / name;
    std::error_code ec;
    if (fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return {};
}

bool help_lists_proxy_protocol(std::string_view help) {
  // CLI11 prints an option's choices on its own line: "  --protocol TEXT:{ack,line,...}=ack".
  std::size_t at = 0;
  while (at < help.size()) {
    const std::size_t end = std::min(help.find('\n', at), help.size());
    const std::string_view line = help.substr(at, end - at);
    at = end + 1;
    const auto opt = line.find("--protocol");
    if (opt == std::string_view::npos) continue;
    const auto open = line.find('{', opt), close = line.find('}', opt);
    if (open == std::string_view::npos || close == std::string_view::npos || close < open) continue;
    std::string_view choices = line.substr(open + 1, close - open - 1);
    while (!choices.empty()) {
      const auto comma = std::min(choices.find(','), choices.size());
      if (choices.substr(0, comma) == "proxy") return true;
      choices.remove_prefix(std::min(comma + 1, choices.size()));
    }
  }
  return false;
}

std::optional<double> mb_per_cpu_s(const RealLoad& load, std::optional<double> cpu_us_per_req) {
  if (load.value_bytes == 0 || !cpu_us_per_req || *cpu_us_per_req <= 0) return std::nullopt;
  return static_cast<double>(load.value_bytes) / *cpu_us_per_req;
}

std::string find_wrk_script() {
  const fs::path next_to_exe = fs::path(exe_dir()) / "bench" / "wrk" / "pipeline.lua";
  std::error_code ec;
  if (fs::is_regular_file(next_to_exe, ec)) return next_to_exe.string();
  const fs::path source = fs::path(IOMUX_SHOOTOUT_WRK_DIR) / "pipeline.lua";
  if (!std::string(IOMUX_SHOOTOUT_WRK_DIR).empty() && fs::is_regular_file(source, ec)) return source.string();
  return {};
}

RealPlan make_real_plan(const RealPlanOptions& in) {
  RealPlanOptions opts = in;
  if (!opts.find_program) opts.find_program = [](std::string_view n) { return find_in_path(n); };
  if (!opts.model_unavailable)
    opts.model_unavailable = [](std::string_view m) {
      const Availability a = probe_model(m);
      return a.available ? std::string() : (a.reason.empty() ? std::string("not available") : a.reason);
    };

  RealPlan plan;
  plan.quick = opts.quick;
  plan.repeat = opts.repeat > 0 ? opts.repeat : (opts.quick ? 1 : 3);
  plan.budget_s = opts.budget_s.value_or(opts.quick ? kQuickBudgetS : kDefaultBudgetS);
  plan.wrk_script = opts.wrk_script ? *opts.wrk_script : find_wrk_script();
  auto wanted = [&](std::string_view key) {
    return !opts.sections || std::find(opts.sections->begin(), opts.sections->end(), key) != opts.sections->end();
  };

  // The iomux models: kRealModels' order by default, ladder order for --models.
  std::vector<std::string> models;
  if (opts.models) {
    for (const ModelInfo& m : all_models())
      if (std::find(opts.models->begin(), opts.models->end(), m.name) != opts.models->end())
        models.emplace_back(m.name);
  } else {
    for (const auto& m : kRealModels)
      if (find_model(m)) models.push_back(m);
  }

  auto add_models = [&](RealSection& sec) {
    for (const auto& m : models) {
      RealServer s;
      s.name = m;
      s.iomux = true;
      if (const std::string why = opts.model_unavailable(m); !why.empty())
        s.skip = fmt::format("model {} not available here: {}", m, why);
      sec.servers.push_back(std::move(s));
    }
  };

  RealSection resp;
  resp.protocol = RealProtocol::resp;
  resp.key = "resp";
  resp.title = "RESP: iomux vs redis-server, loaded by redis-benchmark";
  resp.tool = "redis-benchmark";
  resp.tool_program = opts.find_program(resp.tool);
  resp.baseline = "redis-server";
  resp.servers.push_back(peer_server(opts, "redis-server"));
  add_models(resp);
  resp.loads = resp_loads(opts.quick);
  resp.targets = resp_targets();
  if (resp.tool_program.empty()) resp.skip = not_found(resp.tool);

  RealSection http;
  http.protocol = RealProtocol::http;
  http.key = "http";
  http.title = "HTTP/1.1: iomux vs nginx and h2o, loaded by wrk";
  http.tool = "wrk";
  http.tool_program = opts.find_program(http.tool);
  http.baseline = "nginx";
  http.also_against = {"h2o"};
  http.servers.push_back(peer_server(opts, "nginx"));
  http.servers.push_back(peer_server(opts, "h2o"));
  add_models(http);
  http.loads = http_loads(opts.quick);
  http.targets = http_targets();
  if (http.tool_program.empty())
    http.skip = not_found(http.tool);
  else if (plan.wrk_script.empty())
    plan.notes.push_back("bench/wrk/pipeline.lua not found: the pipelined HTTP loads are skipped");

  if (wanted("resp")) plan.sections.push_back(std::move(resp));
  if (wanted("http")) plan.sections.push_back(std::move(http));
  if (wanted("proxy")) {
    RealSection proxy;
    proxy.protocol = RealProtocol::proxy;
    proxy.key = "proxy";
    proxy.title = "TCP proxies in front of redis-server, loaded by redis-benchmark";
    proxy.tool = "redis-benchmark";
    proxy.tool_program = opts.find_program(proxy.tool);
    proxy.upstream_program = opts.find_program("redis-server");
    proxy.baseline = "haproxy";
    proxy.also_against = {"nginx-stream"};
    proxy.servers.push_back(peer_server(opts, "haproxy"));
    RealServer stream;
    stream.name = "nginx-stream";
    stream.program = opts.find_program("nginx");
    if (opts.nginx_stream_module) {
      plan.nginx_stream_module = *opts.nginx_stream_module;
    } else {
      std::error_code ec;
      if (fs::is_regular_file(std::string(kNginxStreamModule), ec)) plan.nginx_stream_module = kNginxStreamModule;
    }
    if (stream.program.empty())
      stream.skip = not_found("nginx");
    else if (plan.nginx_stream_module.empty())
      stream.skip =
          fmt::format("nginx's stream module ({}) not found: install libnginx-mod-stream", kNginxStreamModule);
    proxy.servers.push_back(std::move(stream));
    const bool has_proxy = opts.iomux_has_proxy ? opts.iomux_has_proxy() : iomux_serve_has_proxy();
    for (const auto& m : models) {
      if (!opts.models && std::find(kProxyModels.begin(), kProxyModels.end(), m) == kProxyModels.end()) continue;
      RealServer s;
      s.name = m;
      s.iomux = true;
      if (!has_proxy)
        s.skip = "--protocol proxy is not built yet (`iomux serve --help` lists no proxy protocol)";
      else if (const std::string why = opts.model_unavailable(m); !why.empty())
        s.skip = fmt::format("model {} not available here: {}", m, why);
      proxy.servers.push_back(std::move(s));
    }
    if (!has_proxy) {
      proxy.targets_note = "not measured: no proxy yet";
      plan.notes.push_back("proxy: the iomux rows are skipped: --protocol proxy is not built yet");
    }
    proxy.loads = proxy_loads(opts.quick);
    for (RealTarget& t : proxy_targets())
      if (proxy.find_load(t.load)) proxy.targets.push_back(std::move(t));  // --quick has no GETs
    if (proxy.tool_program.empty())
      proxy.skip = not_found(proxy.tool);
    else if (proxy.upstream_program.empty())
      proxy.skip = not_found("redis-server");
    plan.sections.push_back(std::move(proxy));
  }

  for (std::size_t sec = 0; sec < plan.sections.size(); ++sec) {
    const RealSection& s = plan.sections[sec];
    if (!s.skip.empty()) plan.notes.push_back(fmt::format("{} section skipped: {}", s.key, s.skip));
    for (const RealServer& server : s.servers)
      if (!server.skip.empty() && !server.iomux) plan.notes.push_back(server.skip);
    // Load-major, servers round-robin: the runs of one load by different servers are close in time.
    for (std::size_t l = 0; l < s.loads.size(); ++l) {
      for (std::size_t v = 0; v < s.servers.size(); ++v) {
        RealCell c;
        c.section = sec;
        c.server = v;
        c.load = l;
        if (!s.skip.empty())
          c.skip = "skipped: " + s.skip;
        else if (!s.servers[v].skip.empty())
          c.skip = "skipped: " + s.servers[v].skip;
        else if (s.loads[l].depth > 0 && plan.wrk_script.empty())
          c.skip = "skipped: bench/wrk/pipeline.lua not found";
        plan.cells.push_back(std::move(c));
      }
    }
  }
  // Models left out are one note, not one per section.
  if (!plan.sections.empty() && plan.sections.front().protocol != RealProtocol::proxy)
    for (const RealServer& server : plan.sections.front().servers)
      if (!server.skip.empty() && server.iomux) plan.notes.push_back(server.skip);
  return plan;
}

std::uint64_t resp_requests_for_rate(const RealLoad& load, double rps) {
  const double planned_rps =
      load.expected_rps > 0 ? load.expected_rps : (load.pipeline > 1 ? kRespRateP16 : kRespRateP1);
  const double target_s = static_cast<double>(load.requests) / planned_rps;
  const double want = rps * target_s;
  const std::uint64_t step = load.requests >= 10'000 ? 1000 : 100;
  const std::uint64_t floor = std::max<std::uint64_t>(load.requests / 8, std::min<std::uint64_t>(1000, load.requests));
  const auto rounded = static_cast<std::uint64_t>(want / static_cast<double>(step)) * step;
  return std::clamp<std::uint64_t>(rounded, floor, load.requests);
}

double estimate_real_run_s(const RealPlan& plan, const RealCell& cell) {
  const RealSection& s = plan.sections[cell.section];
  const RealLoad& l = s.loads[cell.load];
  if (s.protocol != RealProtocol::http) {
    const double rate = l.expected_rps > 0 ? l.expected_rps : (l.pipeline > 1 ? kRespRateP16 : kRespRateP1);
    // A proxy run starts two servers: the upstream and the proxy.
    const double overhead = s.protocol == RealProtocol::proxy ? 2 * kRunOverheadS : kRunOverheadS;
    return overhead + static_cast<double>(l.requests) / rate + (l.test == "GET" ? kGetSeedS : 0.0);
  }
  return kRunOverheadS + l.duration_s + 0.0003 * l.clients;
}

double estimate_real_plan_s(const RealPlan& plan) {
  double total = 0;
  for (const RealCell& c : plan.cells)
    if (c.runnable()) total += estimate_real_run_s(plan, c) * plan.repeat;
  return total;
}

std::string describe_real_cell(const RealPlan& plan, const RealCell& cell) {
  const RealSection& s = plan.sections[cell.section];
  return fmt::format("{:<5} {:<20} {:<13}", s.key, s.servers[cell.server].label(), s.loads[cell.load].key);
}

std::string describe_real_plan(const RealPlan& plan) {
  std::size_t runnable = 0;
  for (const RealCell& c : plan.cells) runnable += c.runnable() ? 1 : 0;
  std::string out =
      fmt::format("real servers: {}{} cells ({} to run, {} skipped), {} run{} each, round-robin over the servers\n",
                  plan.quick ? "quick, " : "", plan.cells.size(), runnable, plan.cells.size() - runnable, plan.repeat,
                  plan.repeat == 1 ? "" : "s");
  for (const RealSection& s : plan.sections) {
    std::vector<std::string> names, loads;
    for (const auto& v : s.servers) names.push_back(v.label() + (v.skip.empty() ? "" : " (skipped)"));
    for (const auto& l : s.loads)
      loads.push_back(s.protocol == RealProtocol::http ? fmt::format("{} -d {:g}", l.title, l.duration_s)
                      : l.clients != kRespClients      ? fmt::format("{} -c {} -n {}", l.title, l.clients, l.requests)
                                                       : fmt::format("{} -n {}", l.title, l.requests));
    out += fmt::format("  {:<5} {}{}\n", s.key, s.title, s.skip.empty() ? "" : " -- skipped: " + s.skip);
    out += fmt::format("        servers: {}\n", fmt::join(names, ", "));
    out += fmt::format("        loads ({} -c {}): {}\n", s.tool,
                       s.protocol != RealProtocol::http ? std::to_string(kRespClients) : std::string("as named"),
                       fmt::join(loads, "; "));
  }
  out +=
      "  each run: a fresh server pinned to CPU 0, the tool on CPU 1; server CPU from /proc/PID/stat around "
      "the tool's run\n";
  for (const RealSection& s : plan.sections)
    if (s.protocol == RealProtocol::proxy)
      out +=
          "  proxy runs: a fresh redis-server on CPU 1 (with the tool), the proxy in front of it alone on CPU 0; "
          "the proxy's CPU is measured\n";
  out += fmt::format("  estimated time: {:.1f} min\n", estimate_real_plan_s(plan) / 60);
  for (const auto& n : plan.notes) out += "  note: " + n + "\n";
  return out;
}

std::vector<std::string> tool_argv(const RealPlan& plan, const RealSection& section, const RealLoad& load, int port) {
  const std::string p = std::to_string(port);
  if (section.protocol != RealProtocol::http) {
    // One test per invocation, so the server's CPU time covers exactly that test. (An error
    // reply stops redis-benchmark 7 at once: "Error from server: ..." on stderr, status 1.)
    std::vector<std::string> argv = {section.tool_program,
                                     "-h",
                                     "127.0.0.1",
                                     "-p",
                                     p,
                                     "-c",
                                     std::to_string(load.clients),
                                     "-P",
                                     std::to_string(load.pipeline),
                                     "-n",
                                     std::to_string(load.requests),
                                     "-t",
                                     lower(load.test),
                                     "--csv"};
    if (load.value_bytes > 0) argv.insert(argv.end() - 1, {"-d", std::to_string(load.value_bytes)});
    return argv;
  }
  std::vector<std::string> argv = {section.tool_program, "-t1", fmt::format("-c{}", load.clients),
                                   fmt::format("-d{:g}s", load.duration_s), "--latency"};
  if (load.depth > 0) {
    argv.insert(argv.end(), {"-s", plan.wrk_script, fmt::format("http://127.0.0.1:{}", port), "--", "/plaintext",
                             std::to_string(load.depth)});
  } else {
    argv.push_back(fmt::format("http://127.0.0.1:{}/plaintext", port));
  }
  return argv;
}

std::vector<std::string> resp_seed_argv(const RealSection& section, const RealLoad& load, int port) {
  std::vector<std::string> argv = {section.tool_program,
                                   "-h",
                                   "127.0.0.1",
                                   "-p",
                                   std::to_string(port),
                                   "-c",
                                   "1",
                                   "-n",
                                   "100",
                                   "-t",
                                   "set",
                                   "--csv"};
  if (load.value_bytes > 0) argv.insert(argv.end() - 1, {"-d", std::to_string(load.value_bytes)});
  return argv;
}

std::vector<std::string> server_argv(const RealServer& server, RealProtocol protocol, int port,
                                     const ServerFiles& files, const std::string& iomux_exe, int upstream_port) {
  const std::string p = std::to_string(port);
  if (server.iomux && protocol == RealProtocol::proxy)
    return {iomux_exe,    "serve",     "--model",    server.name,
            "--protocol", "proxy",     "--upstream", fmt::format("127.0.0.1:{}", upstream_port),
            "--host",     "127.0.0.1", "--port",     p,
            "-q"};
  if (server.iomux)
    return {
        iomux_exe, "serve",     "--model", server.name, "--protocol", protocol == RealProtocol::resp ? "resp" : "http",
        "--host",  "127.0.0.1", "--port",  p,           "-q"};
  if (server.name == "redis-server")
    // No persistence, one IO thread, logs only warnings, files (none expected) in the run's
    // directory. Everything else is redis-server's default.
    return {server.program,
            "--port",
            p,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--io-threads",
            "1",
            "--daemonize",
            "no",
            "--dir",
            files.dir,
            "--logfile",
            "",
            "--loglevel",
            "warning"};
  if (server.name == "nginx")
    return {server.program, "-p", files.dir, "-c", files.dir + "/nginx.conf", "-e", files.dir + "/error.log"};
  if (server.name == "h2o") return {server.program, "-c", files.dir + "/h2o.conf"};
  if (server.name == "haproxy") return {server.program, "-db", "-f", files.dir + "/haproxy.cfg"};
  if (server.name == "nginx-stream")
    return {server.program, "-p", files.dir, "-c", files.dir + "/nginx-stream.conf", "-e", files.dir + "/error.log"};
  return {server.program};
}

std::string nginx_config(int port, const std::string& dir) {
  // One process (no master), no access log, keep-alive connections that are never closed for
  // their request count, and the /plaintext answer of the HTTP section. The listen backlog
  // matches `iomux serve`'s (4096) so 1,000 connections arriving at once are not a difference.
  return fmt::format(R"(# nginx for `iomux shootout`: one process, no access log, /plaintext.
worker_processes 1;
master_process off;
daemon off;
pid {0}/nginx.pid;
error_log {0}/error.log;
worker_rlimit_nofile 20000;
events {{
  worker_connections 20000;
}}
http {{
  access_log off;
  keepalive_requests 1000000000;
  client_body_temp_path {0}/client_body;
  proxy_temp_path {0}/proxy;
  fastcgi_temp_path {0}/fastcgi;
  uwsgi_temp_path {0}/uwsgi;
  scgi_temp_path {0}/scgi;
  server {{
    listen 127.0.0.1:{1} backlog=4096;
    location = /plaintext {{
      default_type text/plain;
      return 200 "{2}";
    }}
  }}
}}
)",
                     dir, port, kPlaintextBody);
}

std::string haproxy_config(int port, int upstream_port) {
  // One thread, TCP mode, one frontend and one backend server; the timeouts only keep HAProxy
  // from warning (a run is far shorter). maxconn is small because HAProxy refuses to start when
  // it cannot raise its file limit to about two per connection (20,000 files here: maxconn
  // 20000 failed).
  return fmt::format(R"(# HAProxy for `iomux shootout`: a TCP proxy, one thread, in front of redis-server.
global
  nbthread 1
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend shootout
  bind 127.0.0.1:{0}
  default_backend redis
backend redis
  server redis 127.0.0.1:{1}
)",
                     port, upstream_port);
}

std::string nginx_stream_config(int port, int upstream_port, const std::string& dir, const std::string& module) {
  // As nginx_config(): one process, a private prefix; Debian builds `stream` as a module.
  return fmt::format(R"(# nginx stream for `iomux shootout`: a TCP proxy, one process, in front of redis-server.
load_module {2};
worker_processes 1;
master_process off;
daemon off;
pid {0}/nginx.pid;
error_log {0}/error.log;
worker_rlimit_nofile 20000;
events {{
  worker_connections 20000;
}}
stream {{
  server {{
    listen 127.0.0.1:{1} backlog=4096;
    proxy_pass 127.0.0.1:{3};
  }}
}}
)",
                     dir, port, module, upstream_port);
}

std::string h2o_config(int port, const std::string& dir, const std::string& user) {
  // One worker thread, no access log, /plaintext from a file (the static file handler: no
  // mruby). ETags are off, so the answer's headers are close to nginx's and iomux's.
  std::string out = "# h2o for `iomux shootout`: one thread, no access log, /plaintext from a file.\n";
  if (!user.empty()) out += fmt::format("user: {}\n", user);
  out += fmt::format(R"(num-threads: 1
max-connections: 20000
error-log: {0}/error.log
listen:
  host: 127.0.0.1
  port: {1}
hosts:
  default:
    paths:
      /plaintext:
        file.file: {0}/{2}
        file.etag: OFF
)",
                     dir, port, kH2oPlaintextFile);
  return out;
}

// Used by the runner and the report: the command line as one string.
std::string join_argv(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + quote_arg(a);
  return out;
}

}  // namespace iomux::shootout
