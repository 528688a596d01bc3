#include "iomux/models.hpp"

#include "uring/ring.hpp"

#include <array>
#include <cstring>

namespace iomux {
namespace {

constexpr std::array<ModelInfo, 10> kModels{{
    {"blocking", "one thread, blocking accept/recv: one client at a time, the rest wait",
     "2 (blocking IO)", false, false},
    {"threaded", "a thread per connection on blocking sockets, capped by --max-connections",
     "2 (blocking IO, made concurrent)", false, true},
    {"nonblocking", "one thread tries accept/recv on every O_NONBLOCK socket, sleeps when idle",
     "3 (non-blocking IO)", false, true},
    {"timeout", "one thread visits blocking sockets in turn, each read bounded by SO_RCVTIMEO",
     "4 (timeout detection)", false, true},
    {"select", "readiness from select(2): fd_set bitmaps, O(n) scans, fds < 1024 only",
     "5.3 (select)", false, true},
    {"poll", "readiness from poll(2): a pollfd array, O(n) per wait, no fd ceiling",
     "5.5 (poll)", false, true},
    {"epoll", "readiness from epoll(7), level-triggered: O(ready) per wait", "5.7 (epoll)", true,
     true},
    {"epoll-et", "epoll(7) edge-triggered: one report per change, sockets drained",
     "5.2.4 (edge triggering)", true, true},
    {"sigio", "signal-driven IO: F_SETSIG real-time signals name the ready fd",
     "2 (signal-driven IO)", false, true},
    {"uring", "io_uring completions: multishot accept/recv, provided buffers, batched submits",
     "2 (asynchronous IO)", true, true},
}};

// The uring engine's own check: it runs a multishot recv into a provided buffer ring, so a
// kernel that has io_uring but not the features the engine uses is reported too.
Availability probe_uring() {
  try {
    detail::uring::check_kernel_support();
    return {};
  } catch (const std::exception& e) {
    return {false, e.what()};
  }
}

}  // namespace

std::span<const ModelInfo> all_models() noexcept { return kModels; }

const ModelInfo* find_model(std::string_view name) noexcept {
  for (const ModelInfo& m : kModels)
    if (m.name == name) return &m;
  return nullptr;
}

Availability probe_model(std::string_view name) {
  if (!find_model(name)) return {false, "unknown model"};
  if (name == "uring") return probe_uring();
  return {};
}

}  // namespace iomux
