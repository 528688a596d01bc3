// Model `blocking`: the tutorial's baseline (section 2, blocking IO). One thread, blocking
// accept(); then it serves that one client with blocking recv()/send() until the client
// closes, and only then accepts the next. Nothing could be simpler, and nothing scales worse:
// while one client is served, every other one waits in the listen backlog, and a client that
// connects and says nothing holds the whole server (until --idle-timeout, a SO_RCVTIMEO here).
//
// Several listeners (ServerOptions::listeners): the thread sleeps in poll(2) on all of them
// instead of in accept() on one (Acceptor::wait_for_listener).
//
// stop() from another thread: the listener and the client socket are registered with
// StopControl, which shuts them down to wake the blocked accept()/recv() (stop_control.hpp).
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
        // Several listeners, or an inherited one, are waited for in poll(2) (Acceptor::
        // wait_for_listener), so an accept that finds nothing must not block.
        listeners_(ctx_.open_listeners(/*non_blocking=*/accepts_through_poll(ctx_), /*reuse_port=*/false)),
        stop_fd_(ctx_.has_inherited() ? stop_.stop_fd() : -1) {
    for (const auto& l : listeners_)
      if (!l->inherited()) stop_.watch(l->fd(), /*listener=*/true);
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
    for (const auto& l : listeners_) stop_.unwatch(l->fd());
    listeners_.clear();
  }

  void stop(StopMode mode) noexcept override { stop_.request(mode); }

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
  int stop_fd_;  // StopControl::stop_fd() when a listener is inherited, else -1
};

}  // namespace
}  // namespace iomux::detail::blocking

namespace iomux::detail {

std::unique_ptr<Server> make_blocking_server(ServerOptions options, HandlerFactory factory) {
  return std::make_unique<blocking::BlockingServer>(std::move(options), std::move(factory));
}

}  // namespace iomux::detail
