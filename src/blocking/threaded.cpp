// Model `threaded`: section 2's blocking IO made concurrent, the classic thread per connection.
// The run() thread blocks in accept(); each client gets a thread of its own that blocks in
// recv()/send() for that client alone, so a slow or silent client holds only its own thread.
// The code of each thread is as simple as the blocking model's; the price is a thread per
// client: a stack (8 MiB reserved, a few pages touched), a kernel task, and scheduler work at
// every wake-up. So the number of threads is capped: --max-connections, or 1024 when it is 0
// (the log line says which); a client over the cap is accepted and closed at once.
//
// Counters: each connection thread writes its own ThreadStats (one writer per counter, see
// stats.hpp); when the thread ends its numbers are folded into a running total. Finished
// threads are joined by the accept loop before it starts another, so handles never pile up.
//
// Each connection thread is its connection's Executor (blocking_loop.hpp): a handler that takes a
// handle or defers a reply makes its thread sleep in poll() on the socket and an eventfd
// instead of in recv().
//
// The accept thread sleeps in poll(2) on every listener and an eventfd (Acceptor::
// wait_for_listener), not in accept(): a listener may be shared with another process (socket
// activation, an upgrade's successor), so stopping never shuts one down.
//
// stop(): the eventfd ends the accept thread's wait, every client socket gets
// SHUT_RD (a blocked recv() returns 0 after the request in hand is answered) and run() waits for
// the threads; after --drain-timeout the watchdog shuts everything down (SHUT_RDWR), which ends
// a send() stuck on a client that does not read. Immediate: SHUT_RDWR at once.
#include <array>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "blocking/acceptor.hpp"
#include "blocking/blocking_transport.hpp"
#include "core/socket.hpp"
#include "core/thread_stats.hpp"
#include "server/model_factory.hpp"
#include "server/stats_reporter.hpp"

namespace iomux::detail::blocking {
namespace {

// Threads at most when --max-connections is 0.
constexpr std::size_t kDefaultThreadCap = 1024;
// Each connection thread reads into this much of its own stack.
constexpr std::size_t kThreadScratchSize = 16 * 1024;

ServerOptions with_thread_cap(ServerOptions options) {
  if (options.max_connections == 0) options.max_connections = kDefaultThreadCap;
  return options;
}

class ThreadedServer final : public Server {
 public:
  ThreadedServer(ServerOptions options, HandlerFactory factory)
      : ctx_(with_thread_cap(std::move(options)), std::move(factory)),
        stop_(ctx_.options().drain_timeout),
        // Waited for in poll(2) (Acceptor::wait_for_listener), so an accept that finds nothing
        // must not block.
        listeners_(ctx_.open_listeners(/*non_blocking=*/true, /*reuse_port=*/false)),
        stop_fd_(stop_.stop_fd()) {
    ctx_.set_stats_source([this] { return stats(); });
    ctx_.log().info("listening on {} (model {}, a thread per connection, at most {} threads)",
                    ctx_.listening_description(), ctx_.options().model, ctx_.options().max_connections);
  }

  ~ThreadedServer() override {
    // run() joins every thread it started; this only matters if it threw halfway.
    stop_.request(StopMode::immediate);
    wait_for_workers();
  }

  void run() override {
    StatsReporter reporter(ctx_, [this] { return stats(); });
    std::jthread watchdog = stop_.start_drain_watchdog(ctx_.log());
    Acceptor acceptor(ctx_, acceptor_stats_, /*accept_flags=*/0);
    while (!stop_.requested()) {
      const std::size_t from = acceptor.wait_for_listener(listeners_, stop_fd_);
      Acceptor::Result a = acceptor.accept(*listeners_[from]);
      if (!a.fd) {
        if (lasting(a.failure)) stop_.sleep_for(kAcceptBackoff);
        continue;
      }
      join_finished();
      // The place under max_connections here, the handler on the connection's own thread.
      if (!ctx_.reserve(acceptor_stats_, a.peer)) continue;
      spawn(std::move(a.fd), a.peer, ctx_.listening_on()[from]);
    }
    listeners_.clear();
    wait_for_workers();
  }

  void stop(StopMode mode) noexcept override {
    if (mode == StopMode::hand_over) ctx_.hand_over_listeners();
    stop_.request(mode);
  }
  std::vector<InheritedListener> duplicate_listeners() const override { return ctx_.duplicate_listeners(); }

  std::vector<Endpoint> local_endpoints() const override { return ctx_.listening_on(); }

  StatsSnapshot stats() const override {
    std::lock_guard lock(mutex_);
    StatsSnapshot total = acceptor_stats_.snapshot();
    total += retired_;
    for (const auto& [id, w] : workers_) total += w->stats.snapshot();
    total.bytes_held = ctx_.budget_used();
    return total;
  }

  std::string_view model() const noexcept override { return ctx_.options().model; }

 private:
  struct Worker {
    ThreadStats stats;
    std::thread thread;
  };

  // Accept thread. The mutex is held while the thread starts, so it cannot retire itself before
  // it is in workers_.
  void spawn(UniqueFd fd, const Endpoint& peer, const Endpoint& local) {
    std::lock_guard lock(mutex_);
    const std::uint64_t id = next_id_++;
    auto worker = std::make_unique<Worker>();
    Worker* w = worker.get();
    try {
      w->thread = std::thread([this, w, id, fd = std::move(fd), peer, &local]() mutable {
        serve(w->stats, std::move(fd), peer, local);
        retire(id);
      });
    } catch (const std::exception& e) {  // out of threads or memory: the fd went with the lambda
      ctx_.release();
      acceptor_stats_.connections_refused.add();
      ctx_.log().warn("cannot start a thread for {}: {}", peer.to_string(), e.what());
      return;
    }
    workers_.emplace(id, std::move(worker));
  }

  // Connection thread.
  void serve(ThreadStats& stats, UniqueFd fd, const Endpoint& peer, const Endpoint& local) noexcept {
    try {
      std::unique_ptr<Handler> handler = ctx_.handler_for(stats, peer);
      if (!handler) return;
      BlockingLoop executor(ctx_, stats, &stop_, BlockingLoop::Wake::eventfd);
      executor.bind_to_current_thread();
      executor.set_interruptible_sockets(true);
      std::array<char, kThreadScratchSize> scratch;
      BlockingTransport session(executor, std::move(fd), peer, local, std::move(handler), &stop_,
                                /*blocking_sends=*/true);
      session.serve(scratch);
    } catch (const std::exception& e) {
      ctx_.log().error("connection thread for {} failed: {}", peer.to_string(), e.what());
    }
  }

  // Connection thread, its last act: fold its counters into the total and hand its handle to
  // the accept thread for joining.
  void retire(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    auto it = workers_.find(id);
    retired_ += it->second->stats.snapshot();
    finished_.push_back(std::move(it->second->thread));
    workers_.erase(it);
    if (workers_.empty()) all_done_.notify_all();
  }

  void join_finished() {
    std::vector<std::thread> done;
    {
      std::lock_guard lock(mutex_);
      done.swap(finished_);
    }
    for (auto& t : done) t.join();
  }

  // Bounded by the stop: every worker's socket is shut down (at once, or by the watchdog after
  // --drain-timeout), so each blocked call returns and each thread ends.
  void wait_for_workers() {
    {
      std::unique_lock lock(mutex_);
      all_done_.wait(lock, [this] { return workers_.empty(); });
    }
    join_finished();
  }

  ServerContext ctx_;
  StopControl stop_;
  std::vector<SharedListener> listeners_;
  int stop_fd_;                 // StopControl::stop_fd() when a listener is inherited, else -1
  ThreadStats acceptor_stats_;  // written by the accept thread only
  mutable std::mutex mutex_;    // guards the four below
  std::condition_variable all_done_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> finished_;
  StatsSnapshot retired_;
  std::uint64_t next_id_ = 0;
};

}  // namespace
}  // namespace iomux::detail::blocking

namespace iomux::detail {

std::unique_ptr<Server> make_threaded_server(ServerOptions options, HandlerFactory factory) {
  return std::make_unique<blocking::ThreadedServer>(std::move(options), std::move(factory));
}

}  // namespace iomux::detail
