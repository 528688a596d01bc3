// `iomux serve`: run one model's server in the foreground until SIGINT/SIGTERM; SIGUSR2
// upgrades it (iomux/upgrade.hpp).
#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "core/socket.hpp"
#include "iomux/activation.hpp"
#include "iomux/http.hpp"
#include "iomux/models.hpp"
#include "iomux/protocols.hpp"
#include "iomux/proxy.hpp"
#include "iomux/resp.hpp"
#include "iomux/server.hpp"
#include "iomux/upgrade.hpp"

namespace iomux::cli {
namespace {

struct ServeArgs {
  std::string model = "epoll";
  std::string host = "0.0.0.0";
  int port = 7890;
  bool host_or_port_given = false;  // --host or --port on the command line
  std::vector<std::string> listen;  // --listen, repeatable
  std::string unix_mode;            // octal, "" = the umask's
  std::string protocol = "ack";
  std::string reply{kDefaultReply};
  std::size_t max_line = kDefaultMaxLine;
  int threads = 1;
  int backlog = 4096;
  std::size_t max_connections = 0;
  double poll_interval_ms = 1;
  std::size_t max_pending = 1024 * 1024;
  std::size_t max_memory = ServerOptions{}.max_memory;
  std::size_t resp_max_memory = RespOptions{}.max_memory;
  double header_timeout_s = 10;
  double body_timeout_s = 60;
  double keepalive_timeout_s = 75;
  double idle_timeout_s = 0;
  double send_timeout_s = 60;
  double drain_timeout_s = 5;
  double upgrade_timeout_s = 10;
  double stats_interval_s = 0;
  std::vector<std::string> upstreams;  // --upstream, repeatable, each a comma-separated list
  std::string pid_file;
  double connect_timeout_s = 10;
  double proxy_timeout_s = 600;
  std::size_t proxy_buffer = ProxyOptions{}.max_buffered;
  bool verbose = false;
  bool quiet = false;
};

std::chrono::milliseconds seconds_to_ms(double s) {
  return std::chrono::milliseconds(static_cast<long long>(s * 1000));
}

// The protocols `serve` offers, each a HandlerFactory from the library.
HandlerFactory protocol_factory(const ServeArgs& a) {
  if (a.protocol == "line") return line_protocol(a.reply, a.max_line);
  if (a.protocol == "echo") return echo_protocol();
  if (a.protocol == "resp") {
    RespOptions o;
    o.max_memory = a.resp_max_memory;
    return resp_protocol(o);
  }
  if (a.protocol == "http") {
    HttpOptions o;
    o.header_timeout = seconds_to_ms(a.header_timeout_s);
    o.body_timeout = seconds_to_ms(a.body_timeout_s);
    o.keepalive_timeout = seconds_to_ms(a.keepalive_timeout_s);
    o.reply = a.reply;
    return http_protocol(o);
  }
  if (a.protocol == "proxy") {
    ProxyOptions o;
    for (const std::string& list : a.upstreams) {
      for (std::size_t start = 0; start <= list.size();) {
        const std::size_t comma = std::min(list.find(',', start), list.size());
        if (comma > start) o.upstreams.push_back(resolve_one(std::string_view(list).substr(start, comma - start)));
        start = comma + 1;
      }
    }
    if (o.upstreams.empty()) throw ServerError("--protocol proxy needs --upstream ADDR[,ADDR...]");
    o.connect_timeout = seconds_to_ms(a.connect_timeout_s);
    o.max_buffered = a.proxy_buffer;
    o.idle_timeout = seconds_to_ms(a.proxy_timeout_s);
    return proxy_protocol(o);
  }
  return ack_protocol(a.reply);
}

// glibc hands large blocks (128 KiB and up, to start with) back to the kernel as soon as they
// are freed, and a server that answers with large replies (resp GETs of 100 KB values, an
// echoed 1 MiB body) then touches fresh pages for every one: on this VM that made a pipeline of
// 100 KB GETs 11x slower than redis-server, almost all of it page faults (redis-benchmark -c 1
// -P 8 -d 100000 -t get against both; commit 9262c32 has the run). Keep them instead,
// as jemalloc does for Redis: blocks up to 32 MiB (resp's largest argument) come from the heap
// and are reused, and the heap is trimmed only past 64 MiB of free space. What connections hold
// stays bounded by --max-memory either way.
void keep_freed_memory() {
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
}

// Where to listen besides the sockets handed over (`activated`: a service manager gave some):
// --host/--port (the default 0.0.0.0:7890 unless only --listen is given, or the sockets handed
// over take its place), then every --listen, in order. The same list in a process an upgrade
// started: make_server serves the sockets its predecessor handed over in their places
// (upgrade_listener_name) instead of binding them again.
std::vector<Endpoint> listeners_of(const ServeArgs& a, bool activated) {
  std::vector<Endpoint> out;
  if (a.host_or_port_given || (a.listen.empty() && !activated))
    out.push_back(resolve_one(a.host, static_cast<std::uint16_t>(a.port)));
  for (const std::string& where : a.listen) out.push_back(resolve_one(where));
  return out;
}

unsigned parse_unix_mode(const std::string& text) {
  if (text.empty()) return 0;
  unsigned mode = 0;
  for (char c : text) {
    if (c < '0' || c > '7' || mode > 0777) throw ServerError("--unix-mode must be octal, 0 to 777: '" + text + "'");
    mode = mode * 8 + static_cast<unsigned>(c - '0');
  }
  if (mode > 0777) throw ServerError("--unix-mode must be octal, 0 to 777: '" + text + "'");
  return mode;
}

// The models that take --threads, from the registry, so the help cannot fall behind it.
std::string threaded_model_names() {
  std::string names;
  for (const ModelInfo& m : all_models()) {
    if (!m.multi_threaded) continue;
    if (!names.empty()) names += ", ";
    names += m.name;
  }
  return names;
}

// The pid file (nginx's `pid`, Redis's `pidfile`): written once the server listens, through a
// temporary file and a rename so that a reader never sees half of it; removed at exit only if
// it still names this process (a successor may have written its own).
class PidFile {
 public:
  explicit PidFile(std::string path) : path_(std::move(path)) {}
  PidFile(const PidFile&) = delete;
  PidFile& operator=(const PidFile&) = delete;
  void write() {
    if (path_.empty()) return;
    const std::string tmp = path_ + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << ::getpid() << "\n";
      if (!out.flush()) throw ServerError("cannot write the pid file " + tmp + ": " + std::strerror(errno));
    }
    if (std::rename(tmp.c_str(), path_.c_str()) != 0) {
      const int err = errno;
      std::remove(tmp.c_str());
      throw ServerError("cannot write the pid file " + path_ + ": " + std::strerror(err));
    }
    written_ = true;
  }
  ~PidFile() {
    if (!written_) return;
    std::ifstream in(path_);
    long pid = 0;
    if (in >> pid && pid == ::getpid()) std::remove(path_.c_str());
  }

 private:
  std::string path_;
  bool written_ = false;
};

int serve(const ServeArgs& a) {
  auto logger = std::make_shared<Logger>(a.quiet ? LogLevel::error : a.verbose ? LogLevel::debug : LogLevel::info);
  ServerOptions opts;
  UpgradeReadiness readiness;
  UpgradeOptions upgrade;
  // Socket activation (systemd, systemd-socket-activate, an upgrade's predecessor) and the
  // upgrade's readiness channel: read, and the variables unset, before any thread exists
  // (setenv and unsetenv are not thread-safe). The program's path is resolved now: an install
  // that replaces the file later makes /proc/self/exe name the old, deleted one.
  try {
    readiness = UpgradeReadiness::from_environment();
    opts.inherited = inherited_listeners();
    upgrade.program = current_program_path();
    upgrade.arguments = current_arguments();
  } catch (const std::exception& e) {
    logger->error("{}", e.what());
    return 1;
  }
  upgrade.timeout = seconds_to_ms(a.upgrade_timeout_s);
  upgrade.logger = logger;
  const bool from_manager = std::any_of(opts.inherited.begin(), opts.inherited.end(), [](const InheritedListener& l) {
    return !upgrade_listener_index(l.name).has_value();
  });
  if (readiness.expected())
    logger->info("upgrade: {} listening socket{} handed over by the old process", opts.inherited.size(),
                 opts.inherited.size() == 1 ? "" : "s");
  else if (!opts.inherited.empty())
    logger->info("socket activation: {} listening socket{} handed over (LISTEN_FDS)", opts.inherited.size(),
                 opts.inherited.size() == 1 ? "" : "s");
  opts.model = a.model;
  opts.threads = a.threads;
  opts.backlog = a.backlog;
  opts.max_connections = a.max_connections;
  opts.poll_interval = std::chrono::milliseconds(static_cast<long long>(a.poll_interval_ms));
  opts.max_pending = a.max_pending;
  opts.max_memory = a.max_memory;
  opts.idle_timeout = seconds_to_ms(a.idle_timeout_s);
  opts.send_timeout = seconds_to_ms(a.send_timeout_s);
  opts.drain_timeout = seconds_to_ms(a.drain_timeout_s);
  opts.stats_interval = seconds_to_ms(a.stats_interval_s);
  opts.logger = logger;

  // Block the stop and upgrade signals before any thread exists (the resp protocol's factory starts its
  // expiry thread), so all threads inherit the mask and only run_until_signal's thread, below,
  // takes them. SIGPIPE is ignored: a peer that vanished is an error code.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  detail::raise_fd_limit();
  keep_freed_memory();

  std::unique_ptr<Server> server;
  try {
    opts.listeners = listeners_of(a, from_manager);
    opts.unix_mode = parse_unix_mode(a.unix_mode);
    server = make_server(std::move(opts), protocol_factory(a));
  } catch (const std::exception& e) {
    // make_server closed the sockets handed over; one that failed before it was reached
    // (resolving --host) leaves them open only until this process exits.
    logger->error("{}", e.what());
    return 1;
  }
  // Where it listens is part of the result, like the summary: -q still prints it (tools such as
  // `iomux bench --spawn` read it to find the port).
  if (a.quiet)
    logger->write(LogLevel::info,
                  fmt::format("listening on {} (model {})", server->local_endpoint().to_string(), server->model()));
  PidFile pid_file(a.pid_file);
  try {
    pid_file.write();
  } catch (const std::exception& e) {
    logger->error("{}", e.what());
    return 1;
  }
  // A new process that died may have written the pid file first: it names this one again.
  upgrade.on_failed = [&pid_file] { pid_file.write(); };
  // Started by an upgrade: listening, the pid file names this process; the old one drains now.
  if (std::string why; !readiness.notify(&why)) logger->warn("upgrade: {}", why);
  try {
    // First signal: graceful stop; second: now. SIGUSR2: an upgrade.
    run_with_upgrades(*server, upgrade, [&](int sig, StopMode mode) {
      if (mode == StopMode::graceful)
        logger->info("{}: stopping; flushing owed replies (a second signal stops at once)", sigabbrev_np(sig));
      else
        logger->info("{}: stopping now", sigabbrev_np(sig));
    });
  } catch (const std::exception& e) {
    logger->error("server failed: {}", e.what());
    return 1;
  }
  // The summary is the one line -q still prints: it is the run's result.
  logger->write(LogLevel::info, "stopped: " + server->stats().summary());
  return 0;
}

}  // namespace

void register_serve(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand("serve",
                                 "Run a server with the chosen IO model until SIGINT/SIGTERM; SIGUSR2 upgrades it "
                                 "(starts the binary at the same path with the same arguments and hands it the "
                                 "listening sockets; the old process drains once the new one serves)");
  std::vector<std::string> names;
  for (const ModelInfo& m : all_models()) names.emplace_back(m.name);
  cmd->add_option("-m,--model", args->model, "IO model (see `iomux models`)")
      ->check(CLI::IsMember(names))
      ->capture_default_str();
  const auto given = [args](const auto&) { args->host_or_port_given = true; };
  cmd->add_option("--host", args->host,
                  "Address or host name to listen on (with sockets handed over by socket activation, "
                  "LISTEN_FDS: only if --host or --port is given)")
      ->capture_default_str()
      ->each(given);
  cmd->add_option("-p,--port", args->port, "TCP port (0: any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str()
      ->each(given);
  cmd->add_option("--listen", args->listen,
                  "Also (or only, without --host/--port) listen here; repeatable: HOST:PORT, [V6]:PORT, "
                  "unix:/path (a stale socket file is replaced, a live one refused; removed at stop) or "
                  "unix:@name (abstract)")
      ->allow_extra_args(false)
      ->take_all();
  cmd->add_option("--unix-mode", args->unix_mode, "Mode of unix:/path socket files, octal (e.g. 660; default: umask)");
  cmd->add_option("--protocol", args->protocol,
                  "ack: reply per chunk; line: reply per line; echo; resp: a Redis-compatible server; http: HTTP/1.1; "
                  "proxy: relay each connection to an --upstream")
      ->check(CLI::IsMember({"ack", "line", "echo", "resp", "http", "proxy"}))
      ->capture_default_str();
  cmd->add_option("--reply", args->reply, "Reply text")->capture_default_str();
  // Sizes take a unit: 64K, 1M, 256KiB (K = 1024 throughout, as the docs use KiB).
  cmd->add_option("--max-line", args->max_line, "Longest line in line mode (bytes; K, M suffixes)")
      ->transform(CLI::AsSizeValue(false))
      ->check(kPositive)
      ->capture_default_str();
  cmd->add_option("--threads", args->threads, "Event loops, one per thread (" + threaded_model_names() + ")")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--backlog", args->backlog, "listen(2) backlog")->check(kPositive)->capture_default_str();
  cmd->add_option("--max-connections", args->max_connections,
                  "Open connections at most (0: fd limit); caps threads for `threaded`")
      ->capture_default_str();
  cmd->add_option("--poll-interval", args->poll_interval_ms,
                  "nonblocking: idle back-off; timeout: SO_RCVTIMEO per visit (ms)")
      ->check(CLI::Range(1.0, 10000.0))
      ->capture_default_str();
  cmd->add_option("--max-pending", args->max_pending,
                  "Pending output per connection before reading pauses (bytes; K, M suffixes)")
      ->transform(CLI::AsSizeValue(false))
      ->check(kPositive)
      ->capture_default_str();
  cmd->add_option("--max-memory", args->max_memory,
                  "Bytes all connections may hold together (kept input + owed output); near it the largest holders "
                  "stop reading, over it the largest is closed (K, M, G suffixes; 0: no bound)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  cmd->add_option("--resp-max-memory", args->resp_max_memory,
                  "resp: bytes the keyspace may hold; past it writes answer -OOM (K, M, G suffixes; 0: no bound)")
      ->transform(CLI::AsSizeValue(false))
      ->capture_default_str();
  cmd->add_option("--header-timeout", args->header_timeout_s,
                  "http: seconds a request head may take to arrive, from the accept for the first one (nginx's "
                  "client_header_timeout)")
      ->check(kPositive)
      ->capture_default_str();
  cmd->add_option("--body-timeout", args->body_timeout_s,
                  "http: seconds a request body may send nothing before a 408 and a close (nginx's "
                  "client_body_timeout)")
      ->check(kPositive)
      ->capture_default_str();
  cmd->add_option("--keepalive-timeout", args->keepalive_timeout_s,
                  "http: seconds a connection may stay idle between requests (nginx's keepalive_timeout)")
      ->check(kPositive)
      ->capture_default_str();
  cmd->add_option("--idle-timeout", args->idle_timeout_s, "Close connections silent this long (s; 0: never)")
      ->check(kNonNegative)
      ->capture_default_str();
  cmd->add_option("--send-timeout", args->send_timeout_s,
                  "Close connections whose peer takes no owed output this long (s; 0: never)")
      ->check(kNonNegative)
      ->capture_default_str();
  cmd->add_option("--drain-timeout", args->drain_timeout_s, "On stop, wait this long for owed replies (s)")
      ->check(kNonNegative)
      ->capture_default_str();
  cmd->add_option("--upgrade-timeout", args->upgrade_timeout_s,
                  "On SIGUSR2, how long the new process may take to say it serves before it is killed and this "
                  "one goes on serving (s)")
      ->check(kPositive)
      ->capture_default_str();
  cmd->add_option("--stats-interval", args->stats_interval_s, "Log a stats line this often (s; 0: never)")
      ->check(kNonNegative)
      ->capture_default_str();
  cmd->add_option("--pid-file", args->pid_file,
                  "Write this process's pid here once it listens; removed at exit if it still names this process "
                  "(after an upgrade it names the new one)");
  cmd->add_option("--upstream", args->upstreams,
                  "proxy: where to relay connections, round-robin; repeatable or comma-separated: HOST:PORT, "
                  "[V6]:PORT, unix:/path (host names are resolved once, at start)");
  cmd->add_option("--connect-timeout", args->connect_timeout_s,
                  "proxy: seconds an upstream may take to accept a connection before the next is tried")
      ->check(kPositive)
      ->capture_default_str();
  cmd->add_option("--proxy-timeout", args->proxy_timeout_s,
                  "proxy: close a pair that moves no byte either way this long (s; 0: never; nginx's proxy_timeout)")
      ->check(kNonNegative)
      ->capture_default_str();
  cmd->add_option("--proxy-buffer", args->proxy_buffer,
                  "proxy: bytes one direction may owe before the side feeding it pauses (K, M suffixes; keep it "
                  "below --max-pending)")
      ->transform(CLI::AsSizeValue(false))
      ->check(kPositive)
      ->capture_default_str();
  cmd->add_flag("-v,--verbose", args->verbose, "Also log every request (escaped)");
  cmd->add_flag("-q,--quiet", args->quiet, "Log only errors and the final summary");
  cmd->callback([args, &exit_code] { exit_code = serve(*args); });
}

}  // namespace iomux::cli
