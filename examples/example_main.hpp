// What the examples share: their command line and their life as a process.
//
//   PROGRAM --model M --host H --port P [--threads N]
//
// run() makes the server with the example's handler factory, logs `listening on HOST:PORT`
// (the library's own line, as `iomux serve` prints it), serves until SIGINT or SIGTERM, then
// stops gracefully: stop accepting, flush owed replies, close. A second signal stops at once.
#pragma once

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "iomux/handler.hpp"
#include "iomux/server.hpp"

namespace iomux_example {

// The line framing the three examples share. Calls `on_line(line)` for each complete line at
// the start of `in` (a trailing '\r' removed) while it returns true, and returns the bytes of
// the lines it took: an unfinished line is left to the library, which presents it again with
// more bytes. A line that cannot end within kMaxLine bytes is refused: an error reply, then
// the connection closes after it.
inline constexpr std::size_t kMaxLine = 64 * 1024;

template <typename OnLine>
std::size_t for_each_line(std::span<const char> in, iomux::Connection& conn, OnLine&& on_line) {
  const std::string_view text(in.data(), in.size());
  std::size_t used = 0;
  for (std::size_t nl; (nl = text.find('\n', used)) != std::string_view::npos; used = nl + 1) {
    std::string_view line = text.substr(used, nl - used);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!on_line(line)) return used;
  }
  if (text.size() - used > kMaxLine) {
    conn.write_static("ERROR line too long\r\n");
    conn.close_after_flush("line too long");
    return in.size();
  }
  return used;
}

// The stop signals are taken by one thread with sigwait, never by a handler. They are blocked
// before main() runs, so every thread the program starts (the server's, an example's own
// workers) inherits the mask and none of them is killed by a signal meant for the process.
inline bool block_stop_signals() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return true;
}
inline const bool stop_signals_blocked = block_stop_signals();

struct Args {
  std::string model = "epoll";
  std::string host = "127.0.0.1";
  int port = 7890;
  int threads = 1;
};

inline bool parse_args(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) return false;
    const char* value = argv[++i];
    if (flag == "--model")
      a.model = value;
    else if (flag == "--host")
      a.host = value;
    else if (flag == "--port")
      a.port = std::atoi(value);
    else if (flag == "--threads")
      a.threads = std::atoi(value);
    else
      return false;
  }
  return a.port >= 0 && a.port <= 65535 && a.threads >= 1;
}

// Runs the server until a signal; returns the process's exit code. `tweak` may adjust the
// options (limits) before the server is made.
template <typename Tweak>
int run(int argc, char** argv, iomux::HandlerFactory factory, Tweak&& tweak) {
  Args args;
  if (!parse_args(argc, argv, args)) {
    std::fprintf(stderr, "usage: %s --model M --host H --port P [--threads N]\n", argv[0]);
    return 2;
  }
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);

  iomux::ServerOptions options;
  options.model = args.model;
  options.threads = args.threads;
  std::unique_ptr<iomux::Server> server;
  try {
    options.listeners = {iomux::resolve_one(args.host, static_cast<std::uint16_t>(args.port))};
    tweak(options);
    server = iomux::make_server(std::move(options), std::move(factory));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  std::jthread signals([&server, stop_signals](std::stop_token done) {
    const timespec tick{0, 100'000'000};
    int received = 0;
    while (!done.stop_requested()) {
      if (sigtimedwait(&stop_signals, nullptr, &tick) < 0) continue;
      server->stop(++received == 1 ? iomux::StopMode::graceful : iomux::StopMode::immediate);
    }
  });
  try {
    server->run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
  std::fprintf(stderr, "stopped: %s\n", server->stats().summary().c_str());
  return 0;
}

inline int run(int argc, char** argv, iomux::HandlerFactory factory) {
  return run(argc, argv, std::move(factory), [](iomux::ServerOptions&) {});
}

}  // namespace iomux_example
