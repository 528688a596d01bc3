// The ten models, one row each: the name, what the model is, where the tutorial has it, its
// engine, whether it takes --threads, how to ask the kernel whether it runs here, and how to
// make its server. The only place that maps a model's name to code.
#include <array>
#include <string>

#include "core/server_context.hpp"
#include "iomux/models.hpp"
#include "iomux/server.hpp"
#include "server/model_factory.hpp"

namespace iomux {
namespace {

struct ModelRow {
  ModelInfo info;
  std::string (*unavailable)();  // why the model cannot run here, or "" (null: it always can)
  std::unique_ptr<Server> (*make)(ServerOptions, HandlerFactory);
};

constexpr std::array<ModelRow, 10> kModels{{
    {{"blocking", "one thread, blocking accept/recv: one client at a time, the rest wait", "2 (blocking IO)",
      "blocking", false, false},
     nullptr,
     detail::make_blocking_server},
    {{"threaded", "a thread per connection on blocking sockets, capped by max_connections",
      "2 (blocking IO, made concurrent)", "blocking", false, true},
     nullptr,
     detail::make_threaded_server},
    {{"nonblocking", "one thread tries accept/recv on every O_NONBLOCK socket, sleeps when idle", "3 (non-blocking IO)",
      "blocking", false, true},
     nullptr,
     detail::make_nonblocking_server},
    {{"timeout", "one thread visits blocking sockets in turn, each read bounded by SO_RCVTIMEO",
      "4 (timeout detection)", "blocking", false, true},
     nullptr,
     detail::make_timeout_server},
    {{"select", "readiness from select(2): fd_set bitmaps, O(n) scans, fds < 1024 only", "5.3 (select)", "reactor",
      true, true},
     nullptr,
     detail::make_select_server},
    {{"poll", "readiness from poll(2): a pollfd array, O(n) per wait, no fd ceiling", "5.5 (poll)", "reactor", true,
      true},
     nullptr,
     detail::make_poll_server},
    {{"epoll", "readiness from epoll(7), level-triggered: O(ready) per wait", "5.7 (epoll)", "reactor", true, true},
     nullptr,
     detail::make_epoll_server},
    {{"epoll-et", "epoll(7) edge-triggered: one report per change, sockets drained", "5.2.4 (edge triggering)",
      "reactor", true, true},
     nullptr,
     detail::make_epoll_edge_server},
    {{"sigio", "signal-driven IO: F_SETSIG real-time signals name the ready fd", "2 (signal-driven IO)", "reactor",
      false, true},
     nullptr,
     detail::make_sigio_server},
    {{"uring", "io_uring completions: multishot accept/recv, provided buffers, batched submits", "2 (asynchronous IO)",
      "uring", true, true},
     detail::uring_unavailable_reason,
     detail::make_uring_server},
}};

const ModelRow* find_row(std::string_view name) noexcept {
  for (const ModelRow& row : kModels)
    if (row.info.name == name) return &row;
  return nullptr;
}

std::string threaded_models() {
  std::string names;
  for (const ModelRow& row : kModels) {
    if (!row.info.multi_threaded) continue;
    if (!names.empty()) names += ", ";
    names += row.info.name;
  }
  return names;
}

}  // namespace

std::span<const ModelInfo> all_models() noexcept {
  static const std::array<ModelInfo, kModels.size()> infos = [] {
    std::array<ModelInfo, kModels.size()> out{};
    for (std::size_t i = 0; i < kModels.size(); ++i) out[i] = kModels[i].info;
    return out;
  }();
  return infos;
}

const ModelInfo* find_model(std::string_view name) noexcept {
  for (const ModelInfo& m : all_models())
    if (m.name == name) return &m;
  return nullptr;
}

Availability probe_model(std::string_view name) {
  const ModelRow* row = find_row(name);
  if (!row) return {false, "unknown model"};
  if (!row->unavailable) return {};
  std::string why = row->unavailable();
  if (why.empty()) return {};
  return {false, std::move(why)};
}

std::unique_ptr<Server> make_server(ServerOptions options, HandlerFactory factory) {
  const ModelRow* row = nullptr;
  try {
    row = find_row(options.model);
    if (!row) throw ServerError("unknown model '" + options.model + "' (see `iomux models`)");
    if (options.threads > 1 && !row->info.multi_threaded)
      throw ServerError("threads > 1 applies to " + threaded_models() + " only");
    if (!factory) throw ServerError("no handler factory given");
    Availability a = probe_model(options.model);
    if (!a.available) throw ServerError("model " + options.model + " is unavailable here: " + a.reason);
  } catch (...) {
    // The inherited sockets were handed over all the same (the server's ServerContext owns
    // them from its first line, and closes them if the server fails after that).
    detail::close_inherited(options.inherited);
    throw;
  }
  return row->make(std::move(options), std::move(factory));
}

}  // namespace iomux
