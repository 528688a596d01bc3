#include "iomux/shootout/real_runner.hpp"
#include "iomux/shootout/text.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "iomux/loadgen/procfs.hpp"
#include "iomux/loadgen/spawn.hpp"
#include "iomux/shootout/plan.hpp"
#include "iomux/shootout/runner.hpp"
#include "iomux/shootout/tool_output.hpp"

namespace iomux::shootout {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kServerCpu = 0, kToolCpu = 1;
constexpr auto kReadyTimeout = std::chrono::seconds(10);

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::vector<std::string> nonempty_lines(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string line;
  while (std::getline(ss, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) out.push_back(line);
  return out;
}

std::string tail_of_file(const std::string& path, std::size_t max_lines) {
  std::ifstream f(path);
  if (!f) return {};
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(f, line)) {
    lines.push_back(line);
    if (lines.size() > max_lines) lines.erase(lines.begin());
  }
  std::string out;
  for (const auto& l : lines) out += "  " + l + "\n";
  return out;
}

// --- a tool as a child process -----------------------------------------------------------------

// Runs argv to its end (or the deadline / cancel), pinned to `cpu` (-1: not), and collects its
// output and CPU time. The child is its own process group, so a terminal's Ctrl-C reaches only
// the shootout, which then stops the tool.
ToolRun run_tool(const std::vector<std::string>& argv, int cpu, double timeout_s, const std::atomic<bool>* cancel) {
  ToolRun r;
  const auto t0 = Clock::now();
  const loadgen::LaunchedChild child = loadgen::launch_child(argv, cpu, SIGKILL, "iomux shootout");
  const pid_t pid = child.pid;
  int fds[2] = {child.out_fd, child.err_fd};
  std::string* sinks[2] = {&r.out, &r.err};
  bool open[2] = {true, true};
  bool killed = false;
  char buf[16384];
  while (open[0] || open[1]) {
    const bool late = timeout_s > 0 && seconds_since(t0) > timeout_s;
    const bool stop = cancel && cancel->load();
    if ((late || stop) && !killed) {
      r.timed_out = late;
      r.cancelled = stop;
      ::kill(pid, SIGKILL);
      killed = true;
    }
    pollfd p[2] = {{open[0] ? fds[0] : -1, POLLIN, 0}, {open[1] ? fds[1] : -1, POLLIN, 0}};
    const int n = ::poll(p, 2, 100);
    if (n < 0 && errno != EINTR) break;
    for (int s = 0; s < 2; ++s) {
      if (!open[s] || !(p[s].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t got = ::read(fds[s], buf, sizeof buf);
      if (got > 0)
        sinks[s]->append(buf, static_cast<std::size_t>(got));
      else if (got == 0 || (errno != EINTR && errno != EAGAIN))
        open[s] = false;
    }
  }
  ::close(fds[0]);
  ::close(fds[1]);
  int status = 0;
  rusage ru{};
  while (::wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
  }
  r.wall_s = seconds_since(t0);
  r.cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
            static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// --- small blocking socket helpers for the readiness probe -------------------------------------

// A port that was free a moment ago on 127.0.0.1 (the kernel hands out the next one elsewhere).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    const int e = errno;
    ::close(fd);
    throw std::runtime_error(std::string("bind 127.0.0.1:0: ") + std::strerror(e));
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

// Sends `request` to 127.0.0.1:port and reads until `done(reply)`, EOF or the deadline,
// retrying the connection until the deadline (the server may not listen yet). The reply, or
// nullopt with `error` set.
std::optional<std::string> ask(int port, const std::string& request,
                               const std::function<bool(const std::string&)>& done, Clock::time_point deadline,
                               std::string& error) {
  error = "no answer";
  while (Clock::now() < deadline) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      error = std::string("socket: ") + std::strerror(errno);
      return std::nullopt;
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    timeval tv{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      error = std::string("connect: ") + std::strerror(errno);
      ::close(fd);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    std::string reply;
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
      char buf[4096];
      while (!done(reply) && Clock::now() < deadline) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0)
          reply.append(buf, static_cast<std::size_t>(n));
        else if (n == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK))
          break;
      }
    }
    ::close(fd);
    if (!reply.empty()) return reply;
    error = "connected, but no reply";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return std::nullopt;
}

// The server answers its protocol correctly (so it has finished starting up): "" or why not.
std::string probe(RealProtocol protocol, int port) {
  const auto deadline = Clock::now() + kReadyTimeout;
  std::string error;
  if (protocol != RealProtocol::http) {  // a proxy's answer is its upstream redis-server's
    const auto r = ask(
        port, "PING\r\n", [](const std::string& s) { return s.find("\r\n") != std::string::npos; }, deadline, error);
    if (!r) return error;
    return r->rfind("+PONG\r\n", 0) == 0 ? std::string() : "PING answered " + r->substr(0, 200);
  }
  // Done once the head and as many bytes as the expected body have arrived.
  const auto r = ask(
      port, "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
      [](const std::string& s) {
        const auto head = s.find("\r\n\r\n");
        return head != std::string::npos && s.size() >= head + 4 + kPlaintextBody.size();
      },
      deadline, error);
  if (!r) return error;
  const auto head = r->find("\r\n\r\n");
  if (r->rfind("HTTP/1.1 200 ", 0) == 0 && head != std::string::npos && r->substr(head + 4) == kPlaintextBody)
    return {};
  return "GET /plaintext answered: " + r->substr(0, 300);
}

std::string current_user() {
  if (const passwd* pw = ::getpwuid(::geteuid())) return pw->pw_name;
  return "root";
}

// Writes what a peer server needs into dir for a run on `port`.
void write_server_files(const RealPlan& plan, const RealServer& server, int port, int upstream_port,
                        const ServerFiles& files) {
  auto write = [](const fs::path& p, const std::string& text) {
    std::ofstream f(p, std::ios::trunc);
    f << text;
    if (!f) throw std::runtime_error("cannot write " + p.string());
  };
  if (server.name == "nginx") write(fs::path(files.dir) / "nginx.conf", nginx_config(port, files.dir));
  if (server.name == "haproxy") write(fs::path(files.dir) / "haproxy.cfg", haproxy_config(port, upstream_port));
  if (server.name == "nginx-stream")
    write(fs::path(files.dir) / "nginx-stream.conf",
          nginx_stream_config(port, upstream_port, files.dir, plan.nginx_stream_module));
  if (server.name == "h2o") {
    fs::create_directories(fs::path(files.dir) / fs::path(std::string(kH2oPlaintextFile)).parent_path());
    write(fs::path(files.dir) / std::string(kH2oPlaintextFile), std::string(kPlaintextBody));
    write(fs::path(files.dir) / "h2o.conf", h2o_config(port, files.dir, files.user));
  }
}

std::optional<loadgen::ProcStat> cpu_ticks(pid_t pid) {
  const auto t = loadgen::read_tree_stat(pid);
  if (!t) return std::nullopt;
  return t->total;
}

std::string short_rate(double v) {
  if (v >= 1e6) return fmt::format("{:.2f}M", v / 1e6);
  if (v >= 1e4) return fmt::format("{:.1f}k", v / 1e3);
  return fmt::format("{:.0f}", v);
}

std::string outcome_line(const RealRunRecord& rec) {
  if (rec.status == "failed") return "FAILED: " + first_line(rec.error);
  std::string s = fmt::format("{:>8} req/s", rec.rps ? short_rate(*rec.rps) : std::string("?"));
  if (rec.server_cpu_us_per_req) s += fmt::format("  {:6.2f} us/req", *rec.server_cpu_us_per_req);
  if (rec.server_cpu_pct) s += fmt::format("  server {:3.0f}%", *rec.server_cpu_pct);
  if (rec.status == "errors") s += "  ! " + first_line(rec.error);
  return s;
}

// Version lines of the programs a section runs.
void collect_versions(const RealPlan& plan, RealShootoutRun& out) {
  auto version = [&](const std::string& key, const std::string& program, std::vector<std::string> args) {
    if (program.empty() || out.versions.count(key)) return;
    args.insert(args.begin(), program);
    try {
      const ToolRun t = run_tool(args, -1, 5, nullptr);
      std::string line = first_line(t.out);
      if (line.empty()) line = first_line(t.err);
      out.versions[key] = line;
    } catch (const std::exception&) {
    }
  };
  for (const RealSection& s : plan.sections) {
    if (!s.skip.empty()) continue;
    version(s.tool, s.tool_program,
            s.tool == "wrk" ? std::vector<std::string>{"-v"} : std::vector<std::string>{"--version"});
    if (!s.upstream_program.empty()) version("redis-server", s.upstream_program, {"--version"});
    for (const RealServer& v : s.servers) {
      if (v.iomux || !v.skip.empty()) continue;
      // nginx-stream is the nginx program: one version line.
      const bool nginx = v.name == "nginx" || v.name == "nginx-stream";
      version(nginx ? "nginx" : v.name, v.program,
              nginx ? std::vector<std::string>{"-v"}
                    : (v.name == "haproxy" ? std::vector<std::string>{"-v"} : std::vector<std::string>{"--version"}));
    }
  }
}

// One run of one cell.
RealRunRecord run_cell(const RealPlan& plan, const RealCell& cell, int pass, const ServerFiles& files,
                       const RealRunOptions& opts, const std::string& iomux_exe, bool pin, std::uint64_t requests) {
  const RealSection& section = plan.sections[cell.section];
  const RealServer& server = section.servers[cell.server];
  RealLoad load = section.loads[cell.load];
  if (requests > 0) load.requests = requests;
  RealRunRecord rec;
  rec.repeat = pass;
  const auto t0 = Clock::now();
  const int port = free_port();
  const bool proxied = section.protocol == RealProtocol::proxy;
  int upstream_port = proxied ? free_port() : 0;
  while (proxied && upstream_port == port) upstream_port = free_port();
  const std::vector<std::string> server_cmd =
      server_argv(server, section.protocol, port, files, iomux_exe, upstream_port);
  const std::vector<std::string> tool_cmd = tool_argv(plan, section, load, port);
  rec.server_command = join_argv(server_cmd);
  rec.tool_command = join_argv(tool_cmd);
  auto fail = [&](std::string why) {
    rec.status = "failed";
    rec.error = std::move(why);
    rec.wall_s = seconds_since(t0);
    return rec;
  };

  try {
    write_server_files(plan, server, port, upstream_port, files);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  // None of these servers print where they listen the way SpawnedServer expects, so a shell
  // prints it for them, then becomes the server (exec: the pid is the server's). Readiness is
  // the probe below, not that line.
  auto spawn_spec = [](const std::vector<std::string>& argv, int on_port, int cpu) {
    loadgen::SpawnSpec spec;
    spec.argv = {"/bin/sh", "-c", fmt::format("echo 'listening on 127.0.0.1:{}'; exec \"$@\"", on_port), "sh"};
    spec.argv.insert(spec.argv.end(), argv.begin(), argv.end());
    spec.cpu = cpu;
    return spec;
  };
  // The proxy's upstream: redis-server on the tool's CPU, so the proxy is alone on CPU 0 (its
  // CPU time and its caches are the proxy's only). Declared before the proxy: it stops after it.
  std::unique_ptr<loadgen::SpawnedServer> upstream;
  if (proxied) {
    RealServer redis;
    redis.name = "redis-server";
    redis.program = section.upstream_program;
    try {
      upstream = loadgen::SpawnedServer::start(spawn_spec(
          server_argv(redis, RealProtocol::resp, upstream_port, files, iomux_exe), upstream_port, pin ? kToolCpu : -1));
    } catch (const loadgen::SpawnError& e) {
      return fail(std::string("the upstream redis-server: ") + e.what());
    }
    if (const std::string why = probe(RealProtocol::resp, upstream_port); !why.empty())
      return fail("the upstream redis-server not ready: " + why);
  }
  std::unique_ptr<loadgen::SpawnedServer> srv;
  try {
    srv = loadgen::SpawnedServer::start(spawn_spec(server_cmd, port, pin ? kServerCpu : -1));
  } catch (const loadgen::SpawnError& e) {
    return fail(e.what());
  }
  auto server_story = [&] {
    std::string s = srv->alive() ? std::string() : "; server " + srv->exit_description();
    const std::string out = srv->recent_output();
    if (!out.empty()) s += "; its output:\n" + out;
    const std::string log = tail_of_file(files.dir + "/error.log", 10);
    if (!log.empty()) s += "; its error log:\n" + log;
    return s;
  };
  if (const std::string why = probe(section.protocol, port); !why.empty()) {
    const std::string story = server_story();
    srv->stop();
    return fail(fmt::format("server not ready within {} s: {}{}", kReadyTimeout.count(), why, story));
  }
  if (section.protocol != RealProtocol::http && load.test == "GET") {
    const ToolRun seed = run_tool(resp_seed_argv(section, load, port), pin ? kToolCpu : -1, 30, opts.cancel);
    if (seed.exit_code != 0) {
      const std::string story = server_story();
      srv->stop();
      return fail("seeding the GET key failed: " + first_line(seed.err + seed.out) + story);
    }
  }

  const auto before = cpu_ticks(srv->pid());
  const double limit_s = estimate_real_run_s(plan, cell) * 10 + 30;
  ToolRun tool;
  try {
    tool = run_tool(tool_cmd, pin ? kToolCpu : -1, limit_s, opts.cancel);
  } catch (const std::exception& e) {
    srv->stop();
    return fail(e.what());
  }
  const auto after = cpu_ticks(srv->pid());
  if (const auto st = loadgen::read_proc_stat(srv->pid())) rec.server_threads = st->num_threads;
  const bool alive = srv->alive();
  std::optional<ServerCpu> server_cpu;
  // (A process of the tree that exits during the run takes its ticks with it: no number then.)
  if (before && after && alive && after->utime_ticks >= before->utime_ticks &&
      after->stime_ticks >= before->stime_ticks)
    server_cpu = ServerCpu{loadgen::ticks_to_us(after->utime_ticks - before->utime_ticks) / 1e6,
                           loadgen::ticks_to_us(after->stime_ticks - before->stime_ticks) / 1e6};
  read_tool_run(section, load, tool, server_cpu, rec);
  if (!alive) {
    rec.status = "failed";
    rec.error = "the server died during the run" + server_story() + (rec.error.empty() ? "" : "; " + rec.error);
  } else if (tool.timed_out) {
    rec.status = "failed";
    rec.error = fmt::format("{} did not finish within {:.0f} s{}", section.tool, limit_s, server_story());
  }
  srv->stop();
  rec.wall_s = seconds_since(t0);
  return rec;
}

}  // namespace

void read_tool_run(const RealSection& section, const RealLoad& load, const ToolRun& tool,
                   std::optional<ServerCpu> server_cpu, RealRunRecord& rec) {
  std::vector<std::string> problems;
  rec.tool_wall_s = tool.wall_s;
  const auto err_lines = nonempty_lines(tool.err);
  auto exit_text = [&] {
    return tool.exit_code < 0 ? std::string("was killed") : fmt::format("exited with status {}", tool.exit_code);
  };
  if (section.protocol != RealProtocol::http) {
    const auto report = parse_redis_benchmark_csv(tool.out);
    if (!report) {
      rec.status = "failed";
      rec.error =
          fmt::format("redis-benchmark {} without a result{}", exit_text(),
                      err_lines.empty() ? std::string() : ": " + fmt::format("{}", fmt::join(err_lines, " / ")));
      rec.tool = {{"exit_code", tool.exit_code}, {"stderr", err_lines}};
      return;
    }
    const RedisBenchmarkRow* row = &report->rows.front();
    for (const auto& r : report->rows)
      if (r.test == load.test) row = &r;
    rec.requests = load.requests;
    rec.rps = row->rps;
    rec.tool = to_json(*report);
    if (!report->server_errors.empty())
      problems.push_back(fmt::format("error replies from the server (shown at most one a second, {} shown): {}",
                                     report->server_errors.size(), report->server_errors.front()));
    for (const auto& l : err_lines)
      if (l.find("rror") != std::string::npos) problems.push_back("redis-benchmark: " + l);
    if (tool.exit_code != 0) problems.push_back("redis-benchmark " + exit_text());
  } else {
    const auto report = parse_wrk_output(tool.out);
    if (!report) {
      rec.status = "failed";
      rec.error =
          fmt::format("wrk {} without a report{}", exit_text(),
                      err_lines.empty() ? std::string() : ": " + fmt::format("{}", fmt::join(err_lines, " / ")));
      rec.tool = {{"exit_code", tool.exit_code}, {"stderr", err_lines}};
      return;
    }
    rec.requests = report->requests;
    rec.rps = report->rps;
    rec.tool = to_json(*report);
    if (report->socket_errors() > 0)
      problems.push_back(fmt::format("wrk socket errors: connect {}, read {}, write {}, timeout {}",
                                     report->connect_errors, report->read_errors, report->write_errors,
                                     report->timeouts));
    if (report->non_2xx_3xx > 0)
      problems.push_back(fmt::format("{} non-2xx/3xx responses", grouped(report->non_2xx_3xx)));
    if (tool.exit_code != 0) problems.push_back("wrk " + exit_text());
    if (report->requests == 0) {
      rec.status = "failed";
      rec.error = "no request answered" +
                  (problems.empty() ? std::string() : ": " + fmt::format("{}", fmt::join(problems, "; ")));
      return;
    }
  }
  rec.tool["exit_code"] = tool.exit_code;
  if (!err_lines.empty()) rec.tool["stderr"] = err_lines;
  if (tool.wall_s > 0) rec.tool_cpu_pct = tool.cpu_s / tool.wall_s * 100;
  if (server_cpu) {
    const double cpu_s = server_cpu->total_s();
    rec.server_cpu_s = cpu_s;
    rec.server_user_s = server_cpu->user_s;
    if (rec.requests > 0) rec.server_cpu_us_per_req = cpu_s * 1e6 / static_cast<double>(rec.requests);
    if (tool.wall_s > 0) rec.server_cpu_pct = cpu_s / tool.wall_s * 100;
  }
  rec.status = problems.empty() ? "ok" : "errors";
  rec.error = fmt::format("{}", fmt::join(problems, "; "));
}

RealShootoutRun run_real_servers(const RealPlan& plan, const RealRunOptions& opts) {
  RealShootoutRun out;
  out.started_at = now_iso();
  out.loadavg_start = loadavg_text();
  const auto t0 = Clock::now();
  auto cancelled = [&] { return opts.cancel && opts.cancel->load(); };

  const bool pin = opts.pin && loadgen::cpu_usable(kServerCpu) && loadgen::cpu_usable(kToolCpu);
  out.pinned = pin;
  if (opts.pin && !pin) out.notes.push_back("CPUs 0 and 1 are not both usable here: nothing was pinned");
  const std::string iomux_exe = opts.iomux_exe.empty() ? loadgen::self_exe_path() : opts.iomux_exe;
  collect_versions(plan, out);

  char tmpl[] = "/tmp/iomux-shootout-XXXXXX";
  const char* dir = ::mkdtemp(tmpl);
  if (!dir) {
    out.notes.push_back(std::string("mkdtemp failed: ") + std::strerror(errno));
    out.finished_at = now_iso();
    return out;
  }
  ServerFiles files{dir, ::geteuid() == 0 ? current_user() : std::string()};

  std::size_t runnable = 0;
  for (const RealCell& c : plan.cells) runnable += c.runnable() ? 1 : 0;
  const std::size_t planned = runnable * static_cast<std::size_t>(plan.repeat);
  std::vector<bool> dead(plan.cells.size(), false);
  // A RESP run is a request count sized for the fastest servers; a slower server's later runs
  // are cut to about the same duration from its first run's rate (never below an eighth).
  std::vector<std::optional<double>> first_rps(plan.cells.size());
  auto requests_for = [&](std::size_t i) -> std::uint64_t {
    const RealCell& c = plan.cells[i];
    const RealSection& s = plan.sections[c.section];
    if (s.protocol == RealProtocol::http || !first_rps[i]) return 0;
    return resp_requests_for_rate(s.loads[c.load], *first_rps[i]);
  };
  double estimated_done = 0, actual_done = 0;
  std::size_t started = 0;
  for (int pass = 1; pass <= plan.repeat && !cancelled(); ++pass) {
    out.passes_started = pass;
    for (std::size_t i = 0; i < plan.cells.size() && !cancelled(); ++i) {
      const RealCell& cell = plan.cells[i];
      if (!cell.runnable() || dead[i]) continue;
      const double est = estimate_real_run_s(plan, cell);
      const double scale = estimated_done > 0 ? std::max(1.0, actual_done / estimated_done) : 1.0;
      if (pass > 1 && plan.budget_s > 0 && seconds_since(t0) + est * scale > plan.budget_s) {
        ++out.skipped_for_budget;
        continue;
      }
      ++started;
      RealRunRecord rec;
      try {
        rec = run_cell(plan, cell, pass, files, opts, iomux_exe, pin, requests_for(i));
      } catch (const std::exception& e) {
        rec.repeat = pass;
        rec.status = "failed";
        rec.error = e.what();
      }
      rec.cell = i;
      estimated_done += est;
      actual_done += rec.wall_s;
      if (cancelled()) {
        out.cancelled = true;
        break;
      }
      if (rec.status == "failed") dead[i] = true;
      if (!first_rps[i] && rec.status != "failed" && rec.rps) first_rps[i] = rec.rps;
      if (opts.on_line) {
        const int secs = static_cast<int>(seconds_since(t0));
        opts.on_line(fmt::format("[{:>3}/{} {:>2}:{:02}] pass {}/{}  {}  {}{}", started, planned, secs / 60, secs % 60,
                                 pass, plan.repeat, describe_real_cell(plan, cell), outcome_line(rec),
                                 rec.status == "failed" && pass < plan.repeat ? " (not repeated)" : ""));
      }
      out.runs.push_back(std::move(rec));
      if (opts.on_record) opts.on_record(out.runs);
    }
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  out.cancelled = out.cancelled || cancelled();
  out.elapsed_s = seconds_since(t0);
  out.finished_at = now_iso();
  out.loadavg_end = loadavg_text();
  return out;
}

}  // namespace iomux::shootout
