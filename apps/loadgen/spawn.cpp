#include "iomux/loadgen/spawn.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <regex>

#include <fmt/format.h>

#include "iomux/loadgen/procfs.hpp"

namespace iomux::loadgen {
namespace {

constexpr std::size_t kKeepLines = 40;

using SteadyClock = std::chrono::steady_clock;

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = ::strsignal(WTERMSIG(status));
    return "killed by signal " + std::to_string(WTERMSIG(status)) + (name ? std::string(" (") + name + ")" : "");
  }
  return "stopped";
}

}  // namespace

bool is_simple_command(std::string_view command) {
  if (command.find_first_of(";&|\n()`{}") != std::string_view::npos) return false;
  // A leading VAR=value assignment cannot follow `exec`.
  std::size_t i = command.find_first_not_of(" \t");
  if (i == std::string_view::npos) return false;
  const std::size_t end = command.find_first_of(" \t", i);
  const std::string_view first = command.substr(i, end == std::string_view::npos ? end : end - i);
  return first.find('=') == std::string_view::npos;
}

SpawnSpec SpawnSpec::shell(std::string_view command) {
  SpawnSpec s;
  s.argv = {"/bin/sh", "-c", (is_simple_command(command) ? "exec " : "") + std::string(command)};
  return s;
}

SpawnSpec SpawnSpec::iomux_model(std::string_view model, std::string_view protocol,
                                 const std::vector<std::string>& extra_args, std::string iomux_exe) {
  if (iomux_exe.empty()) iomux_exe = self_exe_path();
  if (iomux_exe.empty()) throw SpawnError("cannot find this executable's path (/proc/self/exe)");
  SpawnSpec s;
  s.argv = {
      std::move(iomux_exe),  "serve", "--model", std::string(model), "--host", "127.0.0.1", "--port", "0", "--protocol",
      std::string(protocol), "-q"};
  s.argv.insert(s.argv.end(), extra_args.begin(), extra_args.end());
  return s;
}

std::string SpawnSpec::command_line() const {
  if (argv.size() == 3 && argv[0] == "/bin/sh" && argv[1] == "-c")
    return argv[2].rfind("exec ", 0) == 0 ? argv[2].substr(5) : argv[2];
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    out += a;
  }
  return out;
}

std::optional<ListenAddress> find_listen_address(std::string_view line) {
  static const std::regex re(R"(listening on (\S+):(\d+))");
  std::match_results<std::string_view::const_iterator> m;
  if (!std::regex_search(line.begin(), line.end(), m, re)) return std::nullopt;
  ListenAddress a;
  a.host = m[1].str();
  if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']') a.host = a.host.substr(1, a.host.size() - 2);
  const std::string port = m[2].str();
  if (port.size() > 5) return std::nullopt;
  const unsigned long p = std::stoul(port);
  if (p == 0 || p > 65535) return std::nullopt;
  a.port = static_cast<std::uint16_t>(p);
  return a;
}

Endpoint connect_endpoint_for(const ListenAddress& addr) {
  std::string host = addr.host;
  if (host == "0.0.0.0" || host == "*") host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (auto ep = Endpoint::from_numeric(host, addr.port)) return *ep;
  return resolve_one(host, addr.port);
}

LaunchedChild launch_child(const std::vector<std::string>& argv, int cpu, int death_signal, std::string_view who) {
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw SpawnError(std::string("pipe: ") + std::strerror(errno));
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    const int e = errno;
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    throw SpawnError(std::string("pipe: ") + std::strerror(e));
  }
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  if (cpu >= 0 && cpu < CPU_SETSIZE) CPU_SET(cpu, &cpus);
  const std::string exec_failed = std::string(who) + ": exec failed: ";
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    throw SpawnError(std::string("fork: ") + std::strerror(e));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, death_signal);
    if (::getppid() != parent) ::_exit(127);  // the parent died before the line above
    if (cpu >= 0) ::sched_setaffinity(0, sizeof cpus, &cpus);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    // Signals ignored or blocked here would be inherited: give the child a clean slate.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::execvp(args[0], args.data());
    (void)!::write(2, exec_failed.data(), exec_failed.size());
    const char* why = ::strerror(errno);
    (void)!::write(2, why, std::strlen(why));
    (void)!::write(2, "\n", 1);
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  return {pid, out_pipe[0], err_pipe[0]};
}

std::unique_ptr<SpawnedServer> SpawnedServer::start(const SpawnSpec& spec) {
  if (spec.argv.empty()) throw SpawnError("empty server command");
  std::unique_ptr<SpawnedServer> self(new SpawnedServer());
  self->command_ = spec.command_line();

  const LaunchedChild child = launch_child(spec.argv, spec.cpu, SIGTERM, "iomux bench");
  self->pid_ = child.pid;
  self->out_fd_ = child.out_fd;
  self->err_fd_ = child.err_fd;

  // Wait for the listening line on either stream.
  const auto deadline = SteadyClock::now() + spec.ready_timeout;
  std::optional<ListenAddress> found;
  bool open[2] = {true, true};
  char buf[4096];
  while (!found) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) {
      self->stop(std::chrono::milliseconds(500));
      throw SpawnError(
          "server `" + self->command_ + "` printed no `listening on HOST:PORT` line within " +
          fmt::format("{:g}", static_cast<double>(spec.ready_timeout.count()) / 1000.0) + " s" +
          (self->recent_output().empty() ? std::string(" (no output)") : "; its output:\n" + self->recent_output()));
    }
    if (!open[0] && !open[1]) {
      // Both streams closed: the child is exiting (or closed them on purpose); give it a moment.
      self->stop(std::chrono::milliseconds(500));
      throw SpawnError(
          "server `" + self->command_ + "` " + self->exit_description() + " before printing `listening on HOST:PORT`" +
          (self->recent_output().empty() ? std::string(" (no output)") : "; its output:\n" + self->recent_output()));
    }
    pollfd fds[2] = {{open[0] ? self->out_fd_ : -1, POLLIN, 0}, {open[1] ? self->err_fd_ : -1, POLLIN, 0}};
    const int n = ::poll(fds, 2, static_cast<int>(std::min<long long>(left.count(), 100)));
    if (n < 0 && errno != EINTR) throw SpawnError(std::string("poll: ") + std::strerror(errno));
    for (int s = 0; s < 2 && !found; ++s) {
      if (!open[s] || !(fds[s].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t r = ::read(s == 0 ? self->out_fd_ : self->err_fd_, buf, sizeof buf);
      if (r <= 0) {
        if (r == 0 || (errno != EINTR && errno != EAGAIN)) open[s] = false;
        continue;
      }
      std::string& part = self->partial_[s];
      part.append(buf, static_cast<std::size_t>(r));
      std::size_t nl;
      while ((nl = part.find('\n')) != std::string::npos) {
        std::string line = part.substr(0, nl);
        part.erase(0, nl + 1);
        if (!found) found = find_listen_address(line);
        self->remember_line(std::move(line));
      }
    }
  }
  try {
    self->endpoint_ = connect_endpoint_for(*found);
  } catch (const std::exception& e) {
    self->stop(std::chrono::milliseconds(500));
    throw SpawnError("server `" + self->command_ + "` listens on " + found->host + ": " + e.what());
  }
  self->drain_thread_ = std::thread([s = self.get()] { s->drain_loop(); });
  return self;
}

void SpawnedServer::remember_line(std::string line) {
  std::lock_guard lock(lines_mutex_);
  lines_.push_back(std::move(line));
  while (lines_.size() > kKeepLines) lines_.pop_front();
}

void SpawnedServer::drain_loop() {
  char buf[8192];
  bool open[2] = {true, true};
  int rounds_after_stop = 0;
  while (open[0] || open[1]) {
    // Once stop() asked, take what is still buffered (a dying server's last words), then go.
    const bool stopping = drain_stop_.load(std::memory_order_relaxed);
    if (stopping && ++rounds_after_stop > 20) break;
    pollfd fds[2] = {{open[0] ? out_fd_ : -1, POLLIN, 0}, {open[1] ? err_fd_ : -1, POLLIN, 0}};
    const int n = ::poll(fds, 2, stopping ? 10 : 100);
    if (n == 0 && stopping) break;
    if (n <= 0) continue;
    for (int s = 0; s < 2; ++s) {
      if (!open[s] || !(fds[s].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t r = ::read(s == 0 ? out_fd_ : err_fd_, buf, sizeof buf);
      if (r <= 0) {
        if (r == 0 || (errno != EINTR && errno != EAGAIN)) open[s] = false;
        continue;
      }
      partial_[s].append(buf, static_cast<std::size_t>(r));
      std::size_t nl;
      while ((nl = partial_[s].find('\n')) != std::string::npos) {
        remember_line(partial_[s].substr(0, nl));
        partial_[s].erase(0, nl + 1);
      }
      if (partial_[s].size() > 4096) {  // a line without end: keep its start only
        remember_line(partial_[s].substr(0, 4096));
        partial_[s].clear();
      }
    }
  }
}

void SpawnedServer::stop_drain() {
  drain_stop_.store(true);
  if (drain_thread_.joinable()) drain_thread_.join();
  for (int s = 0; s < 2; ++s)
    if (!partial_[s].empty()) {
      remember_line(partial_[s]);
      partial_[s].clear();
    }
  if (out_fd_ >= 0) ::close(out_fd_);
  if (err_fd_ >= 0) ::close(err_fd_);
  out_fd_ = err_fd_ = -1;
}

bool SpawnedServer::alive() {
  if (reaped_ || pid_ <= 0) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    wait_status_ = status;
    return false;
  }
  return r == 0;
}

int SpawnedServer::stop(std::chrono::milliseconds grace) {
  if (pid_ > 0 && !reaped_ && alive()) {
    ::kill(pid_, SIGTERM);
    const auto deadline = SteadyClock::now() + grace;
    while (alive() && SteadyClock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      reaped_ = true;
      wait_status_ = status;
    }
  }
  // The drain thread stops once the pipes are at EOF (or at once if a grandchild holds them).
  stop_drain();
  return wait_status_;
}

std::string SpawnedServer::exit_description() const {
  return reaped_ ? describe_status(wait_status_) : "running";
}

std::string SpawnedServer::recent_output() const {
  std::lock_guard lock(lines_mutex_);
  std::string out;
  for (const auto& l : lines_) {
    out += "  ";
    out += l;
    out += '\n';
  }
  return out;
}

SpawnedServer::~SpawnedServer() {
  stop();
}

}  // namespace iomux::loadgen
