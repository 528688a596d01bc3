// Zero-downtime upgrade (nginx's and HAProxy's USR2, in iomux's shape): on SIGUSR2 the program
// starts itself again (the file at the same path, so a newly installed binary, with the same
// arguments) and hands it every listening socket through socket activation (fds from 3,
// LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID: iomux/activation.hpp). The new process says when it
// serves; only then does the old one stop accepting and drain (StopMode::hand_over). The
// sockets are never closed in between, so no connection in their accept queues is lost. A new
// process that fails to start leaves the old one serving, and the reason is logged.
//
//   // main(), before any thread:
//   iomux::UpgradeReadiness readiness = iomux::UpgradeReadiness::from_environment();
//   iomux::UpgradeOptions upgrade{iomux::current_program_path(), iomux::current_arguments()};
//   opts.inherited = iomux::inherited_listeners();   // what a predecessor handed over
//   auto server = iomux::make_server(opts, factory); // binds only what was not handed over
//   readiness.notify();                              // listening: the predecessor drains now
//   iomux::run_with_upgrades(*server, upgrade);      // SIGINT/SIGTERM stop, SIGUSR2 upgrades
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "iomux/activation.hpp"
#include "iomux/log.hpp"
#include "iomux/server.hpp"

namespace iomux {

// The name Server::duplicate_listeners() gives the socket(s) the server opened for
// ServerOptions::listeners[i]. make_server, given an inherited listener of that name, serves
// on it as listeners[i] instead of binding it again.
std::string upgrade_listener_name(std::size_t i);
// The `i` of a name made by upgrade_listener_name(); nullopt for any other name (a service
// manager's).
std::optional<std::size_t> upgrade_listener_index(std::string_view name);

// The path of the running program's file, read from /proc/self/exe. Call it at start-up: once
// an install has replaced the file, /proc/self/exe names the old, deleted one, and the upgrade
// must start the new file at the same path. Throws ServerError.
std::string current_program_path();
// The running program's arguments, argv[0] included (/proc/self/cmdline). Throws ServerError.
std::vector<std::string> current_arguments();

struct UpgradeOptions {
  std::string program;                 // what to start: current_program_path() at start-up
  std::vector<std::string> arguments;  // its argv, argv[0] included: current_arguments()
  // How long the new process may take to say it serves; past it, it is killed and the old
  // process goes on serving.
  std::chrono::milliseconds timeout{10'000};
  LoggerPtr logger;  // null: a Logger at info level on stderr
  // Called when a new process that was started fails (before the failure is logged), on the
  // upgrade's own thread: it may have written a pid file before it died, and the caller
  // writes its own again (iomux serve does).
  std::function<void()> on_failed;
};

// The new process's side: the channel its predecessor waits on (the fd number in the
// environment variable IOMUX_UPGRADE_READY_FD).
class UpgradeReadiness {
 public:
  // Reads IOMUX_UPGRADE_READY_FD and unsets it, so a process this one starts does not take it
  // (call it before any thread exists, as inherited_listeners()). Throws ServerError when the
  // variable is not an open fd's number.
  static UpgradeReadiness from_environment();
  UpgradeReadiness() = default;
  UpgradeReadiness(UpgradeReadiness&& other) noexcept;
  UpgradeReadiness& operator=(UpgradeReadiness&& other) noexcept;
  UpgradeReadiness(const UpgradeReadiness&) = delete;
  UpgradeReadiness& operator=(const UpgradeReadiness&) = delete;
  ~UpgradeReadiness();

  // Whether an upgrade started this process.
  [[nodiscard]] bool expected() const noexcept { return fd_ >= 0; }
  // Tells the predecessor this process serves (once it listens, its pid file written): it
  // stops accepting and drains. Once; false, with `why`, when the predecessor cannot be told
  // (it is gone, or gave up waiting). Does nothing (true) when no upgrade started this process.
  bool notify(std::string* why = nullptr) noexcept;

 private:
  int fd_ = -1;
};

// Runs `server` as run_until_signal(server, {SIGINT, SIGTERM}, on_signal) does, and SIGUSR2
// upgrades it: `options.program` is started with `options.arguments`, the environment, and
// duplicates of every listening socket (Server::duplicate_listeners()), and once it says it
// serves (UpgradeReadiness::notify), the server stops with StopMode::hand_over and this returns
// when it has drained. A new process that fails (exec fails, it exits, or says nothing within
// options.timeout: it is killed) is reaped, the reason logged, and the server goes on: a later
// SIGUSR2 tries again. A SIGUSR2 during an upgrade, or after a stop, is logged and ignored. The
// three signals must be blocked in every thread, as for run_until_signal.
void run_with_upgrades(Server& server, const UpgradeOptions& options,
                       std::function<void(int signal, StopMode mode)> on_signal = {});

}  // namespace iomux
