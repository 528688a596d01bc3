// The shape both multi-threaded event-loop servers share (the reactor models and uring): N
// loop threads, each with its own SO_REUSEPORT listener on every TCP endpoint, so the kernel
// spreads new connections over them and no lock is shared on the request path. A Unix
// endpoint has no SO_REUSEPORT: its one listener is shared, every loop accepts from it (a
// connection goes to whichever accept gets it; the others find nothing, EAGAIN). A model
// supplies its Loop type (constructed from the context and its listeners, in
// ServerOptions::listeners' order, with run(), stop(StopMode) and thread_stats()) and a
// factory that builds one Loop per thread.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/server_context.hpp"
#include "core/socket.hpp"
#include "iomux/server.hpp"
#include "server/stats_reporter.hpp"

namespace iomux::detail {

template <typename Loop>
class LoopGroupServer : public Server {
 public:
  using MakeLoop = std::function<std::unique_ptr<Loop>(ServerContext&, std::vector<SharedListener> listeners)>;

  // Opens the listeners of --threads loops (the first loop's pick the ports, the others bind
  // the same ones) and a loop for each. Throws ServerError.
  LoopGroupServer(ServerOptions options, HandlerFactory factory, const MakeLoop& make_loop)
      : ctx_(std::move(options), std::move(factory)) {
    const int n = thread_count();
    std::vector<SharedListener> first = ctx_.open_listeners(true, n > 1, n);
    for (int i = 1; i < n; ++i) {
      // Port 0 means "any" once: later loops bind the port the first one got.
      std::vector<SharedListener> more;
      for (const SharedListener& l : first) more.push_back(ctx_.listener_for_another_loop(l, i));
      loops_.push_back(make_loop(ctx_, std::move(more)));
    }
    loops_.insert(loops_.begin(), make_loop(ctx_, std::move(first)));
    ctx_.set_stats_source([this] { return stats(); });
  }

  // The calling thread runs the first loop, others run the rest. A loop that fails (its wait
  // fails: epoll_wait, io_uring_enter) stops the whole server rather than leaving its share of
  // the clients unserved, and run() throws its ServerError once every loop has ended.
  void run() override {
    StatsReporter reporter(ctx_, [this] { return stats(); });
    std::mutex failure_mutex;
    std::exception_ptr failure;
    const auto run_loop = [&](Loop& loop) {
      try {
        loop.run();
      } catch (const std::exception& e) {
        ctx_.log().error("{} loop failed: {}; stopping the server", ctx_.options().model, e.what());
        {
          std::lock_guard lock(failure_mutex);
          if (!failure) failure = std::current_exception();
        }
        stop(StopMode::immediate);
      }
    };
    {
      std::vector<std::jthread> others;
      for (std::size_t i = 1; i < loops_.size(); ++i)
        others.emplace_back([&run_loop, loop = loops_[i].get()] { run_loop(*loop); });
      run_loop(*loops_[0]);
    }  // the other loops end here (a failure stopped them all)
    if (failure) std::rethrow_exception(failure);
  }

  void stop(StopMode mode) noexcept override {
    if (mode == StopMode::hand_over) ctx_.hand_over_listeners();
    for (auto& loop : loops_) loop->stop(mode);
  }

  std::vector<InheritedListener> duplicate_listeners() const override { return ctx_.duplicate_listeners(); }

  std::vector<Endpoint> local_endpoints() const override { return ctx_.listening_on(); }

  StatsSnapshot stats() const override {
    StatsSnapshot total;
    for (const auto& loop : loops_) total += loop->thread_stats().snapshot();
    total.bytes_held = ctx_.budget_used();
    return total;
  }

  std::string_view model() const noexcept override { return ctx_.options().model; }

  std::vector<LoopHandle> loops() override {
    std::vector<LoopHandle> handles;
    for (auto& loop : loops_) handles.push_back(loop->handle());
    return handles;
  }

 protected:
  int thread_count() const noexcept { return ctx_.options().threads < 1 ? 1 : ctx_.options().threads; }
  void log_listening() {
    const int n = thread_count();
    ctx_.log().info("listening on {} (model {}, {} thread{})", ctx_.listening_description(), ctx_.options().model, n,
                    n > 1 ? "s" : "");
  }

  ServerContext ctx_;
  std::vector<std::unique_ptr<Loop>> loops_;
};

}  // namespace iomux::detail
