#include "reactor/reactor_transport.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <string>
#include <utility>

#include "core/server_context.hpp"
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

ReactorTransport::ReactorTransport(ReactorLoop& owner, UniqueFd fd, const Endpoint& to,
                                   std::unique_ptr<Handler> handler, Outbound)
    : owner_(owner),
      fd_(std::move(fd)),
      outbound_(std::make_unique<Connecting>(*this)),
      core_(owner, *this, std::move(handler), to, outbound_->local, fd_.get(), /*outbound=*/true),
      edge_(owner.loop().edge_triggered()) {}

ReactorTransport::~ReactorTransport() {
  if (outbound_ && outbound_->timer != kNoTimer) owner_.loop().cancel_timer(outbound_->timer);
}

void ReactorTransport::start_connect(int failed, std::chrono::milliseconds timeout) {
  EventLoop& loop = owner_.loop();
  if (failed != 0) {
    outbound_->timer = loop.start_timer(loop.now(), [this, failed] {
      outbound_->timer = kNoTimer;
      fail_connect(CloseReason::connect_failed, failed, describe_errno(failed));
    });
    return;
  }
  // A connect completes with writability (its failure too, with an error pending). Edge-
  // triggered: the interest a connection keeps for life, set once (see start()).
  interest_ = edge_ ? (kReadable | kWritable) : kWritable;
  if (auto ec = loop.watch(fd_.get(), interest_, outbound_.get())) {
    outbound_->timer = loop.start_timer(loop.now(), [this, ec] {
      outbound_->timer = kNoTimer;
      fail_connect(CloseReason::connect_failed, ec.value(), "the poller refused to watch it: " + ec.message());
    });
    return;
  }
  if (timeout.count() > 0)
    outbound_->timer = loop.start_timer(loop.now() + timeout, [this, timeout] {
      outbound_->timer = kNoTimer;
      fail_connect(CloseReason::connect_timeout, ETIMEDOUT,
                   "not established within " + std::to_string(timeout.count()) + " ms");
    });
}

void ReactorTransport::on_connect_event(std::uint32_t events) {
  if (!core_.connecting() || core_.state() == ConnectionCore::State::closed) return;
  if (std::error_code ec = socket_error(fd_.get())) {
    fail_connect(CloseReason::connect_failed, ec.value(), describe_errno(ec.value()));
    return;
  }
  // No error pending, yet not necessarily connected: the signal-driven poller reports a new
  // interest once by itself, whatever the socket's state. Connected is when it has a peer.
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    if (errno == ENOTCONN && !(events & (kError | kHangup))) return;  // still under way
    const int err = errno == ENOTCONN ? ECONNREFUSED : errno;
    fail_connect(CloseReason::connect_failed, err, describe_errno(err));
    return;
  }
  connect_done();
}

void ReactorTransport::connect_done() {
  EventLoop& loop = owner_.loop();
  if (outbound_->timer != kNoTimer) loop.cancel_timer(std::exchange(outbound_->timer, kNoTimer));
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0)
    outbound_->local = Endpoint::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  // A relay's bytes are whole messages already: never hold them back for Nagle (TCP only).
  if (!core_.peer_endpoint().is_unix()) set_no_delay(fd_.get());
  loop.rebind(fd_.get(), this);
  core_.connected();
  // What was written while connecting goes now; then as start() does for an accepted one.
  core_.open([this] { return send(); });
  if (core_.state() == ConnectionCore::State::closed) return;
  core_.start_idle_timer();
  update_interest();
  // Bytes (even a FIN) that came with the connect were reported to the connecting side, which
  // does not read: an edge-triggered poller will not report them again. Look now.
  if (edge_ && core_.wants_read()) loop.inject(fd_.get(), kReadable | kPeerShutdown);
}

void ReactorTransport::fail_connect(CloseReason reason, int error, std::string detail) {
  core_.close(reason, error, "connect to " + core_.peer_endpoint().to_string() + ": " + detail);
}

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
    // Both directions are shut (our FIN went after shutdown_write(), the peer's came) while the
    // core does not read (a pause): what the peer sent before its FIN is still to be read once
    // reading resumes. A level-triggered poller reports the hang-up on every wait, whatever
    // the interest, so the socket leaves the poller until then.
    if (!edge_ && core_.state() == ConnectionCore::State::open && !core_.wants_read()) {
      park();
      return;
    }
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

void ReactorTransport::park() {
  owner_.loop().unwatch(fd_.get());
  parked_ = true;
  interest_ = 0;
}

void ReactorTransport::change_interest(std::uint32_t want) {
  interest_ = want;
  if (parked_) {
    // Out of the poller after a hang-up while paused: back in once there is something to wait
    // for (reading resumed: the poller then reports the bytes and the hang-up together).
    if (want == 0) return;
    parked_ = false;
    if (auto ec = owner_.loop().watch(fd_.get(), want, this))
      core_.close(CloseReason::server_stopped, ec.value(), "the poller refused to watch it again: " + ec.message());
    return;
  }
  if (auto ec = owner_.loop().update(fd_.get(), want))
    core_.close(CloseReason::server_stopped, ec.value(), "the poller refused an update: " + ec.message());
}

void ReactorTransport::settle() {
  if (core_.connecting()) [[unlikely]] {
    // Nothing can be sent yet: account for what was queued (budget, back-pressure).
    core_.output_changed();
    return;
  }
  core_.settle_with([this] { return send(); });
  update_interest();
}

void ReactorTransport::shutdown_write() {
  ::shutdown(fd_.get(), SHUT_WR);
}

void ReactorTransport::release_socket() {
  const int fd = fd_.get();
  if (outbound_ && outbound_->timer != kNoTimer) owner_.loop().cancel_timer(std::exchange(outbound_->timer, kNoTimer));
  if (!parked_) owner_.loop().unwatch(fd);
  fd_.reset();
  owner_.retire(fd);  // destroys *this after the current iteration
}

}  // namespace iomux::detail::reactor
