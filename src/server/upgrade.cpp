// iomux::run_with_upgrades and the pieces of an upgrade (iomux/upgrade.hpp): the old process
// forks and execs the program again with its listening sockets (socket activation's protocol)
// and a readiness socket, and waits, on a thread of its own, for the new one to say it serves,
// to exit, or to let the timeout pass.
#include "iomux/upgrade.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/fd.hpp"
#include "iomux/error.hpp"
#include "server/signal_watch.hpp"

extern char** environ;

namespace iomux {
namespace {

using detail::UniqueFd;

constexpr const char* kReadyVariable = "IOMUX_UPGRADE_READY_FD";
// What the new process writes on the readiness socket; what the child writes there, with its
// errno, when execve fails.
constexpr char kReadyByte = 'R';
constexpr char kExecFailedByte = 'E';

std::string errno_text(int err) {
  return std::error_code(err, std::generic_category()).message();
}

bool is_one_of(const char* entry, std::initializer_list<std::string_view> names) {
  const std::string_view e(entry);
  for (std::string_view name : names)
    if (e.size() > name.size() && e.substr(0, name.size()) == name && e[name.size()] == '=') return true;
  return false;
}

// Everything the child needs, made before fork(): after it, the child of a multi-threaded
// process may only make async-signal-safe calls (no allocation, no locks).
struct ExecPlan {
  std::string program;
  std::vector<std::string> argument_storage;
  std::vector<char*> argv;
  std::vector<std::string> env_storage;
  std::vector<char*> envp;
  char* pid_digits = nullptr;  // inside env_storage's LISTEN_PID entry: room for any pid
  std::vector<int> fds;        // to become fds 3, 4, ...: the listeners, then the readiness socket
  std::vector<int> high;       // the child's scratch: each fd moved above the target range first
  sigset_t unblocked;
};

constexpr std::size_t kPidRoom = 12;  // digits of INT_MAX, and the terminating NUL

ExecPlan plan_exec(const UpgradeOptions& options, const std::vector<InheritedListener>& listeners, int ready_fd) {
  ExecPlan p;
  p.program = options.program;
  p.argument_storage = options.arguments;
  if (p.argument_storage.empty()) p.argument_storage.push_back(options.program);
  for (std::string& a : p.argument_storage) p.argv.push_back(a.data());
  p.argv.push_back(nullptr);
  for (char** e = environ; e && *e; ++e)
    if (!is_one_of(*e, {"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_FDS_START", kReadyVariable}))
      p.env_storage.emplace_back(*e);
  std::string names;
  for (const InheritedListener& l : listeners) {
    if (!names.empty()) names += ':';
    names += l.name;
  }
  p.env_storage.push_back("LISTEN_FDS=" + std::to_string(listeners.size()));
  p.env_storage.push_back("LISTEN_FDNAMES=" + names);
  p.env_storage.push_back(std::string(kReadyVariable) + "=" +
                          std::to_string(kFirstListenFd + static_cast<int>(listeners.size())));
  p.env_storage.push_back("LISTEN_PID=" + std::string(kPidRoom, '\0'));
  for (std::string& e : p.env_storage) p.envp.push_back(e.data());
  p.envp.push_back(nullptr);
  p.pid_digits = p.env_storage.back().data() + std::strlen("LISTEN_PID=");
  for (const InheritedListener& l : listeners) p.fds.push_back(l.fd);
  p.fds.push_back(ready_fd);
  p.high.assign(p.fds.size(), -1);
  sigemptyset(&p.unblocked);
  return p;
}

// In the child, between fork() and execve(): async-signal-safe calls only.
[[noreturn]] void exec_child(ExecPlan& p) noexcept {
  // LISTEN_PID is this process's pid, which only the child knows.
  pid_t pid = ::getpid();
  char digits[kPidRoom];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + pid % 10);
    pid /= 10;
  } while (pid > 0);
  for (int i = 0; i < n; ++i) p.pid_digits[i] = digits[n - 1 - i];
  p.pid_digits[n] = '\0';
  // First every fd above the target range (close-on-exec copies), then each into its place:
  // a dup2 straight away could overwrite a source whose number is in the range.
  const int above = kFirstListenFd + static_cast<int>(p.fds.size());
  for (std::size_t i = 0; i < p.fds.size(); ++i) {
    p.high[i] = ::fcntl(p.fds[i], F_DUPFD_CLOEXEC, above);
    if (p.high[i] < 0) ::_exit(126);
  }
  for (std::size_t i = 0; i < p.fds.size(); ++i)
    if (::dup2(p.high[i], kFirstListenFd + static_cast<int>(i)) < 0) ::_exit(126);  // not close-on-exec
  // The new program starts as any program does: no signal blocked (this thread blocks the
  // ones it waits for), SIGPIPE at its default (the old process ignores it).
  ::sigprocmask(SIG_SETMASK, &p.unblocked, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGPIPE, &dfl, nullptr);
  ::execve(p.program.c_str(), p.argv.data(), p.envp.data());
  const int err = errno;
  char report[1 + sizeof err];
  report[0] = kExecFailedByte;
  std::memcpy(report + 1, &err, sizeof err);
  [[maybe_unused]] const ssize_t n_sent =
      ::write(kFirstListenFd + static_cast<int>(p.fds.size()) - 1, report, sizeof report);
  ::_exit(127);
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) {
    if (WEXITSTATUS(status) == 127) return "it exited with status 127 (the exec failed, or the program did)";
    return "it exited with status " + std::to_string(WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return std::string("it was killed by SIG") + (name ? name : std::to_string(WTERMSIG(status)).c_str());
  }
  return "it ended (wait status " + std::to_string(status) + ")";
}

// One upgrade at a time: started on the signal thread, waited for on a thread of its own.
class Upgrader {
 public:
  Upgrader(Server& server, const UpgradeOptions& options, Logger& log)
      : server_(server), options_(options), log_(log) {}
  ~Upgrader() {
    if (waiter_.joinable()) {
      waiter_.request_stop();
      waiter_.join();
    }
  }

  // The server is stopping (SIGINT/SIGTERM): no new upgrade starts.
  void stopping() {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }

  void start() {
    {
      std::lock_guard lock(mutex_);
      if (handed_over_) {
        log_.warn("upgrade: already handed over to pid {}; SIGUSR2 ignored", child_);
        return;
      }
      if (stopping_) {
        log_.warn("upgrade: the server is stopping; SIGUSR2 ignored");
        return;
      }
      if (under_way_) {
        log_.warn("upgrade: one is under way (pid {}); SIGUSR2 ignored", child_);
        return;
      }
    }
    if (waiter_.joinable()) waiter_.join();  // the last attempt's, which has ended
    std::vector<InheritedListener> listeners;
    try {
      listeners = server_.duplicate_listeners();
    } catch (const std::exception& e) {
      log_.error("upgrade failed: {}; still serving", e.what());
      return;
    }
    std::vector<UniqueFd> owned;
    for (const InheritedListener& l : listeners) owned.emplace_back(l.fd);
    if (listeners.empty()) {
      log_.error("upgrade failed: no listening socket to hand over (the server is stopping); still serving");
      return;
    }
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      log_.error("upgrade failed: socketpair: {}; still serving", errno_text(errno));
      return;
    }
    UniqueFd ours(pair[0]);
    UniqueFd theirs(pair[1]);
    ExecPlan plan;
    try {
      plan = plan_exec(options_, listeners, theirs.get());
    } catch (const std::exception& e) {
      log_.error("upgrade failed: {}; still serving", e.what());
      return;
    }
    const pid_t pid = ::fork();
    if (pid == 0) exec_child(plan);
    if (pid < 0) {
      log_.error("upgrade failed: fork: {}; still serving", errno_text(errno));
      return;
    }
    // The child has its copies: the listeners' duplicates and its end close here.
    owned.clear();
    theirs.reset();
    // A pidfd turns readable when the child exits (Linux 5.3); without one, the wait polls.
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    {
      std::lock_guard lock(mutex_);
      under_way_ = true;
      child_ = pid;
    }
    log_.info("upgrade: started {} (pid {}), {} listening socket{} handed over", options_.program, pid,
              listeners.size(), listeners.size() == 1 ? "" : "s");
    waiter_ =
        std::jthread([this, pid, ready = std::move(ours), exited = std::move(pidfd)](std::stop_token done) mutable {
          wait_for(pid, std::move(ready), std::move(exited), done);
        });
  }

 private:
  void wait_for(pid_t pid, UniqueFd ready, UniqueFd exited, const std::stop_token& done) {
    const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
    bool channel_open = true;
    std::string failure;
    for (;;) {
      if (done.stop_requested()) {
        log_.warn("upgrade: the server stopped before pid {} said it serves; it is left to run", pid);
        finish(false);
        return;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        failure = fmt::format("pid {} did not say it serves within {} ms (killed)", pid, options_.timeout.count());
        break;
      }
      std::array<pollfd, 2> fds{pollfd{channel_open ? ready.get() : -1, POLLIN, 0},
                                pollfd{exited ? exited.get() : -1, POLLIN, 0}};
      // Short waits: the stop token is looked at between them, and without a pidfd the exit
      // is found by waitpid below.
      ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long long>(left.count(), 100)));
      if (channel_open && fds[0].revents != 0) {
        std::array<char, 1 + sizeof(int)> got_bytes{};
        const ssize_t got = ::recv(ready.get(), got_bytes.data(), got_bytes.size(), MSG_DONTWAIT);
        if (got >= 1 && got_bytes[0] == kReadyByte) {
          log_.info("upgrade: pid {} is ready, draining", pid);
          finish(true);
          server_.stop(StopMode::hand_over);
          return;
        }
        if (got == static_cast<ssize_t>(got_bytes.size()) && got_bytes[0] == kExecFailedByte) {
          int err = 0;
          std::memcpy(&err, got_bytes.data() + 1, sizeof err);
          int status = 0;
          ::waitpid(pid, &status, 0);  // it _exits right after
          failure = fmt::format("cannot execute {}: {}", options_.program, errno_text(err));
          break;
        }
        if (got >= 0 || (errno != EAGAIN && errno != EINTR)) channel_open = false;
      }
      int status = 0;
      const pid_t reaped = ::waitpid(pid, &status, WNOHANG);
      if (reaped == pid) {
        failure = fmt::format("{} (pid {}) did not start: {}", options_.program, pid, describe_status(status));
        break;
      }
    }
    if (options_.on_failed) {
      try {
        options_.on_failed();
      } catch (const std::exception& e) {
        log_.error("upgrade: after the failure: {}", e.what());
      }
    }
    log_.error("upgrade failed: {}; still serving", failure);
    finish(false);
  }

  void finish(bool handed_over) {
    std::lock_guard lock(mutex_);
    under_way_ = false;
    handed_over_ = handed_over;
  }

  Server& server_;
  const UpgradeOptions& options_;
  Logger& log_;
  std::mutex mutex_;
  bool under_way_ = false;
  bool handed_over_ = false;
  bool stopping_ = false;
  pid_t child_ = 0;
  std::jthread waiter_;
};

}  // namespace

std::string current_program_path() {
  std::array<char, PATH_MAX> buf{};
  const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) throw ServerError("cannot read /proc/self/exe: " + errno_text(errno));
  return std::string(buf.data(), static_cast<std::size_t>(n));
}

std::vector<std::string> current_arguments() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  if (!in) throw ServerError("cannot read /proc/self/cmdline");
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> out;
  for (std::size_t from = 0; from < all.size();) {
    const std::size_t end = std::min(all.find('\0', from), all.size());
    out.emplace_back(all, from, end - from);
    from = end + 1;
  }
  return out;
}

UpgradeReadiness UpgradeReadiness::from_environment() {
  const char* text = std::getenv(kReadyVariable);
  const std::string value = text ? text : "";
  ::unsetenv(kReadyVariable);
  UpgradeReadiness out;
  if (!text) return out;
  int fd = 0;
  bool valid = !value.empty() && value.size() <= 9;
  for (char c : value) {
    if (c < '0' || c > '9') valid = false;
    if (valid) fd = fd * 10 + (c - '0');
  }
  if (!valid || fd < kFirstListenFd)
    throw ServerError(std::string("upgrade: ") + kReadyVariable + " is not an fd number: '" + escape_bytes(value) +
                      "'");
  const int flags = ::fcntl(fd, F_GETFD);
  if (flags < 0 || ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC) != 0)
    throw ServerError(std::string("upgrade: ") + kReadyVariable + "=" + value +
                      " but that fd cannot be used: " + errno_text(errno));
  out.fd_ = fd;
  return out;
}

UpgradeReadiness::UpgradeReadiness(UpgradeReadiness&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

UpgradeReadiness& UpgradeReadiness::operator=(UpgradeReadiness&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

UpgradeReadiness::~UpgradeReadiness() {
  if (fd_ >= 0) ::close(fd_);
}

bool UpgradeReadiness::notify(std::string* why) noexcept {
  if (fd_ < 0) return true;
  const char byte = kReadyByte;
  // MSG_NOSIGNAL: a predecessor that gave up (or died) must not kill this process with SIGPIPE.
  const ssize_t sent = ::send(fd_, &byte, 1, MSG_NOSIGNAL);
  const int err = errno;
  ::close(std::exchange(fd_, -1));
  if (sent == 1) return true;
  if (why) {
    try {
      *why = "cannot tell the old process: " + errno_text(err);
    } catch (...) {
    }
  }
  return false;
}

void run_with_upgrades(Server& server, const UpgradeOptions& options,
                       std::function<void(int signal, StopMode mode)> on_signal) {
  const LoggerPtr logger = options.logger ? options.logger : std::make_shared<Logger>();
  Upgrader upgrader(server, options, *logger);
  int stops = 0;
  detail::run_watching_signals(server, {SIGINT, SIGTERM, SIGUSR2}, [&](int sig) {
    if (sig == SIGUSR2) {
      try {
        upgrader.start();
      } catch (const std::exception& e) {
        logger->error("upgrade failed: {}; still serving", e.what());
      }
      return;
    }
    upgrader.stopping();
    detail::stop_for_signal(server, sig, stops, on_signal);
  });
}

}  // namespace iomux
