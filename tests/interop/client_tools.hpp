// Helpers for the suites that drive iomux with real third-party clients (redis-cli,
// redis-benchmark, curl, ab, wrk): the models they run on, a skip when a client is not
// installed, and a bounded run of a client with its output captured.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/socket.hpp"
#include "iomux/models.hpp"
#include "support/subprocess.hpp"

namespace iomux::test {

// The models the interop cases run on: one of each engine and threading shape (one client at
// a time, a thread per client, readiness loops level- and edge-triggered, signals,
// completions). The cases that drive a load generator (redis-benchmark, ab, wrk) run on the
// first list only, to keep the suite's time down: select differs from poll only in its
// fd_set, and epoll-et takes load in the two-thread cases of redis_clients_test.cpp.
inline std::vector<std::string> load_models() {
  return {"blocking", "threaded", "poll", "epoll", "sigio", "uring"};
}
inline std::vector<std::string> interop_models() {
  return {"blocking", "threaded", "select", "poll", "epoll", "epoll-et", "sigio", "uring"};
}

// Whether `tool` is an executable file in a directory of $PATH.
inline bool on_path(std::string_view tool) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::string_view dirs(path);
  while (!dirs.empty()) {
    const std::size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
    if (dir.empty()) dir = ".";
    const std::string file = dir + "/" + std::string(tool);
    if (::access(file.c_str(), X_OK) == 0) return true;
  }
  return false;
}

// Skips the current test, naming the Debian package to install, when `tool` is not on $PATH.
// A missing client is never a pass: CI installs them (scripts/install-deps.sh).
#define IOMUX_REQUIRE_TOOL(tool, package)                                                   \
  do {                                                                                      \
    if (!::iomux::test::on_path(tool))                                                      \
      GTEST_SKIP() << (tool) << " is not on PATH: install the Debian package " << (package) \
                   << " (scripts/install-deps.sh does)";                                    \
  } while (0)

// Skips the current test when the kernel cannot run `model`, with the reason.
#define IOMUX_REQUIRE_MODEL(model)                                                                          \
  do {                                                                                                      \
    const ::iomux::Availability availability_ = ::iomux::probe_model(model);                                \
    if (!availability_.available) GTEST_SKIP() << (model) << " unavailable here: " << availability_.reason; \
  } while (0)

struct ToolRun {
  int exit_code = -1;  // the exit status, or -signal (-9 when it was killed at the timeout)
  std::string out;
  std::string err;
};

// Runs argv[0] (found on $PATH) with `input` on its stdin, waits for it to exit (killing it
// after `timeout`) and returns what it printed.
inline ToolRun run_tool(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                        const std::string& input = {}) {
  Subprocess p(argv);
  ToolRun run;
  if (!p.started()) {
    run.err = "could not start " + argv.at(0);
    return run;
  }
  if (!input.empty()) p.write_stdin(input);
  p.close_stdin();
  run.exit_code = p.wait_exit(timeout);
  run.out = p.out();
  run.err = p.err();
  return run;
}

// The port of `ep` as text, for command lines.
inline std::string port_of(const Endpoint& ep) {
  return std::to_string(ep.port());
}

// The lines of `text`, split at '\n' and '\r' (progress lines end with '\r'), without empty ones.
inline std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == '\n' || text[i] == '\r') {
      if (i > start) lines.emplace_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  return lines;
}

// Whether `text` contains `needle`.
inline bool contains(std::string_view text, std::string_view needle) {
  return text.find(needle) != std::string_view::npos;
}

}  // namespace iomux::test
