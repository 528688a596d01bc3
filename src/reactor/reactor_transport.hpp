// One client connection of a reactor thread: its socket, watched by the loop's poller, and its
// ConnectionCore (the lifecycle every engine shares). This file is only what is particular to
// readiness: read when the poller says readable (level-triggered: once per event;
// edge-triggered: until drained), send at once and again when it says writable, and keep the
// poller's interest in step with what the core wants.
#pragma once

#include <cstdint>
#include <memory>

#include "core/connection_core.hpp"
#include "core/fd.hpp"
#include "core/sync_io.hpp"
#include "iomux/endpoint.hpp"
#include "reactor/event_loop.hpp"

namespace iomux::detail::reactor {

class ReactorLoop;

class ReactorTransport final : public IoHandler, public Transport {
 public:
  ReactorTransport(ReactorLoop& owner, UniqueFd fd, const Endpoint& peer, const Endpoint& local,
                   std::unique_ptr<Handler> handler);

  // Loop thread. Registers with the poller and opens the core; if the poller refuses, the
  // connection is closed (logged) instead.
  void start();
  void handle_events(std::uint32_t events) override;
  ConnectionCore& core() noexcept { return core_; }

  // Transport: what the core asks of this engine.
  void settle() override;
  void shutdown_write() override;
  void release_socket() override;

 private:
  inline void on_readable(std::uint32_t events);
  int send() { return send_owed</*kBlocking=*/false>(core_, fd_.get()); }
  // Keeps the poller's interest in step with the core. Inline: almost always nothing changed.
  void update_interest() {
    const bool reading = core_.wants_read() || core_.discarding();
    if (edge_) {
      if (reading != reading_ && core_.state() != ConnectionCore::State::closed) [[unlikely]]
        update_edge_interest(reading);
      return;
    }
    const OutputQueue& q = core_.queue();
    const std::uint32_t want = (reading ? kReadable : 0u) | (!q.empty() && !q.blocked() ? kWritable : 0u);
    if (want != interest_ && core_.state() != ConnectionCore::State::closed) [[unlikely]]
      change_interest(want);
  }
  void update_edge_interest(bool reading);
  void change_interest(std::uint32_t want);

  ReactorLoop& owner_;
  UniqueFd fd_;
  ConnectionCore core_;
  std::uint32_t interest_ = 0;  // level-triggered: what the poller watches for
  bool edge_;                   // the poller is edge-triggered
  bool reading_ = true;         // edge-triggered: whether reading was wanted when last looked
};

}  // namespace iomux::detail::reactor
