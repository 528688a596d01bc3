#include "reactor/reactor_transport.hpp"

#include <sys/socket.h>

#include <cerrno>

#include "core/socket.hpp"
#include "core/sync_io.hpp"
#include "reactor/reactor_loop.hpp"

namespace iomux::detail::reactor {
namespace {

// Edge-triggered reads per event before yielding to other connections (then the loop comes
// back by itself): a client that never stops sending cannot monopolise the thread.
constexpr int kMaxReadsPerEvent = 16;

}  // namespace

ReactorTransport::ReactorTransport(ReactorLoop& owner, UniqueFd fd, const Endpoint& peer, const Endpoint& local,
                                   std::unique_ptr<Handler> handler)
    : owner_(owner),
      fd_(std::move(fd)),
      core_(owner, *this, std::move(handler), peer, local, fd_.get()),
      edge_(owner.loop().edge_triggered()) {}

void ReactorTransport::start() {
  EventLoop& loop = owner_.loop();
  // Edge-triggered: watch both directions once and never change it; readiness for writing
  // only fires after a full send buffer drains, so it costs nothing when unused.
  interest_ = edge_ ? (kReadable | kWritable) : kReadable;
  if (auto ec = loop.watch(fd_.get(), interest_, this)) {
    owner_.context().log().warn("cannot watch connection from {}: {}", core_.peer_endpoint().to_string(), ec.message());
    core_.close(CloseReason::server_stopped, ec.value(), "the poller refused to watch it");
    return;
  }
  core_.open([this] { return send(); });
  if (core_.state() == ConnectionCore::State::closed) return;
  core_.start_idle_timer();
  update_interest();
}

[[gnu::always_inline]] inline void ReactorTransport::on_readable(std::uint32_t events) {
  EventLoop& loop = owner_.loop();
  for (int round = 1;; ++round) {
    if (!core_.wants_read() && !core_.discarding()) return;
    const ReadResult r = read_and_serve</*kBlocking=*/false>(core_, fd_.get(), loop.scratch());
    if (r.n == 0) core_.peer_shutdown();
    if (r.n <= 0 || core_.state() == ConnectionCore::State::closed) return;
    // Level-triggered: one read per event; the poller reports the socket again if more is
    // waiting, which keeps every connection's turn short. Edge-triggered: drain, but a short
    // read already proves the socket empty (epoll(7)), which saves the EAGAIN round trip —
    // unless the peer's FIN is already queued: then read on to the EOF.
    if (!edge_) return;
    if (static_cast<std::size_t>(r.n) < r.asked && !(events & kPeerShutdown)) return;
    if (round == kMaxReadsPerEvent) {
      loop.inject(fd_.get(), kReadable | (events & kPeerShutdown));
      return;
    }
  }
}

void ReactorTransport::handle_events(std::uint32_t events) {
  // The common case: bytes to read and nothing owed. (An edge-triggered poller reports the
  // socket's whole state, so its readable events usually say writable too.)
  if (events == kReadable || (events == (kReadable | kWritable) && core_.queue().empty())) [[likely]] {
    on_readable(events);
    update_interest();
    return;
  }
  if (core_.state() == ConnectionCore::State::closed) return;
  if (events & kError) [[unlikely]] {
    const std::error_code ec = socket_error(fd_.get());
    core_.io_failed(ec ? ec.value() : EIO);
    return;
  }
  if ((events & kHangup) && !(events & kReadable)) [[unlikely]] {
    core_.close(CloseReason::peer_reset, 0, "hung up");
    return;
  }
  if ((events & kWritable) && !core_.queue().empty()) {
    core_.settle_with([this] { return send(); });
    if (core_.state() == ConnectionCore::State::closed) return;
  }
  if (events & (kReadable | kHangup)) on_readable(events);
  update_interest();
}

void ReactorTransport::update_edge_interest(bool reading) {
  // Reading was stopped (back-pressure, a budget pause): bytes and even a FIN may have arrived
  // meanwhile, and an edge-triggered poller will not report them again. Look now.
  if (reading && !reading_) owner_.loop().inject(fd_.get(), kReadable | kPeerShutdown);
  reading_ = reading;
}

void ReactorTransport::change_interest(std::uint32_t want) {
  interest_ = want;
  if (auto ec = owner_.loop().update(fd_.get(), want))
    core_.close(CloseReason::server_stopped, ec.value(), "the poller refused an update: " + ec.message());
}

void ReactorTransport::settle() {
  core_.settle_with([this] { return send(); });
  update_interest();
}

void ReactorTransport::shutdown_write() {
  ::shutdown(fd_.get(), SHUT_WR);
}

void ReactorTransport::release_socket() {
  const int fd = fd_.get();
  owner_.loop().unwatch(fd);
  fd_.reset();
  owner_.retire(fd);  // destroys *this after the current iteration
}

}  // namespace iomux::detail::reactor
