// Runs a program with pipes for stdin/stdout/stderr, for tests that drive the CLI or the
// tutorial's Python programs. Everything is bounded by timeouts; the destructor kills.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "core/fd.hpp"
#include "support/internals.hpp"

extern char** environ;

namespace iomux::test {

class Subprocess {
 public:
  explicit Subprocess(const std::vector<std::string>& argv) {
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    // The child must not inherit a blocked SIGINT/SIGTERM mask from the test process.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    if (posix_spawnp(&pid_, args[0], &fa, &attr, args.data(), environ) != 0) pid_ = -1;
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    stdin_.reset(in[1]);
    stdout_.reset(out[0]);
    stderr_.reset(err[0]);
    fcntl(stdout_.get(), F_SETFL, O_NONBLOCK);
    fcntl(stderr_.get(), F_SETFL, O_NONBLOCK);
  }
  ~Subprocess() {
    if (pid_ > 0 && !exit_status_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  void write_stdin(const std::string& text) {
    [[maybe_unused]] ssize_t n = ::write(stdin_.get(), text.data(), text.size());
  }
  void close_stdin() { stdin_.reset(); }
  // Not once reaped: the pid may be another process's by then (pid_max is 32768 here, and a
  // test run starts thousands of processes).
  void signal(int sig) {
    if (pid_ > 0 && !exit_status_) ::kill(pid_, sig);
  }

  // Reads output until `pattern` matches stdout+stderr (returns the match) or the timeout.
  std::optional<std::smatch> wait_for_output(const std::regex& pattern, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      std::smatch m;
      combined_ = out_ + err_;
      if (std::regex_search(combined_, m, pattern)) return m;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      if (!pump(static_cast<int>(left.count()))) {
        combined_ = out_ + err_;
        if (std::regex_search(combined_, m, pattern)) return m;
        return std::nullopt;
      }
    }
  }

  // Waits for exit (killing it after the timeout); returns the exit code, or -signal.
  int wait_exit(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!exit_status_) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        exit_status_ = -SIGKILL;
        break;
      }
      pump(10);
    }
    while (pump(0)) {
    }
    return *exit_status_;
  }

  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

  // One poll over stdout/stderr, keeping what arrived; false when both are at EOF. A test that
  // runs a chatty child for long calls it now and then, so the child never blocks on a full
  // pipe.
  bool pump(int timeout_ms) {
    pollfd fds[2] = {{stdout_.get(), POLLIN, 0}, {stderr_.get(), POLLIN, 0}};
    int live = (stdout_ ? 1 : 0) + (stderr_ ? 1 : 0);
    if (!live) return false;
    if (::poll(fds, 2, timeout_ms) <= 0) return true;
    char buf[4096];
    for (int i = 0; i < 2; ++i) {
      UniqueFd& fd = i == 0 ? stdout_ : stderr_;
      if (!fd || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n > 0)
        (i == 0 ? out_ : err_).append(buf, n);
      else if (n == 0)
        fd.reset();
    }
    return true;
  }

 private:
  pid_t pid_ = -1;
  UniqueFd stdin_, stdout_, stderr_;
  std::string out_, err_, combined_;
  std::optional<int> exit_status_;
};

}  // namespace iomux::test
