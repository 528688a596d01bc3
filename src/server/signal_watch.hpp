// What run_until_signal() and run_with_upgrades() share: the server runs on the calling thread
// while a thread of its own takes the signals synchronously (sigtimedwait), so nothing of the
// server runs in a signal handler (Server::stop() is not async-signal-safe).
#pragma once

#include <functional>
#include <vector>

#include "iomux/server.hpp"

namespace iomux::detail {

// Runs server.run() with `signals` blocked in the calling thread (the server's threads inherit
// the mask) and calls `on_signal` on the watching thread for each one that arrives. When run()
// returns, signals still pending are taken and the mask is restored; what run() threw is
// rethrown.
void run_watching_signals(Server& server, const std::vector<int>& signals, const std::function<void(int)>& on_signal);

// A stop signal's stop: the first graceful, any later one immediate (`stops` counts them).
// `on_signal` (to log it) is called first; what it throws is ignored, so that a failing log
// cannot keep the server from stopping.
void stop_for_signal(Server& server, int signal, int& stops, const std::function<void(int, StopMode)>& on_signal);

}  // namespace iomux::detail
