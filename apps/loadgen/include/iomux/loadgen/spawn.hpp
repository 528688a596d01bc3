// Starting a server under test as a child process and finding the port it listens on.
//
//   auto server = SpawnedServer::start(SpawnSpec::iomux_model("epoll", "ack"));
//   ... connect to server->endpoint(), read /proc/<server->pid()>/stat ...
//   server->stop();   // SIGTERM, SIGKILL after the grace period, reaped; also done by ~SpawnedServer
//
// The child's stdout and stderr are pipes; the first line on either that matches
// `listening on (\S+):(\d+)` gives the address. Afterwards a background thread keeps draining
// both pipes (so a chatty server never blocks on a full pipe) and remembers the last lines for
// error messages. The child runs in its own process group (a terminal's Ctrl-C reaches only
// the load generator, which then stops the server itself) and gets SIGTERM if the spawning
// thread dies (PR_SET_PDEATHSIG), so spawn from a long-lived thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "iomux/endpoint.hpp"

namespace iomux::loadgen {

class SpawnError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A child process started by launch_child(): its pid and the read ends of its stdout and
// stderr pipes (close-on-exec), which the caller owns.
struct LaunchedChild {
  pid_t pid = -1;
  int out_fd = -1;
  int err_fd = -1;
};

// Forks and execs argv (argv[0] looked up in PATH) as the benchmarks want their servers and
// tools: in a process group of its own (a terminal's Ctrl-C reaches only us, and we stop it),
// sent `death_signal` when this process dies, pinned to `cpu` (-1: not), stdin from /dev/null,
// stdout and stderr into pipes, every signal unblocked and at its default. The child makes only
// async-signal-safe calls (this process may have threads). An exec that fails writes
// "<who>: exec failed: <reason>" to the child's stderr and exits 127. Throws SpawnError when
// pipe() or fork() fails.
LaunchedChild launch_child(const std::vector<std::string>& argv, int cpu, int death_signal, std::string_view who);

struct SpawnSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH (execvp)
  int cpu = -1;                   // pin the child to this CPU before exec; -1 = don't
  std::chrono::milliseconds ready_timeout{10000};

  // `/bin/sh -c 'exec COMMAND'`: shell quoting works and the pid is the server's own. A
  // compound command (`;`, `&&`, pipes, a leading VAR=x...) runs without `exec`; the shell is
  // then the spawned pid, which is why the server is measured as a process tree.
  static SpawnSpec shell(std::string_view command);
  // `<iomux_exe> serve --model M --host 127.0.0.1 --port 0 --protocol P -q [extra...]`;
  // an empty iomux_exe means this executable (/proc/self/exe).
  static SpawnSpec iomux_model(std::string_view model, std::string_view protocol,
                               const std::vector<std::string>& extra_args = {}, std::string iomux_exe = {});
  [[nodiscard]] std::string command_line() const;  // for messages
};

// Whether `exec COMMAND` works for this shell command (no ; & | ( ) ` { } newline, no leading
// VAR=value).
bool is_simple_command(std::string_view command);

// Finds `listening on HOST:PORT` in one line of output. HOST may be bracketed ([::1]).
struct ListenAddress {
  std::string host;
  std::uint16_t port = 0;
};
std::optional<ListenAddress> find_listen_address(std::string_view line);
// Where to connect for a server that printed `addr`: wildcard addresses become loopback.
Endpoint connect_endpoint_for(const ListenAddress& addr);

class SpawnedServer {
 public:
  // Starts the child and waits (up to spec.ready_timeout) for its listening line. Throws
  // SpawnError with the command, the reason and the child's last output lines.
  static std::unique_ptr<SpawnedServer> start(const SpawnSpec& spec);

  SpawnedServer(const SpawnedServer&) = delete;
  SpawnedServer& operator=(const SpawnedServer&) = delete;
  ~SpawnedServer();

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] const Endpoint& endpoint() const noexcept { return endpoint_; }
  [[nodiscard]] const std::string& command_line() const noexcept { return command_; }

  // True while the child has not exited (reaps it if it has).
  bool alive();
  // SIGTERM, then SIGKILL after `grace`; reaps the child. Returns its wait status (or the
  // status already collected). Idempotent.
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
  // "exited with status 3", "killed by signal 9" or "running".
  [[nodiscard]] std::string exit_description() const;
  // The last lines the child printed (both streams interleaved), newline-separated.
  [[nodiscard]] std::string recent_output() const;

 private:
  SpawnedServer() = default;
  void remember_line(std::string line);
  void drain_loop();
  void stop_drain();

  pid_t pid_ = -1;
  bool reaped_ = false;
  int wait_status_ = 0;
  Endpoint endpoint_;
  std::string command_;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string partial_[2];
  mutable std::mutex lines_mutex_;
  std::deque<std::string> lines_;
  std::atomic<bool> drain_stop_{false};
  std::thread drain_thread_;
};

}  // namespace iomux::loadgen
