// The readiness-based server: the models select, poll, epoll, epoll-et and sigio are this one
// server over different pollers (src/poller/). With --threads N (epoll, epoll-et) it runs N
// independent reactor threads, each with its own SO_REUSEPORT listener, so the kernel spreads
// new connections over them and no lock is shared on the request path.
#include <thread>
#include <vector>

#include "iomux/socket.hpp"
#include "reactor/reactor_thread.hpp"
#include "server/model_factory.hpp"
#include "server/stats_reporter.hpp"

namespace iomux::detail {
namespace {

class ReactorServer final : public Server {
 public:
  ReactorServer(ServerOptions options, PollerKind kind) : ctx_(std::move(options)) {
    const int n = ctx_.options().threads < 1 ? 1 : ctx_.options().threads;
    if (n > 1 && kind != PollerKind::epoll && kind != PollerKind::epoll_edge)
      throw ServerError("--threads applies to epoll, epoll-et and uring only");
    UniqueFd first = ctx_.open_listener(true, n > 1);
    local_ = iomux::local_endpoint(first.get());
    threads_.push_back(std::make_unique<ReactorThread>(ctx_, kind, std::move(first)));
    // Later listeners bind the port the first one got (port 0 means "any", once).
    for (int i = 1; i < n; ++i)
      threads_.push_back(std::make_unique<ReactorThread>(ctx_, kind, ctx_.open_listener_on(local_, true, true)));
    ctx_.log().info("listening on {} (model {}, {} thread{})", local_.to_string(), ctx_.options().model,
                    n, n > 1 ? "s" : "");
  }

  void run() override {
    StatsReporter reporter(ctx_, [this] { return stats(); });
    std::vector<std::jthread> others;
    for (std::size_t i = 1; i < threads_.size(); ++i)
      others.emplace_back([t = threads_[i].get()] { t->run(); });
    threads_[0]->run();
  }

  void stop(StopMode mode) noexcept override {
    for (auto& t : threads_) t->stop(mode);
  }

  Endpoint local_endpoint() const override { return local_; }

  StatsSnapshot stats() const override {
    StatsSnapshot total;
    for (const auto& t : threads_) total += t->stats().snapshot();
    return total;
  }

  std::string_view model() const noexcept override { return ctx_.options().model; }

 private:
  ServerContext ctx_;
  Endpoint local_;
  std::vector<std::unique_ptr<ReactorThread>> threads_;
};

}  // namespace

std::unique_ptr<Server> make_reactor_server(ServerOptions options, PollerKind kind) {
  return std::make_unique<ReactorServer>(std::move(options), kind);
}

}  // namespace iomux::detail
