// Model `blocking`: the tutorial's baseline (section 2, blocking IO). One thread, blocking
// accept(); then it serves that one client with blocking recv()/send() until the client
// closes, and only then accepts the next. Nothing could be simpler, and nothing scales worse:
// while one client is served, every other one waits in the listen backlog, and a client that
// connects and says nothing holds the whole server (until --idle-timeout, a SO_RCVTIMEO here).
//
// The thread waits for a connection in poll(2) on every listener and an eventfd, then accepts
// from the ready one (Acceptor::wait_for_listener), rather than sleeping in accept(): a
// listener may be shared with another process (socket activation, an upgrade's successor), so
// stopping must never shut it down, and the eventfd is what wakes the wait instead.
//
// stop() from another thread: the client socket is registered with StopControl, which shuts it
// down to wake the blocked recv() (stop_control.hpp), and the eventfd ends the wait.
// A graceful stop lets the current request finish (its reply is sent synchronously before the
// next recv), then closes; a send() stuck on a client that does not read is cut after
// --drain-timeout by the drain watchdog.
#include <array>

#include "blocking/acceptor.hpp"
#include "blocking/blocking_transport.hpp"
#include "core/socket.hpp"
#include "core/thread_stats.hpp"
#include "server/model_factory.hpp"
#include "server/stats_reporter.hpp"

namespace iomux::detail::blocking {
namespace {

class BlockingServer final : public Server {
 public:
  BlockingServer(ServerOptions options, HandlerFactory factory)
      : ctx_(std::move(options), std::move(factory)),
        stop_(ctx_.options().drain_timeout),
        // Waited for in poll(2) (Acceptor::wait_for_listener), so an accept that finds nothing
        // must not block.
        listeners_(ctx_.open_listeners(/*non_blocking=*/true, /*reuse_port=*/false)),
        stop_fd_(stop_.stop_fd()) {
    ctx_.set_stats_source([this] { return stats(); });
    ctx_.log().info("listening on {} (model {}, one client at a time, the rest wait in the backlog)",
                    ctx_.listening_description(), ctx_.options().model);
  }

  void run() override {
    StatsReporter reporter(ctx_, [this] { return stats(); });
    std::jthread watchdog = stop_.start_drain_watchdog(ctx_.log());
    BlockingLoop executor(ctx_, stats_, &stop_, BlockingLoop::Wake::eventfd);
    executor.bind_to_current_thread();
    executor.set_interruptible_sockets(true);
    Acceptor acceptor(ctx_, stats_, /*accept_flags=*/0);
    std::array<char, kScratchSize> scratch;
    while (!stop_.requested()) {
      const std::size_t from = acceptor.wait_for_listener(listeners_, stop_fd_);
      Acceptor::Result a = acceptor.accept(*listeners_[from]);
      if (!a.fd) {
        if (lasting(a.failure)) stop_.sleep_for(kAcceptBackoff);
        continue;
      }
      std::unique_ptr<Handler> handler = ctx_.admit(stats_, a.peer);
      if (!handler) continue;
      BlockingTransport session(executor, std::move(a.fd), a.peer, ctx_.listening_on()[from], std::move(handler),
                                &stop_,
                                /*blocking_sends=*/true);
      session.serve(scratch);
    }
    listeners_.clear();
  }

  void stop(StopMode mode) noexcept override {
    if (mode == StopMode::hand_over) ctx_.hand_over_listeners();
    stop_.request(mode);
  }
  std::vector<InheritedListener> duplicate_listeners() const override { return ctx_.duplicate_listeners(); }

  std::vector<Endpoint> local_endpoints() const override { return ctx_.listening_on(); }
  StatsSnapshot stats() const override {
    StatsSnapshot s = stats_.snapshot();
    s.bytes_held = ctx_.budget_used();
    return s;
  }
  std::string_view model() const noexcept override { return ctx_.options().model; }

 private:
  ServerContext ctx_;
  StopControl stop_;
  ThreadStats stats_;
  std::vector<SharedListener> listeners_;
  int stop_fd_;  // StopControl::stop_fd(), polled with the listeners
};

}  // namespace
}  // namespace iomux::detail::blocking

namespace iomux::detail {

std::unique_ptr<Server> make_blocking_server(ServerOptions options, HandlerFactory factory) {
  return std::make_unique<blocking::BlockingServer>(std::move(options), std::move(factory));
}

}  // namespace iomux::detail
