// One client connection of a reactor thread: its socket, watched by the loop's poller, and its
// ConnectionCore (the lifecycle every engine shares). This file is only what is particular to
// readiness: read when the poller says readable (level-triggered: once per event;
// edge-triggered: until drained), send at once and again when it says writable, and keep the
// poller's interest in step with what the core wants.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

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
  // An outbound connection (Loop::connect): `fd`'s non-blocking connect() to `to` is under
  // way. start_connect() follows.
  struct Outbound {};
  ReactorTransport(ReactorLoop& owner, UniqueFd fd, const Endpoint& to, std::unique_ptr<Handler> handler, Outbound);
  ~ReactorTransport() override;

  // Loop thread. Registers with the poller and opens the core; if the poller refuses, the
  // connection is closed (logged) instead.
  void start();
  // Loop thread. Waits for the connect to complete (writability, then SO_ERROR), bounded by
  // `timeout` (zero: none). `failed`: the errno connect() itself returned, reported from a
  // timer so that the handler is not called before Loop::connect returns.
  void start_connect(int failed, std::chrono::milliseconds timeout);
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
  void park();
  // Outbound, while connecting: the poller's events go here, not to handle_events(), so the
  // request path never asks whether a connection is still connecting.
  void on_connect_event(std::uint32_t events);
  void connect_done();
  void fail_connect(CloseReason reason, int error, std::string detail);

  // What only an outbound connection needs, until it is released: on the heap, so that an
  // accepted connection pays one pointer for it.
  struct Connecting final : IoHandler {
    explicit Connecting(ReactorTransport& t) : transport(t) {}
    void handle_events(std::uint32_t events) override { transport.on_connect_event(events); }
    ReactorTransport& transport;
    Endpoint local;            // the address the kernel bound (Connection::local())
    TimerId timer = kNoTimer;  // the connect timeout, or the report of a connect that failed at once
  };

  ReactorLoop& owner_;
  UniqueFd fd_;
  std::unique_ptr<Connecting> outbound_;  // before core_, which refers to its `local`
  ConnectionCore core_;
  std::uint32_t interest_ = 0;  // level-triggered: what the poller watches for
  bool edge_;                   // the poller is edge-triggered
  bool reading_ = true;         // edge-triggered: whether reading was wanted when last looked
  bool parked_ = false;         // level-triggered: out of the poller after a hang-up while paused
};

}  // namespace iomux::detail::reactor
