// iomux::run_until_signal: the examples' and `iomux serve`'s way of stopping on SIGINT/SIGTERM,
// once, for every program. Signals are taken synchronously (sigtimedwait) by a thread of its
// own, so nothing of the server runs in a signal handler: Server::stop() is not
// async-signal-safe (server.hpp).
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <ctime>
#include <exception>
#include <functional>
#include <initializer_list>
#include <stop_token>
#include <thread>
#include <vector>

#include "iomux/server.hpp"
#include "server/signal_watch.hpp"

namespace iomux {
namespace detail {

void run_watching_signals(Server& server, const std::vector<int>& signals, const std::function<void(int)>& on_signal) {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : signals) sigaddset(&set, sig);
  sigset_t previous;
  // Before run() starts the server's threads: they inherit the mask, so the watcher below is
  // the only thread these signals can reach.
  pthread_sigmask(SIG_BLOCK, &set, &previous);
  std::exception_ptr failure;
  {
    std::jthread watcher([&set, &on_signal](std::stop_token done) {
      // Short waits, so that the watcher notices the end of run() within one of them.
      const timespec tick{0, 100'000'000};
      while (!done.stop_requested()) {
        const int sig = sigtimedwait(&set, nullptr, &tick);
        if (sig < 0) continue;  // EAGAIN (the tick) or EINTR
        on_signal(sig);
      }
    });
    try {
      server.run();
    } catch (...) {
      failure = std::current_exception();
    }
  }  // the watcher is joined here
  // A signal that came after the stop is pending: take it, or restoring the mask would deliver
  // it now (and its default action ends the process).
  const timespec now{0, 0};
  while (sigtimedwait(&set, nullptr, &now) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  if (failure) std::rethrow_exception(failure);
}

void stop_for_signal(Server& server, int signal, int& stops, const std::function<void(int, StopMode)>& on_signal) {
  const StopMode mode = ++stops == 1 ? StopMode::graceful : StopMode::immediate;
  if (on_signal) {
    try {
      on_signal(signal, mode);
    } catch (...) {
      // A logging callback that fails must not keep the server from stopping.
    }
  }
  server.stop(mode);
}

}  // namespace detail

void run_until_signal(Server& server, std::initializer_list<int> signals,
                      std::function<void(int signal, StopMode mode)> on_signal) {
  int stops = 0;
  detail::run_watching_signals(server, std::vector<int>(signals),
                               [&](int sig) { detail::stop_for_signal(server, sig, stops, on_signal); });
}

}  // namespace iomux
