// Model `timeout`: the tutorial's section 4 (timeout detection). Sockets stay blocking, but
// every wait is bounded: the listener and each connection get SO_RCVTIMEO = --poll-interval, so
// accept() and recv() give up with EAGAIN after that long, and one thread can visit them in
// turn (the listener, then each connection) without any one client holding the server. Unlike
// the tutorial's program, which stays with one client until it leaves, this one keeps them
// all and goes round.
//
// The trade-off is latency: the thread spends up to one interval on every silent socket, so a
// request may wait (connections + 1) x poll interval before its turn comes. Worse, the kernel
// counts these timeouts in scheduler ticks, so 1 ms really is one tick or more (CONFIG_HZ=250
// here: about 8 ms per timed-out wait): with 100 idle connections a request waited 0.81 s
// (docs/models.md, the timeout model, has the measurement and its command). Idle CPU, on
// the other hand, is nil. Readiness APIs (section 5) end the guessing.
//
// Sends are bounded the same way (SO_SNDTIMEO = the interval): if a client does not read and
// its socket buffer is full, the unsent replies stay in the connection's pending buffer and
// are retried on its later visits. A connection with --max-pending bytes pending is not read
// until it drains below half, so no reply is ever dropped and memory stays bounded.
// --poll-interval 0 would mean "no timeout" to the kernel; it is raised to 1 ms.
//
// stop(): the connections are registered with StopControl, which shuts them down to wake the
// one call the thread is blocked in; the listener is never shut down (another process may hold
// it: socket activation, an upgrade's successor), and the accept waiting on it gives up within
// the interval, when the loop sees the stop. The loop drains the pending replies
// (bounded by --drain-timeout) and returns. The pass loop is shared with the nonblocking model
// (visiting_server.cpp); this file is what differs.
#include <algorithm>
#include <memory>

#include "blocking/visiting_server.hpp"
#include "core/socket.hpp"
#include "server/model_factory.hpp"

namespace iomux::detail::blocking {
namespace {

// (A pass accepts at most kAcceptBurst connections, but each accept that finds the queue empty
// costs a full interval, so the burst ends at the first timeout.)

std::chrono::milliseconds visit_timeout(const ServerOptions& o) {
  return std::max(o.poll_interval, std::chrono::milliseconds(1));
}

class TimeoutServer final : public VisitingServer {
 public:
  TimeoutServer(ServerOptions options, HandlerFactory factory)
      : VisitingServer(std::move(options), std::move(factory), /*non_blocking=*/false, /*accept_flags=*/0),
        timeout_(visit_timeout(ctx_.options())) {
    for (const auto& l : listeners_) {
      if (auto ec = set_recv_timeout(l->fd(), timeout_))
        throw ServerError("cannot set SO_RCVTIMEO on the listener on " + l->local().to_string() + ": " + ec.message());
    }
    ctx_.log().info("listening on {} (model {}, one thread visiting blocking sockets, {} ms per wait)",
                    ctx_.listening_description(), ctx_.options().model, timeout_.count());
  }

 private:
  // The first accept() waits up to one interval; the burst goes on while connections keep
  // coming. True if anything was accepted (or refused).
  bool accept_burst(Acceptor& acceptor, const ListenSocket& listener, const Endpoint& local) override {
    bool progress = false;
    for (int i = 0; i < kAcceptBurst && !stop_.requested(); ++i) {
      Acceptor::Result a = acceptor.accept(listener);
      if (!a.fd) {
        if (a.failure == AcceptFailure::retry) continue;
        if (lasting(a.failure)) stop_.sleep_for(kAcceptBackoff);
        break;
      }
      progress = true;
      // The bounds that make a visit a visit, not a stay.
      std::error_code ec = set_recv_timeout(a.fd.get(), timeout_);
      if (!ec) ec = set_send_timeout(a.fd.get(), timeout_);
      if (ec) {
        ctx_.refuse(stats_, "cannot bound the waits of " + a.peer.to_string() + ": " + ec.message());
        continue;
      }
      add_connection(std::move(a.fd), a.peer, local, &stop_);
    }
    return progress;
  }

  // Every visit normally waits by itself; a pass that neither waited nor did anything (all
  // connections paused with nothing to send, say) must not spin.
  void after_idle_pass(SteadyClock::time_point pass_start) override {
    if (SteadyClock::now() - pass_start < timeout_) stop_.sleep_for(timeout_);
  }

  std::chrono::milliseconds timeout_;
};

}  // namespace
}  // namespace iomux::detail::blocking

namespace iomux::detail {

std::unique_ptr<Server> make_timeout_server(ServerOptions options, HandlerFactory factory) {
  return std::make_unique<blocking::TimeoutServer>(std::move(options), std::move(factory));
}

}  // namespace iomux::detail
