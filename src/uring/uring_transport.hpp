// The uring engine's side of one connection: a slot of its loop (UringLoop::conns_), with the
// socket, its ConnectionCore, and the state of its two requests in the kernel (one recv, one
// send at a time). Its IO (arming the recv, processing a receive, submitting and completing
// sends, closing without freeing what the kernel still reads) is in uring_transport.cpp; the
// loop that dispatches completions to it is uring_loop.cpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "core/connection_core.hpp"
#include "core/fd.hpp"
#include "iomux/endpoint.hpp"

namespace iomux::detail::uring {

using Clock = std::chrono::steady_clock;
class UringLoop;

// A connection slot: the socket, its ConnectionCore, and the state of its two requests.
struct UringTransport final : Transport {
  static constexpr std::size_t kMaxSendIov = 8;

  UringLoop* owner = nullptr;
  std::uint32_t slot = 0;
  UniqueFd fd;
  std::optional<ConnectionCore> core;  // engaged while the slot is in use
  // A provided buffer lent to the send in flight (zero-copy echo): its id (or -1) and the
  // bytes of it being sent.
  std::int32_t lent_bid = -1;
  const char* lent_data = nullptr;
  std::uint32_t lent_len = 0;
  std::uint32_t generation = 0;
  Clock::time_point last_recv;  // for the stall probes
  bool recv_armed = false;      // a recv is in the kernel
  bool recv_cancelled = false;  // and a cancel for it is on its way
  bool send_inflight = false;
  bool starved = false;      // recv ended with -ENOBUFS; re-armed after this batch
  bool probe_due = false;    // received since the last stall probe (see probe_stalled_recvs)
  bool release_due = false;  // closed; the slot goes back once nothing is in flight
  // Outbound (Loop::connect): its IORING_OP_CONNECT is in the kernel, which reads the
  // sockaddr (the core's peer endpoint) until the CQE: the slot is not released before.
  bool connect_inflight = false;

  // What only an outbound connection needs: on the heap, one pointer in an accepted one's slot.
  struct Outbound {
    Endpoint local;            // the address the kernel bound (Connection::local())
    TimerId timer = kNoTimer;  // the connect timeout
  };
  std::unique_ptr<Outbound> outbound;

  [[nodiscard]] bool busy() const noexcept { return recv_armed || send_inflight || connect_inflight; }
  [[nodiscard]] bool closed() const noexcept { return !core || core->state() == ConnectionCore::State::closed; }

  // Transport.
  void settle() override;
  void shutdown_write() override;
  void release_socket() override;
};

}  // namespace iomux::detail::uring
