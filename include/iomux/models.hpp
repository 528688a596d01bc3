// The catalogue of IO models: names, one-line descriptions, which engine runs each, and whether
// this kernel can run it. make_server() (server.hpp) maps a name to its implementation; all of
// it is one table in src/server/model_registry.cpp.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace iomux {

struct ModelInfo {
  std::string_view name;
  std::string_view summary;           // one line, for `iomux models`
  std::string_view tutorial_section;  // where the tutorial introduces it
  std::string_view engine;            // "blocking", "reactor" or "uring": the folder under src/
  bool multi_threaded;                // accepts --threads N
  bool serves_concurrently;           // false only for `blocking` (one client at a time)
};

// In ladder order: blocking, threaded, nonblocking, timeout, select, poll, epoll, epoll-et,
// sigio, uring.
std::span<const ModelInfo> all_models() noexcept;
const ModelInfo* find_model(std::string_view name) noexcept;

struct Availability {
  bool available = true;
  std::string reason;  // why not, when unavailable
};

// Asks the kernel (e.g. tries io_uring for `uring`). Cheap enough to call per run.
Availability probe_model(std::string_view name);

}  // namespace iomux
